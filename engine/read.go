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
	var hdr [8]byte
	b, err := s.cl.ReadRecord(phys, int32(len(hdr)), hdr[:])
	if err != nil {
		return nil, err
	}
	if binary.BigEndian.Uint32(b[4:]) != message.MagicMessage {
		return nil, fmt.Errorf("engine: no message starts at offset %d", phys)
	}
	size := int32(binary.BigEndian.Uint32(b))
	if size < message.MinRecordSize {
		return nil, fmt.Errorf("engine: no message starts at offset %d", phys)
	}
	return s.cl.ReadRecord(phys, size, nil)
}

// MinPhysOffset and MaxPhysOffset bound the commit log.
func (s *Store) MinPhysOffset() int64 { return s.cl.MinOffset() }

// MaxPhysOffset is the end of the appended log.
func (s *Store) MaxPhysOffset() int64 { return s.cl.Tail() }

// DurableOffset is the end of the durable log.
func (s *Store) DurableOffset() int64 { return s.cl.Durable() }

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.cfg.Dir }
