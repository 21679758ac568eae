package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/mqd/mqd/internal/message"
)

// ReadMessage returns a copy of the record at physical offset phys (for
// VIEW_MESSAGE_BY_ID and transaction lookups). Only visible offsets are
// readable.
func (s *Store) ReadMessage(phys int64) ([]byte, error) {
	size, err := s.recordSize(phys)
	if err != nil {
		return nil, err
	}
	return s.readSized(phys, size)
}

// recordSize reads only the size field of the record at phys and checks
// its magic and bounds.
func (s *Store) recordSize(phys int64) (int32, error) {
	var hdr [8]byte
	b, err := s.cl.ReadRecord(phys, int32(len(hdr)), hdr[:])
	if err != nil {
		return 0, err
	}
	if binary.BigEndian.Uint32(b[4:]) != message.MagicMessage {
		return 0, fmt.Errorf("engine: no message starts at offset %d", phys)
	}
	size := int32(binary.BigEndian.Uint32(b))
	if size < message.MinRecordSize || int(size) > s.maxRecordSize() {
		return 0, fmt.Errorf("engine: no message starts at offset %d", phys)
	}
	return size, nil
}

// readSized reads and verifies the record of size bytes at phys.
func (s *Store) readSized(phys int64, size int32) ([]byte, error) {
	rec, err := s.cl.ReadVerified(phys, size, nil)
	if err != nil {
		return nil, err
	}
	// The offset comes from a client (VIEW_MESSAGE_BY_ID, send-back): make
	// sure it names a record, not bytes inside one that look like a header.
	if v, err := message.Parse(rec); err != nil || v.PhysOffset != phys {
		return nil, fmt.Errorf("engine: no message starts at offset %d", phys)
	}
	return rec, nil
}

// maxRecordSize bounds a stored record: the largest body, the largest
// properties, the longest topic and the fixed fields with IPv6 hosts.
func (s *Store) maxRecordSize() int {
	return s.cfg.MaxMessageSize + message.MaxPropertiesLen + message.MaxTopicLen + 256
}

// MinPhysOffset and MaxPhysOffset bound the commit log.
func (s *Store) MinPhysOffset() int64 { return s.cl.MinOffset() }

// MaxPhysOffset is the end of the appended log.
func (s *Store) MaxPhysOffset() int64 { return s.cl.Tail() }

// DurableOffset is the end of the durable log.
func (s *Store) DurableOffset() int64 { return s.cl.Durable() }

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.cfg.Dir }
