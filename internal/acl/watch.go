package acl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// DefaultReloadInterval is how often the file is looked at (Java's
// AclFileWatchService checks every 5 s).
const DefaultReloadInterval = 5 * time.Second

// Watcher owns a Validator loaded from one plain_acl.yml and reloads it
// when the file's modification time or size changes. A file that cannot
// be read or parsed leaves the last good table in force and is logged
// once per change.
type Watcher struct {
	path string
	log  *slog.Logger
	v    *Validator

	// Owned by the goroutine calling Poll (Run's): what the file looked
	// like when it was last read, and a changed look not yet read.
	seen, changed fileStamp
}

type fileStamp struct {
	exists bool
	mtime  time.Time
	size   int64
}

// NewWatcher loads path. A file that exists but is invalid is an error
// (there is no last good table to keep); a missing file gives an empty
// table, which refuses every request not white-listed, and a warning.
func NewWatcher(path string, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.Default()
	}
	w := &Watcher{path: path, log: log}
	st, t, err := w.load()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("acl: file not found; every request not white-listed is refused until it appears", "file", path)
		t = &Table{Accounts: map[string]*Account{}}
	case err != nil:
		return nil, err
	}
	w.seen = st
	w.v = NewValidator(t)
	w.logLoaded(t)
	return w, nil
}

// Validator is the validator the watcher keeps current.
func (w *Watcher) Validator() *Validator { return w.v }

// Path is the watched file.
func (w *Watcher) Path() string { return w.path }

// Poll reloads the file if it changed since it was last read and has
// stayed the same since the previous Poll: a file rewritten in place is
// first truncated, then written, and a Poll in between must not take the
// empty or half-written file (with an empty one every account would be
// gone until the next Poll). So a change takes effect one to two
// intervals after the writer is done. It reports whether a new table is
// in force; err is the reason a changed file was not taken.
func (w *Watcher) Poll() (reloaded bool, err error) {
	st := stamp(w.path)
	if st == w.seen {
		w.changed = st
		return false, nil
	}
	if st != w.changed {
		w.changed = st // settling: read it if it looks the same next time
		return false, nil
	}
	st, t, err := w.load()
	w.seen = st
	if err != nil {
		w.log.Error("acl: keeping the previous configuration; the changed file is not valid", "file", w.path, "err", err)
		return false, err
	}
	w.v.SetTable(t)
	w.logLoaded(t)
	return true, nil
}

// Run polls every interval until stop is closed.
func (w *Watcher) Run(stop <-chan struct{}, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			w.Poll()
		}
	}
}

// load reads and parses the file; the stamp is taken from the open file
// so that a change during the read is seen by the next Poll.
func (w *Watcher) load() (fileStamp, *Table, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return fileStamp{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileStamp{}, nil, err
	}
	st := fileStamp{exists: true, mtime: fi.ModTime(), size: fi.Size()}
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return st, nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return st, nil, fmt.Errorf("%s: %w", w.path, err)
	}
	return st, t, nil
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, mtime: fi.ModTime(), size: fi.Size()}
}

func (w *Watcher) logLoaded(t *Table) {
	for _, warn := range t.Warnings {
		w.log.Warn("acl: "+warn, "file", w.path)
	}
	w.log.Info("acl: configuration loaded", "file", w.path, "accounts", len(t.Accounts), "globalWhite", len(t.GlobalWhite))
}
