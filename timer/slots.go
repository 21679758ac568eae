package timer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// entry is one pending timer message in a slot file (FORMAT.md).
type entry struct {
	target int64 // when to act, epoch ms (delivery time, or park time of a roll)
	phys   int64 // commit-log offset of the rmq_sys_wheel_timer record
	size   int32 // its size
	flags  int32 // flagRoll
}

const (
	entrySize = 24
	flagRoll  = 1    // re-put to the timer topic instead of delivering
	maxOpen   = 1024 // slot files kept open for appending
)

func (e entry) encode(b []byte) {
	be := binary.BigEndian
	be.PutUint64(b, uint64(e.target))
	be.PutUint64(b[8:], uint64(e.phys))
	be.PutUint32(b[16:], uint32(e.size))
	be.PutUint32(b[20:], uint32(e.flags))
}

func decodeEntry(b []byte) entry {
	be := binary.BigEndian
	return entry{target: int64(be.Uint64(b)), phys: int64(be.Uint64(b[8:])), size: int32(be.Uint32(b[16:])),
		flags: int32(be.Uint32(b[20:]))}
}

// Slot levels: a file lists the entries due in one second, one minute or
// one hour (FORMAT.md).
const (
	levelSecond = iota
	levelMinute
	levelHour
)

type slotKey struct {
	level int
	n     int64 // epoch second, minute or hour
}

// slots is the directory of slot files: s/<hour>/<second>, m/<minute>,
// h/<hour>, each an append-only list of entries. Only the run goroutine
// appends; removal of finished files may run concurrently.
type slots struct {
	dir   string
	open  map[slotKey]*os.File // open for append
	lru   []slotKey
	hours map[int64]bool // s/<hour> directories known to exist
	dirty atomic.Bool    // appended since the last sync
}

func openSlots(dir string) (*slots, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{"s", "m", "h"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &slots{dir: dir, open: map[slotKey]*os.File{}, hours: map[int64]bool{}}, nil
}

func (s *slots) path(k slotKey) string {
	n := strconv.FormatInt(k.n, 10)
	switch k.level {
	case levelMinute:
		return filepath.Join(s.dir, "m", n)
	case levelHour:
		return filepath.Join(s.dir, "h", n)
	}
	return filepath.Join(s.dir, "s", strconv.FormatInt(k.n/3600, 10), n)
}

// append adds e to the file of k.
func (s *slots) append(k slotKey, e entry) error {
	f, err := s.file(k)
	if err != nil {
		return err
	}
	var b [entrySize]byte
	e.encode(b[:])
	s.dirty.Store(true)
	_, err = f.Write(b[:])
	return err
}

func (s *slots) file(k slotKey) (*os.File, error) {
	if f, ok := s.open[k]; ok {
		return f, nil
	}
	if len(s.lru) >= maxOpen {
		old := s.lru[0]
		s.lru = s.lru[1:]
		s.open[old].Close()
		delete(s.open, old)
	}
	p := s.path(k)
	if h := k.n / 3600; k.level == levelSecond && !s.hours[h] {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		s.hours[h] = true
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	s.open[k] = f
	s.lru = append(s.lru, k)
	return f, nil
}

// read returns k's entries, without a torn trailing entry, empty entries,
// and repeats of a commit-log offset (filed again after a crash).
func (s *slots) read(k slotKey) ([]entry, error) {
	data, err := os.ReadFile(s.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := make(map[int64]bool, len(data)/entrySize)
	out := make([]entry, 0, len(data)/entrySize)
	for p := 0; p+entrySize <= len(data); p += entrySize {
		e := decodeEntry(data[p:])
		if e.size <= 0 || seen[e.phys] {
			continue
		}
		seen[e.phys] = true
		out = append(out, e)
	}
	return out, nil
}

// scan hands k's entries to fn in chunks of at most 43,690 (1 MiB), so
// cascading a crowded hour never holds it whole; repeats are not dropped.
func (s *slots) scan(k slotKey, fn func([]entry) error) error {
	f, err := os.Open(s.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, (1<<20)/entrySize*entrySize)
	es := make([]entry, 0, len(buf)/entrySize)
	for {
		n, err := io.ReadFull(f, buf)
		es = es[:0]
		for p := 0; p+entrySize <= n; p += entrySize {
			if e := decodeEntry(buf[p:]); e.size > 0 {
				es = append(es, e)
			}
		}
		if ferr := fn(es); ferr != nil {
			return ferr
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// next is the first slot second ≥ from that has a file, or −1 if there is
// none up to limit.
func (s *slots) next(from, limit int64) int64 {
	for h := from / 3600; h <= limit/3600; h++ {
		names, err := os.ReadDir(filepath.Join(s.dir, "s", strconv.FormatInt(h, 10)))
		if err != nil {
			continue
		}
		best := int64(-1)
		for _, n := range names {
			sec, err := strconv.ParseInt(n.Name(), 10, 64)
			if err == nil && sec >= from && sec <= limit && (best < 0 || sec < best) {
				best = sec
			}
		}
		if best >= 0 {
			return best
		}
	}
	return -1
}

// removeBefore deletes the second files (and emptied hour directories)
// before sec, and the minute and hour files before min and hour: all
// already delivered or cascaded.
func (s *slots) removeBefore(sec, min, hour int64) error {
	errs := []error{removeNumbered(filepath.Join(s.dir, "m"), min), removeNumbered(filepath.Join(s.dir, "h"), hour)}
	hours, err := os.ReadDir(filepath.Join(s.dir, "s"))
	if err != nil {
		return err
	}
	for _, h := range hours {
		hour, err := strconv.ParseInt(h.Name(), 10, 64)
		if err != nil || hour > sec/3600 {
			continue
		}
		hdir := filepath.Join(s.dir, "s", h.Name())
		names, _ := os.ReadDir(hdir)
		left := len(names)
		for _, n := range names {
			if v, err := strconv.ParseInt(n.Name(), 10, 64); err == nil && v < sec {
				if err := os.Remove(filepath.Join(hdir, n.Name())); err != nil {
					errs = append(errs, err)
					continue
				}
				left--
			}
		}
		if left == 0 && hour < sec/3600 {
			os.Remove(hdir) // never appended to again: appends go to seconds ≥ sec
		}
	}
	return errors.Join(errs...)
}

// removeNumbered deletes the files of dir named by a number below n.
func removeNumbered(dir string, n int64) error {
	names, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range names {
		if v, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && v < n {
			errs = append(errs, os.Remove(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// sync makes every slot file written so far durable: one syncfs(2) for the
// file system instead of one fsync per touched slot.
func (s *slots) sync() error {
	if !s.dirty.Swap(false) {
		return nil
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		s.dirty.Store(true)
		return fmt.Errorf("timer: syncfs %s: %w", s.dir, err)
	}
	return nil
}

func (s *slots) close() {
	for _, f := range s.open {
		f.Close()
	}
	clear(s.open)
	s.lru = nil
}
