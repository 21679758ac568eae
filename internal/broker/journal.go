package broker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// A journal is the append-only log of auto-created entries beside a
// config file (topics.json.journal, subscriptionGroup.json.journal;
// FORMAT.md). An auto-creation appends one line and waits for its fsync
// (concurrent creations share one) instead of rewriting the whole file:
// a creation costs a few hundred bytes and one fdatasync, whatever the
// table's size, and is durable once acknowledged. A full rewrite of the
// file compacts the journal: it is emptied when nothing was appended
// since the rewrite's snapshot. Each line carries the table's data
// version; at load only lines newer than the file's version are applied,
// so a journal that outlived its compaction (a crash between the rewrite
// and the truncation) changes nothing.
//
// Ordering: the owner appends while holding its table's write lock and
// takes compaction marks under the same lock, so a line is either in the
// snapshot a rewrite wrote or after its mark.
//
// Errors are sticky: after a failed write or fsync the journal refuses
// every append (the fsync is never retried) and the owner falls back to
// full rewrites.
type journal struct {
	path string
	mu   sync.Mutex
	f    *os.File
	end  int64 // logical bytes appended since open; never reset
	// synced: logical offset durable (fsynced, or covered by a rewrite).
	synced  int64
	records int // lines in the file
	err     error
	syncMu  sync.Mutex // one fsync at a time; waiters share it
}

// journalLine is one record: the data version after the change and the
// created entry.
type journalLine struct {
	V int64           `json:"v"`
	C json.RawMessage `json:"c"`
}

// journalSuffix names a config file's journal: topics.json.journal.
const journalSuffix = ".journal"

// compactJournalAfter is the number of lines after which the owner
// rewrites its file (and so empties the journal) on the next creation.
const compactJournalAfter = 1024

// openJournal opens path for appending, emptied: call it after the file
// that covers the journal's lines was rewritten.
func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &journal{path: path, f: f}, nil
}

// readJournal hands apply every line of path whose version is above
// after, in file order. A missing file has no lines. The last line
// without its newline is a torn append, never acknowledged: it is
// dropped and logged. A complete line that does not decode is damage: it
// is logged as an ERROR and skipped, and the lines after it are applied.
func readJournal(path string, after int64, log *slog.Logger, apply func(v int64, c json.RawMessage) error) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	parseJournal(data, path, after, log, apply)
	return nil
}

// parseJournal is readJournal on the file's bytes (path names it in logs).
func parseJournal(data []byte, path string, after int64, log *slog.Logger, apply func(v int64, c json.RawMessage) error) {
	r := bufio.NewReader(bytes.NewReader(data))
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				log.Warn("broker: journal ends with a torn line (an unacknowledged creation); dropped",
					"file", path, "line", n, "bytes", len(line))
			}
			return
		}
		var rec journalLine
		if err := json.Unmarshal(line, &rec); err != nil || rec.C == nil {
			log.Error("broker: damaged journal line skipped", "file", path, "line", n, "err", err)
			continue
		}
		if rec.V <= after {
			continue
		}
		if err := apply(rec.V, rec.C); err != nil {
			log.Error("broker: journal line not applied", "file", path, "line", n, "err", err)
		}
	}
}

// replayJournal reads path's lines newer than version *counter as T
// values, hands each to apply and raises *counter to the newest line's
// version; it reports whether any line was applied.
func replayJournal[T any](path string, counter *int64, log *slog.Logger, apply func(T)) (bool, error) {
	applied := false
	err := readJournal(path, *counter, log, func(v int64, c json.RawMessage) error {
		var x T
		if err := json.Unmarshal(c, &x); err != nil {
			return err
		}
		apply(x)
		*counter, applied = max(*counter, v), true
		return nil
	})
	return applied, err
}

// append writes one line for entry c at version v; the caller holds its
// table's write lock. It returns the logical offset to wait for with
// syncThrough.
func (j *journal) append(v int64, c any) (int64, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	line, err := json.Marshal(journalLine{V: v, C: raw})
	if err != nil {
		return 0, err
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return 0, j.err
	}
	if _, err := j.f.Write(line); err != nil {
		j.err = fmt.Errorf("journal %s: write: %w", j.path, err)
		return 0, j.err
	}
	j.end += int64(len(line))
	j.records++
	return j.end, nil
}

// syncThrough returns once the journal is durable through offset end: one
// fsync covers every line appended before it started.
func (j *journal) syncThrough(end int64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if j.synced >= end || j.err != nil {
		err := j.err
		if j.synced >= end {
			err = nil
		}
		j.mu.Unlock()
		return err
	}
	target, f := j.end, j.f
	j.mu.Unlock()
	err := f.Sync()
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.err = fmt.Errorf("journal %s: fsync: %w", j.path, err)
		return j.err
	}
	j.synced = max(j.synced, target)
	return nil
}

// mark is the offset a rewrite's snapshot covers (caller holds the table's
// lock, so no append runs).
func (j *journal) mark() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.end
}

// len is the number of lines in the file.
func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.records
}

// compacted records that a rewrite made everything through mark durable
// (caller holds the table's write lock); the file is emptied when nothing
// was appended since. The truncation needs no fsync: lines that come back
// after a crash are older than the rewritten file's version.
func (j *journal) compacted(mark int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.synced = max(j.synced, mark)
	if j.end != mark || j.err != nil {
		return
	}
	if err := j.f.Truncate(0); err != nil {
		j.err = fmt.Errorf("journal %s: truncate: %w", j.path, err)
		return
	}
	j.records = 0
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = fmt.Errorf("journal %s: closed", j.path)
	}
	return j.f.Close()
}
