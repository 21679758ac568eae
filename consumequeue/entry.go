package consumequeue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// EntrySize is the size of one consume-queue entry on disk (CQ_STORE_UNIT_SIZE).
const EntrySize = 20

// DefaultEntriesPerFile is the default number of entries per file
// (mappedFileSizeConsumeQueue 6 000 000 bytes / 20).
const DefaultEntriesPerFile = 300_000

// pageSize is the page size used to count dirty pages for Flush(minPages).
const pageSize = 4096

// Entry is one consume-queue entry: where the message lives in the commit
// log and its tag hash code (or, for delay messages, its delivery time).
type Entry struct {
	CommitLogOffset int64 // physical offset of the record in the commit log
	Size            int32 // TOTALSIZE of the record
	TagsCode        int64 // message.TagsCode of TAGS, or delivery time (delay topic)
}

// prefill is the entry written into the slots of a queue's first file that
// precede its first real entry (Java's ConsumeQueue).
var prefill = Entry{CommitLogOffset: 0, Size: math.MaxInt32, TagsCode: 0}

func (e Entry) isPrefill() bool { return e.CommitLogOffset == 0 && e.Size == math.MaxInt32 }

// valid is the recovery rule: an entry is valid iff offset ≥ 0 and size > 0.
// A zeroed (torn) slot is therefore invalid.
func (e Entry) valid() bool { return e.CommitLogOffset >= 0 && e.Size > 0 }

// end is the commit-log offset just past the record.
func (e Entry) end() int64 { return e.CommitLogOffset + int64(e.Size) }

func putEntry(b []byte, e Entry) {
	binary.BigEndian.PutUint64(b[0:8], uint64(e.CommitLogOffset))
	binary.BigEndian.PutUint32(b[8:12], uint32(e.Size))
	binary.BigEndian.PutUint64(b[12:20], uint64(e.TagsCode))
}

func appendEntry(b []byte, e Entry) []byte {
	var tmp [EntrySize]byte
	putEntry(tmp[:], e)
	return append(b, tmp[:]...)
}

func getEntry(b []byte) Entry {
	return Entry{
		CommitLogOffset: int64(binary.BigEndian.Uint64(b[0:8])),
		Size:            int32(binary.BigEndian.Uint32(b[8:12])),
		TagsCode:        int64(binary.BigEndian.Uint64(b[12:20])),
	}
}

// fileName is the 20-digit zero-padded decimal of a file's first byte offset
// in the logical queue.
func fileName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseFileName is the inverse of fileName.
func parseFileName(name string) (int64, bool) {
	if len(name) != 20 {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(name, 10, 64)
	return v, err == nil
}

// Errors returned by the package; they are wrapped with detail, test with
// errors.Is.
var (
	// ErrBelowMin: the requested queue offset is below MinOffset (the
	// entries were removed by retention). Pull answers OFFSET_TOO_SMALL.
	ErrBelowMin = errors.New("consumequeue: offset below min offset")
	// ErrBeyondMax: the requested queue offset is at or past MaxOffset for
	// Get, or past MaxOffset for Read.
	ErrBeyondMax = errors.New("consumequeue: offset beyond max offset")
	// ErrGap: Put at a queue offset past MaxOffset.
	ErrGap = errors.New("consumequeue: put leaves a gap")
	// ErrConflict: Put at a queue offset below MaxOffset for a record that
	// is not already indexed (commit log and queue disagree).
	ErrConflict = errors.New("consumequeue: put conflicts with an existing entry")
	// ErrInvalid: a bad argument (negative offset, size ≤ 0, bad name).
	ErrInvalid = errors.New("consumequeue: invalid argument")
	// ErrClosed: the store or queue was closed (or its topic deleted).
	ErrClosed = errors.New("consumequeue: closed")
	// ErrUnavailable: the queue failed a write or sync (disk full, I/O
	// error) and is out of service until Queue.Reopen rebuilds it: Put
	// refuses entries, reads fail. Other queues are not affected.
	ErrUnavailable = errors.New("consumequeue: queue unavailable after a failed write or sync")
	// ErrCorrupt: files on disk that recovery cannot interpret.
	ErrCorrupt = errors.New("consumequeue: corrupt files")
)
