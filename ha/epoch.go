package ha

// The epoch file (FORMAT.md §6): which master epoch wrote which part of
// the commit log, as RocketMQ 5's EpochFileCache and Kafka's leader-epoch
// checkpoint keep it. A master begins an epoch at its log end before it
// accepts the first write of that epoch; a slave records the master's
// epochs before it appends their bytes. Comparing histories tells a slave
// how much of its log it shares with a new master (truncate.go).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/mqd/mqd/internal/vfs"
)

// Entry is one epoch: the master epoch and the log offset its first byte
// has (or will have).
type Entry struct {
	Epoch int32
	Start int64
}

// Epoch file layout constants (FORMAT.md §6).
const (
	epochMagic   = 0x4D514550 // "MQEP"
	epochVersion = 1
	epochHead    = 12 // magic, version, count
	epochEntry   = 12 // epoch int32, start int64
	// MaxEpochs bounds the history (file and wire): one entry per
	// failover; Begin fails beyond it.
	MaxEpochs = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrStaleEpoch is returned by Begin for an epoch not above the last one.
var ErrStaleEpoch = errors.New("ha: epoch is not above the last one")

// Epochs is a durable epoch history. Its methods are safe for concurrent
// use; every change is written to a new file that atomically replaces the
// old one (synced, renamed, directory synced) before it returns.
type Epochs struct {
	fsys vfs.FS // nil: in memory only (tests, a store without a directory)
	path string

	mu      sync.Mutex
	entries []Entry // ascending in epoch and start
}

// OpenEpochs opens (or starts empty) the epoch file at path.
func OpenEpochs(fsys vfs.FS, path string) (*Epochs, error) {
	e := &Epochs{fsys: fsys, path: path}
	if fsys == nil {
		return e, nil
	}
	// A leftover .tmp is a replacement that crashed before its rename:
	// the file at path is still the last complete history.
	if err := fsys.Remove(path + ".tmp"); err != nil && !vfs.IsNotExist(err) {
		return nil, fmt.Errorf("ha: epoch file: %w", err)
	}
	b, err := readAll(fsys, path)
	if vfs.IsNotExist(err) {
		return e, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ha: epoch file: %w", err)
	}
	if e.entries, err = decodeEpochs(b); err != nil {
		return nil, fmt.Errorf("ha: epoch file %s: %w", path, err)
	}
	return e, nil
}

// OpenEpochFile opens the epoch file at path on the operating system's
// file system.
func OpenEpochFile(path string) (*Epochs, error) { return OpenEpochs(vfs.Default(), path) }

// NewMemoryEpochs is an epoch history that is not kept on disk.
func NewMemoryEpochs(entries ...Entry) *Epochs { return &Epochs{entries: entries} }

func readAll(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.Open(path, vfs.ReadOnly)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > epochHead+MaxEpochs*epochEntry+4 {
		return nil, fmt.Errorf("%d bytes: too large", size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// encodeEpochs is the file's content for entries.
func encodeEpochs(entries []Entry) []byte {
	b := make([]byte, epochHead+len(entries)*epochEntry+4)
	be := binary.BigEndian
	be.PutUint32(b, epochMagic)
	be.PutUint32(b[4:], epochVersion)
	be.PutUint32(b[8:], uint32(len(entries)))
	putEntries(b[epochHead:], entries)
	n := len(b) - 4
	be.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

func putEntries(b []byte, entries []Entry) {
	for i, x := range entries {
		binary.BigEndian.PutUint32(b[i*epochEntry:], uint32(x.Epoch))
		binary.BigEndian.PutUint64(b[i*epochEntry+4:], uint64(x.Start))
	}
}

// decodeEpochs parses and checks a file's content.
func decodeEpochs(b []byte) ([]Entry, error) {
	be := binary.BigEndian
	if len(b) < epochHead+4 || be.Uint32(b) != epochMagic {
		return nil, fmt.Errorf("not an epoch file (%d bytes)", len(b))
	}
	if v := be.Uint32(b[4:]); v != epochVersion {
		return nil, fmt.Errorf("version %d, want %d", v, epochVersion)
	}
	n := be.Uint32(b[8:])
	if n > MaxEpochs || len(b) != epochHead+int(n)*epochEntry+4 {
		return nil, fmt.Errorf("%d entries in %d bytes", n, len(b))
	}
	end := len(b) - 4
	if got, want := crc32.Checksum(b[:end], castagnoli), be.Uint32(b[end:]); got != want {
		return nil, fmt.Errorf("checksum %#x, stored %#x", got, want)
	}
	return parseEntries(b[epochHead:end], int(n))
}

// parseEntries decodes n entries and checks they grow (epochs strictly,
// starts not decreasing, nothing negative).
func parseEntries(b []byte, n int) ([]Entry, error) {
	out := make([]Entry, n)
	for i := range out {
		x := Entry{Epoch: int32(binary.BigEndian.Uint32(b[i*epochEntry:])), Start: int64(binary.BigEndian.Uint64(b[i*epochEntry+4:]))}
		if x.Epoch <= 0 || x.Start < 0 {
			return nil, fmt.Errorf("entry %d: epoch %d start %d", i, x.Epoch, x.Start)
		}
		if i > 0 && (x.Epoch <= out[i-1].Epoch || x.Start < out[i-1].Start) {
			return nil, fmt.Errorf("entry %d (epoch %d at %d) does not follow epoch %d at %d", i, x.Epoch, x.Start, out[i-1].Epoch, out[i-1].Start)
		}
		out[i] = x
	}
	return out, nil
}

// store replaces the file with entries: write a temporary file, sync it,
// rename it over the old one, sync the directory.
func (e *Epochs) store(entries []Entry) error {
	if e.fsys == nil {
		return nil
	}
	tmp := e.path + ".tmp"
	f, err := e.fsys.Open(tmp, vfs.Create)
	if err != nil {
		return fmt.Errorf("ha: epoch file: %w", err)
	}
	b := encodeEpochs(entries)
	err = f.Truncate(0)
	if err == nil {
		err = f.WritevSync([][]byte{b}, 0)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = e.fsys.Rename(tmp, e.path)
	}
	if err == nil {
		err = e.fsys.SyncDir(dirOf(e.path))
	}
	if err != nil {
		return fmt.Errorf("ha: writing epoch file %s: %w", e.path, err)
	}
	return nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}

// Last is the newest entry ({0, 0} when the history is empty: epoch 0 is
// the implicit epoch of a log written before any epoch began).
func (e *Epochs) Last() Entry {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.entries) == 0 {
		return Entry{}
	}
	return e.entries[len(e.entries)-1]
}

// Entries is a copy of the history, oldest first.
func (e *Epochs) Entries() []Entry {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Entry(nil), e.entries...)
}

// Begin records that epoch starts at start, durably before it returns.
// epoch must be above the last epoch (ErrStaleEpoch) and start not below
// the last start.
func (e *Epochs) Begin(epoch int32, start int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if epoch <= 0 || start < 0 {
		return fmt.Errorf("ha: epoch %d at %d: epochs start at 1, offsets at 0", epoch, start)
	}
	if n := len(e.entries); n > 0 {
		last := e.entries[n-1]
		if epoch <= last.Epoch {
			return fmt.Errorf("%w: epoch %d, last %d", ErrStaleEpoch, epoch, last.Epoch)
		}
		if start < last.Start {
			return fmt.Errorf("ha: epoch %d at %d starts below epoch %d at %d", epoch, start, last.Epoch, last.Start)
		}
	}
	if len(e.entries) >= MaxEpochs {
		return fmt.Errorf("ha: epoch history full (%d entries)", MaxEpochs)
	}
	next := append(append([]Entry(nil), e.entries...), Entry{epoch, start})
	if err := e.store(next); err != nil {
		return err
	}
	e.entries = next
	return nil
}

// EndOf is where epoch ends in this history: the start of the next epoch,
// or open (false) when epoch is the last one. An epoch not in the history
// ends where the first epoch above it starts.
func (e *Epochs) EndOf(epoch int32) (end int64, closed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.entries {
		if x.Epoch > epoch {
			return x.Start, true
		}
	}
	return 0, false
}

// TruncateAfter drops every epoch that starts at or after offset (its
// bytes are gone from a log truncated to offset), durably.
func (e *Epochs) TruncateAfter(offset int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	keep := len(e.entries)
	for keep > 0 && e.entries[keep-1].Start >= offset {
		keep--
	}
	if keep == len(e.entries) {
		return nil
	}
	next := append([]Entry(nil), e.entries[:keep]...)
	if err := e.store(next); err != nil {
		return err
	}
	e.entries = next
	return nil
}
