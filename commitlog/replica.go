package commitlog

// Replica appends: a slave's log takes frames exactly as its master stored
// them (ha/FORMAT.md). Each record keeps the master's PHYSICALOFFSET and
// store timestamp; this log re-derives the same blank markers because the
// segment size is the same (the HA handshake checks it), so the two logs
// end up byte-identical.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
)

// ErrReplicaGap is returned (wrapped) when replicated frames do not start
// where this log ends or name an offset this log would not give them.
var ErrReplicaGap = errors.New("commitlog: replicated frame does not continue this log")

// CheckFrames validates frames (records each followed by its CRC-32C
// trailer, no blank markers) as a master sent them, without appending, and
// returns the offset and size of each record. Every record must pass the
// same checks as recovery (magic, lengths, body CRC, frame CRC) and fit
// a segment of this log's size at the offset it names.
func (l *Log) CheckFrames(frames []byte) (offs []int64, sizes []int64, err error) {
	seg := l.cfg.SegmentSize
	ext := frames[:len(frames):len(frames)]
	if cap(frames) >= len(frames)+blankSize {
		ext = frames[:len(frames)+blankSize]
	} else {
		ext = append(ext, make([]byte, blankSize)...)
	}
	for pos := 0; pos < len(frames); {
		if len(frames)-pos < 8 {
			return nil, nil, fmt.Errorf("%w: %d trailing bytes", ErrReplicaGap, len(frames)-pos)
		}
		size := int64(int32(binary.BigEndian.Uint32(frames[pos:])))
		if size < message.MinRecordSize || size > int64(l.MaxRecordSize()) || int64(pos)+size+trailerSize > int64(len(frames)) {
			return nil, nil, fmt.Errorf("%w: record size %d at frame byte %d", ErrReplicaGap, size, pos)
		}
		// PHYSICALOFFSET is at byte 28 of a record (Java's CommitLog.DefaultAppendMessageCallback).
		phys := int64(binary.BigEndian.Uint64(frames[pos+28:]))
		if phys < 0 {
			return nil, nil, fmt.Errorf("%w: negative offset %d", ErrReplicaGap, phys)
		}
		if rel := phys % seg; rel+size+trailerSize+blankSize > seg {
			return nil, nil, fmt.Errorf("commitlog: replicated record at %d (%d bytes) does not fit its segment", phys, size)
		}
		// checkFrame reads the frame and wants room for a blank marker
		// after it; ext has that spare capacity.
		if _, _, reason := checkFrame(ext[pos:int64(pos)+size+trailerSize+blankSize], phys, 0); reason != "" {
			return nil, nil, fmt.Errorf("commitlog: replicated record at %d is invalid: %s", phys, reason)
		}
		offs, sizes = append(offs, phys), append(sizes, size)
		pos += int(size + trailerSize)
	}
	return offs, sizes, nil
}

// AppendFrames appends frames a master sent, which must continue this log
// at from (its tail), and waits as w says. Each record lands at the offset
// it names, or the whole call fails before anything is appended.
func (l *Log) AppendFrames(from int64, frames []byte, w flush.Wait) (end int64, err error) {
	offs, sizes, err := l.CheckFrames(frames)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	if l.tail != from {
		tail := l.tail
		l.mu.Unlock()
		return 0, fmt.Errorf("%w: frames start at %d, log ends at %d", ErrReplicaGap, from, tail)
	}
	if err := l.checkLanding(offs, sizes); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	pos, now := int64(0), time.Now()
	for i := 0; i < len(offs); i++ {
		at := l.tail
		// The frame as sent, trailer and all: CheckFrames checked it.
		var dst []byte
		if dst, _, err = l.reserveLocked(sizes[i]+trailerSize, now); err == nil {
			copy(dst, frames[pos:pos+sizes[i]+trailerSize])
		}
		if err == errRollWait { // next segment not prepared: wait without the lock, as Append does
			next := l.tailSegment().base + l.cfg.SegmentSize
			l.mu.Unlock()
			err = l.awaitPrepared(next)
			l.mu.Lock()
			now = time.Now() // the wait may have been long
			if err == nil && l.tail != at {
				err = fmt.Errorf("%w: log moved from %d to %d during a segment roll", ErrReplicaGap, at, l.tail)
			}
			if err == nil {
				i-- // the same record again, now that the segment is ready
				continue
			}
		}
		if err != nil {
			break
		}
		pos += sizes[i] + trailerSize
	}
	end = l.tail
	var waiter *flush.Waiter
	if err == nil {
		waiter = l.queueWaiter(w, end, nil, time.Time{}) // a synchronous waiter: no deadline
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	if err != nil {
		return end, err
	}
	if waiter != nil {
		return end, waiter.Wait(l.cfg.Policy.WaitTimeout())
	}
	return end, nil
}

// checkLanding verifies, under mu, that each record would be appended at
// the offset it names: the tail, or the next segment's base when it does
// not fit in the tail segment.
func (l *Log) checkLanding(offs, sizes []int64) error {
	tail := l.tail
	for i, off := range offs {
		n := sizes[i] + trailerSize
		base := tail - tail%l.cfg.SegmentSize
		at := tail
		if tail+n+blankSize > base+l.cfg.SegmentSize {
			at = base + l.cfg.SegmentSize
		}
		if off != at {
			return fmt.Errorf("%w: record names offset %d, this log would put it at %d", ErrReplicaGap, off, at)
		}
		tail = at + n
	}
	return nil
}

// TrailerBefore returns the CRC-32C trailer of the frame ending at end (the
// 4 bytes before it), which a slave and its master compare to agree that
// their logs match at the join point. ok is false when end is 0 or a
// segment base (no frame ends there in the same segment).
func (l *Log) TrailerBefore(end int64) (crc uint32, ok bool, err error) {
	if end <= 0 || end%l.cfg.SegmentSize == 0 {
		return 0, false, nil
	}
	b, err := l.ReadRecord(end-trailerSize, trailerSize, make([]byte, trailerSize))
	if err != nil {
		return 0, false, err
	}
	return binary.BigEndian.Uint32(b), true, nil
}
