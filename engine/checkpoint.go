package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// Checkpoint file layout (4096 bytes, two 2048-byte slots written
// alternately so a torn write of one leaves the other intact). Each slot:
//
//	off size field
//	  0    8 physicMsgTimestamp  store time of the last durable record (RocketMQ)
//	  8    8 logicsMsgTimestamp  store time of the last dispatched record (RocketMQ)
//	 16    8 indexMsgTimestamp   end time of the last full index file (RocketMQ)
//	 24    8 physicOffset        commit-log offset known durable (a record boundary)
//	 32    8 dispatchedOffset    commit-log offset dispatched to queues and index
//	 40    8 sequence            increases with every write; the higher valid slot wins
//	 48    4 crc32c              of bytes 0..47
//	 52    1 extension version   1 (0: no extension, written before it existed)
//	 53    1 flushMode           policy this run writes the log with: 1 SYNC_FLUSH, 2 ASYNC_FLUSH
//	 54    2 reserved            0
//	 56    8 maxWrite            the log's write piece (bytes at most written but unsynced under SYNC_FLUSH)
//	 64    4 crc32c              of bytes 52..63
//
// The extension is checked on its own: a slot without it (an older mqd,
// or one that zeroed it) still gives bytes 0..47, and recovery then judges
// the log's tail by the policy it runs with. An older mqd reads bytes
// 0..51 only and writes zeros after them. The flush mode is written by
// Open before the first append of a run, so it always names the policy
// that wrote the log's unsynced tail (commitlog/FORMAT.md, "Recovery").
//
// Slot 0 starts at byte 0, so the first three fields sit where the Java
// broker keeps them. Crash walk-through: a crash while writing slot k leaves
// slot 1-k valid (one write earlier); a crash between the write and the
// sync may leave either; both describe offsets that were durable when they
// were written, which is all recovery needs (it scans forward from there).
type checkpoint struct {
	PhysicTimestamp  int64
	LogicsTimestamp  int64
	IndexTimestamp   int64
	PhysicOffset     int64
	DispatchedOffset int64
	FlushMode        flush.Mode // ModeUnknown: no extension
	MaxWrite         int64
	seq              int64
}

const (
	checkpointSize = 4096
	slotSize       = 2048
	slotPayload    = 48
	extOffset      = 52 // the extension: version, flush mode, max write
	extPayload     = 12
	extVersion     = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (c *checkpoint) encode(b []byte) {
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(c.PhysicTimestamp))
	be.PutUint64(b[8:], uint64(c.LogicsTimestamp))
	be.PutUint64(b[16:], uint64(c.IndexTimestamp))
	be.PutUint64(b[24:], uint64(c.PhysicOffset))
	be.PutUint64(b[32:], uint64(c.DispatchedOffset))
	be.PutUint64(b[40:], uint64(c.seq))
	be.PutUint32(b[48:], crc32.Checksum(b[:slotPayload], castagnoli))
	if c.FlushMode == flush.ModeUnknown {
		return
	}
	x := b[extOffset:]
	x[0], x[1] = extVersion, byte(c.FlushMode)
	be.PutUint64(x[4:], uint64(c.MaxWrite))
	be.PutUint32(x[extPayload:], crc32.Checksum(x[:extPayload], castagnoli))
}

func decodeSlot(b []byte) (checkpoint, bool) {
	be := binary.BigEndian
	if crc32.Checksum(b[:slotPayload], castagnoli) != be.Uint32(b[48:]) || be.Uint64(b[40:]) == 0 {
		return checkpoint{}, false
	}
	c := checkpoint{
		PhysicTimestamp: int64(be.Uint64(b[0:])), LogicsTimestamp: int64(be.Uint64(b[8:])),
		IndexTimestamp: int64(be.Uint64(b[16:])), PhysicOffset: int64(be.Uint64(b[24:])),
		DispatchedOffset: int64(be.Uint64(b[32:])), seq: int64(be.Uint64(b[40:])),
	}
	x := b[extOffset:]
	if x[0] >= extVersion && crc32.Checksum(x[:extPayload], castagnoli) == be.Uint32(x[extPayload:]) {
		c.FlushMode, c.MaxWrite = flush.Mode(x[1]), int64(be.Uint64(x[4:]))
	}
	return c, true
}

// checkpointFile owns the checkpoint file; one goroutine writes it at a
// time (the engine's checkpoint loop, or Close after that loop stopped).
type checkpointFile struct {
	f    vfs.File
	last checkpoint
	buf  []byte
}

func openCheckpoint(fsys vfs.FS, path string) (*checkpointFile, error) {
	f, err := fsys.Open(path, vfs.Create)
	if err != nil {
		return nil, fmt.Errorf("engine: checkpoint: %w", err)
	}
	cf := &checkpointFile{f: f, buf: make([]byte, checkpointSize)}
	n, _ := f.ReadAt(cf.buf, 0)
	if n == checkpointSize {
		a, okA := decodeSlot(cf.buf[:slotSize])
		b, okB := decodeSlot(cf.buf[slotSize:])
		switch {
		case okA && (!okB || a.seq > b.seq):
			cf.last = a
		case okB:
			cf.last = b
		}
	}
	return cf, nil
}

// write stores c in the slot after the last one and syncs.
func (cf *checkpointFile) write(c checkpoint) error {
	c.seq = cf.last.seq + 1
	off := int64(c.seq%2) * slotSize
	slot := cf.buf[off : off+slotSize]
	clear(slot)
	c.encode(slot)
	if _, err := cf.f.WriteAt(slot, off); err != nil {
		return fmt.Errorf("engine: write checkpoint: %w", err)
	}
	if err := cf.f.Sync(); err != nil {
		return fmt.Errorf("engine: sync checkpoint: %w", err)
	}
	cf.last = c
	return nil
}

func (cf *checkpointFile) close() error { return cf.f.Close() }
