package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// fillSegments appends records until the log spans at least n segments and
// everything is durable; it returns each record's offset and size.
func fillSegments(t *testing.T, l *Log, n int) (offs []int64, sizes []int32) {
	t.Helper()
	for i := 0; l.Tail() < int64(n)*l.SegmentSize(); i++ {
		b := one(fmt.Sprintf("body-%04d-%s", i, bytes.Repeat([]byte("y"), 200)))
		r := mustAppend(t, l, b)
		offs = append(offs, r.Offset)
		sizes = append(sizes, int32(b.ms[0].Size()))
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	return offs, sizes
}

// reuseDescriptors opens many files holding other bytes, so that a closed
// segment descriptor number is handed out again.
func reuseDescriptors(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	junk := bytes.Repeat([]byte{0xEE}, 64<<10)
	for i := 0; i < 32; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, junk, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
	}
}

// TestReaderHeldAcrossRemoval holds a reader between finding a segment
// and its pread while retention removes that segment and the descriptor
// numbers are reused: it must read the record's own bytes, never another
// file's and never fail.
func TestReaderHeldAcrossRemoval(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		l := openLog(t, fs, t.TempDir(), p, Hint{})
		defer l.Close()
		offs, sizes := fillSegments(t, l, 4)
		if l.InMemory(offs[0]) {
			t.Fatal("first segment still mirrored: the test needs a file read")
		}
		var wants [][]byte
		for i := 0; i < 5; i++ {
			b, err := l.ReadVerified(offs[i], sizes[i], nil)
			if err != nil {
				t.Fatal(err)
			}
			wants = append(wants, b)
		}
		want := wants[0]
		entered, resume := make(chan struct{}), make(chan struct{})
		beforeFileRead = func() {
			beforeFileRead = nil
			close(entered)
			<-resume
		}
		defer func() { beforeFileRead = nil }()
		type result struct {
			b   []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			b, err := l.ReadVerified(offs[0], sizes[0], nil)
			done <- result{b, err}
		}()
		<-entered
		// an iterator positioned in the same segment, also held across
		it := l.NewIterator(offs[1])
		defer it.Close()
		if _, _, err := it.Next(l.Durable()); err != nil {
			t.Fatal(err)
		}
		if n, err := l.RemoveSegmentsBefore(2 * l.SegmentSize()); err != nil || n != 2 {
			t.Fatalf("removed %d, %v", n, err)
		}
		reuseDescriptors(t)
		close(resume)
		r := <-done
		if r.err != nil || !bytes.Equal(r.b, want) {
			t.Fatalf("held reader got %v (equal %v)", r.err, bytes.Equal(r.b, want))
		}
		for i := 2; i < 5; i++ {
			_, rec, err := it.Next(l.Durable())
			if err != nil || rec == nil || !bytes.Equal(rec, wants[i]) {
				t.Fatalf("held iterator record %d: %v", i, err)
			}
		}
		if _, err := l.ReadRecord(offs[0], sizes[0], nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read after removal = %v, want ErrNotFound", err)
		}
	})
}

// flipOnDisk flips one bit of the byte at log offset off in its segment
// file, behind the log's back.
func flipOnDisk(t *testing.T, l *Log, fs vfs.FS, off int64) {
	t.Helper()
	base := off - off%l.SegmentSize()
	f, err := fs.Open(l.segmentPath(base), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off-base); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off-base); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestFileReadsAreChecksummed damages a durable record on disk: a verified
// read and the iterator (dispatch) must refuse it with ErrChecksum, and
// records around it still read.
func TestFileReadsAreChecksummed(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		l := openLog(t, fs, t.TempDir(), p, Hint{})
		defer l.Close()
		offs, sizes := fillSegments(t, l, 4)
		if l.InMemory(offs[3]) {
			t.Fatal("record still mirrored")
		}
		flipOnDisk(t, l, fs, offs[3]+int64(sizes[3])-1) // last body/property byte
		if _, err := l.ReadVerified(offs[3], sizes[3], nil); !errors.Is(err, ErrChecksum) {
			t.Fatalf("verified read of a damaged record = %v, want ErrChecksum", err)
		}
		if _, err := l.ReadVerified(offs[2], sizes[2], nil); err != nil {
			t.Fatalf("neighbour: %v", err)
		}
		it := l.NewIterator(offs[2])
		defer it.Close()
		if _, _, err := it.Next(l.Durable()); err != nil {
			t.Fatal(err)
		}
		if _, rec, err := it.Next(l.Durable()); !errors.Is(err, ErrChecksum) || rec != nil {
			t.Fatalf("iterator over a damaged record = %v, want ErrChecksum", err)
		}
	})
}

// TestWriteENOSPCIsNotSticky: a commit-log write failing with ENOSPC loses
// nothing: the appends it carried are reported with unknown durability
// (flush.ErrTimeout, never success), later appends are refused with
// ErrDiskFull, Err stays nil, and once writes work again the log resumes
// by itself with every appended record intact, also after a crash.
func TestWriteENOSPCIsNotSticky(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, p flush.Policy) {
		fsys := crashfs.New()
		l, err := Open(fsys, crashConfig(p, Hint{}))
		must(t, err)
		var offs []int64
		var sizes []int32
		app := func(i int) error {
			b := one(fmt.Sprintf("rec-%d", i))
			r, err := l.Append(b, l.cfg.Policy.Wait())
			if err == nil || errors.Is(err, flush.ErrTimeout) {
				offs, sizes = append(offs, r.Offset), append(sizes, int32(b.ms[0].Size()))
			}
			return err
		}
		for i := 0; i < 10; i++ {
			must(t, app(i))
		}
		fsys.Inject(crashfs.Fault{Op: crashfs.OpWrite, PathContains: segmentFault, Err: syscall.ENOSPC})
		i := 10
		for deadline := time.Now().Add(5 * time.Second); ; i++ {
			err := app(i)
			if errors.Is(err, ErrDiskFull) && !errors.Is(err, flush.ErrTimeout) {
				break // refused: nothing appended
			}
			if err != nil && !(errors.Is(err, flush.ErrTimeout) && errors.Is(err, syscall.ENOSPC)) {
				t.Fatalf("append %d on a full disk: %v", i, err)
			}
			if time.Now().After(deadline) {
				t.Fatal("appends never refused while writes fail with ENOSPC")
			}
			time.Sleep(time.Millisecond)
		}
		if err := l.Err(); err != nil {
			t.Fatalf("ENOSPC on a write made the log sticky: %v", err)
		}
		fsys.ClearFaults()
		for deadline := time.Now().Add(5 * time.Second); ; {
			if err := app(i); err == nil {
				break
			} else if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("append after space came back: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("appends not accepted again after space came back")
			}
			time.Sleep(10 * time.Millisecond)
		}
		must(t, l.Flush())
		end := l.Tail()
		check := func(l *Log) {
			for k, off := range offs {
				if _, err := l.ReadVerified(off, sizes[k], nil); err != nil {
					t.Fatalf("record %d at %d: %v", k, off, err)
				}
			}
		}
		check(l)
		must(t, closeWithin(t, l, 10*time.Second))
		l, err = Open(fsys.Crash(), crashConfig(p, Hint{}))
		must(t, err)
		defer l.Close()
		if l.Tail() != end {
			t.Fatalf("recovered tail %d, want %d", l.Tail(), end)
		}
		check(l)
	})
}

// gatedPrepFS holds segment preparation (Preallocate) while gated.
type gatedPrepFS struct {
	vfs.FS
	mu   sync.Mutex
	gate chan struct{}
}

func (g *gatedPrepFS) Preallocate(f vfs.File, size int64) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.FS.Preallocate(f, size)
}

func (g *gatedPrepFS) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !open && g.gate == nil:
		g.gate = make(chan struct{})
	case open && g.gate != nil:
		close(g.gate)
		g.gate = nil
	}
}

// TestRollWaitsWithoutAppendLock: an append that fills a segment before
// the next one is prepared waits for it without holding the append lock:
// other appenders and readers of the tail go on, and the waiting append
// completes once the preparation does.
func TestRollWaitsWithoutAppendLock(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		g := &gatedPrepFS{FS: fs}
		l, err := Open(g, Config{Dir: t.TempDir(), SegmentSize: 64 << 10, Policy: p, Logger: quiet})
		must(t, err)
		defer l.Close()
		time.Sleep(50 * time.Millisecond) // the first next segment is prepared
		g.set(false)
		defer g.set(true)
		for i := 0; l.Tail() < 2*l.SegmentSize()-8<<10; i++ { // into the second segment
			must(t, appendErr(l, big(i)))
		}
		// the third segment is being prepared, held by the gate
		done := make(chan error, 1)
		go func() {
			var err error
			for i := 0; err == nil && l.Tail() < 2*l.SegmentSize(); i++ {
				err = appendErr(l, big(i))
			}
			done <- err
		}()
		time.Sleep(50 * time.Millisecond) // let it reach the roll and wait
		tailed := make(chan int64, 1)
		go func() { tailed <- l.Tail() }()
		select {
		case <-tailed:
		case <-time.After(2 * time.Second):
			t.Fatal("Tail blocked while an append waited for segment preparation")
		}
		select {
		case err := <-done:
			t.Fatalf("append crossed into an unprepared segment: %v", err)
		default:
		}
		g.set(true)
		if err := <-done; err != nil {
			t.Fatalf("waiting append after the preparation finished: %v", err)
		}
	})
}

// failingPrepFS fails every segment preparation after the first (Open's)
// with EIO, counting them.
type failingPrepFS struct {
	vfs.FS
	calls atomic.Int32
}

func (f *failingPrepFS) Preallocate(file vfs.File, size int64) error {
	if f.calls.Add(1) > 1 {
		return syscall.EIO
	}
	return f.FS.Preallocate(file, size)
}

// TestFailedPreparationBacksOff: appenders that keep needing a segment
// whose preparation fails get the failure at once, but the preparation is
// asked for again only after a doubling back-off. Without it every
// append started (and logged) a preparation: tens of thousands a second
// when a store directory was deleted under a running broker.
func TestFailedPreparationBacksOff(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		f := &failingPrepFS{FS: fs}
		l, err := Open(f, Config{Dir: t.TempDir(), SegmentSize: 64 << 10, Policy: p, Logger: quiet})
		must(t, err)
		defer l.Close()
		i := 0
		for ; err == nil; i++ { // up to the end of the first segment
			err = appendErr(l, big(i))
		}
		start := time.Now()
		failures := 0
		for time.Since(start) < 400*time.Millisecond {
			if err := appendErr(l, big(i)); !errors.Is(err, ErrSegment) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("append needing the failed segment: %v", err)
			}
			failures++
		}
		// 50+100+200 ms of back-off fit in 400 ms: the first attempt and
		// at most three retries, whatever the number of appends.
		if n := f.calls.Load() - 1; n < 2 || n > 4 {
			t.Fatalf("%d preparations for %d failed appends in 400 ms, want 2-4", n, failures)
		}
		if failures < 100 {
			t.Fatalf("only %d appends in 400 ms: failures must be answered at once", failures)
		}
	})
}

// An appender that reaches the wait for a segment after Close, once a
// failed preparation's back-off has passed, gets ErrClosed: asking for the
// segment again would send on the channel Close closed.
func TestAwaitPreparedAfterClose(t *testing.T) {
	f := &failingPrepFS{FS: vfs.Default()}
	l, err := Open(f, Config{Dir: t.TempDir(), SegmentSize: 64 << 10, Policy: flush.DefaultSync, Logger: quiet})
	must(t, err)
	for i := 0; err == nil; i++ { // up to the failed preparation
		err = appendErr(l, big(i))
	}
	if !errors.Is(err, ErrSegment) {
		t.Fatalf("append needing the failed segment: %v", err)
	}
	next := l.Tail() - l.Tail()%l.SegmentSize() + l.SegmentSize()
	must(t, l.Close())
	time.Sleep(prepBackoffMin + 20*time.Millisecond) // the retry is due
	if err := l.awaitPrepared(next); !errors.Is(err, ErrClosed) {
		t.Fatalf("awaitPrepared after Close: %v", err)
	}
}

// big is a record of about 3 KiB: twenty fill a 64 KiB test segment.
func big(i int) *msgs { return one(fmt.Sprintf("%d-%s", i, bytes.Repeat([]byte("z"), 3000))) }

func appendErr(l *Log, b Batch) error {
	_, err := l.Append(b, l.cfg.Policy.Wait())
	return err
}

// slowPrepFS makes every segment preparation slow, so that appenders keep
// running into a segment that is not ready.
type slowPrepFS struct{ vfs.FS }

func (s slowPrepFS) Preallocate(f vfs.File, size int64) error {
	time.Sleep(15 * time.Millisecond)
	return s.FS.Preallocate(f, size)
}

// TestConcurrentRollsWithSlowPreparation: many appenders cross several
// segments whose preparation always lags: every append lands once, in
// order, readable, with no record overlapping another.
func TestConcurrentRollsWithSlowPreparation(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		l, err := Open(slowPrepFS{fs}, Config{Dir: t.TempDir(), SegmentSize: 64 << 10, Policy: p, Logger: quiet})
		must(t, err)
		defer l.Close()
		const writers, per = 6, 60
		var mu sync.Mutex
		got := map[int64]int32{}
		var wg sync.WaitGroup
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					b := one(fmt.Sprintf("%d-%d-%s", g, i, bytes.Repeat([]byte("w"), 1500)))
					r, err := l.Append(b, l.cfg.Policy.Wait())
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got[r.Offset] = int32(b.ms[0].Size())
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		must(t, l.Flush())
		if l.Tail() < 4*l.SegmentSize() {
			t.Fatalf("only %d bytes appended: the test needs several rolls", l.Tail())
		}
		it := l.NewIterator(0)
		defer it.Close()
		n := 0
		for {
			phys, rec, err := it.Next(l.Durable())
			must(t, err)
			if rec == nil {
				break
			}
			if size, ok := got[phys]; !ok || size != int32(len(rec)) {
				t.Fatalf("record at %d (%d bytes) was not appended there", phys, len(rec))
			}
			n++
		}
		if n != writers*per || len(got) != n {
			t.Fatalf("walked %d records, appended %d", n, len(got))
		}
	})
}

// BenchmarkCheckRecord is the cost the checksum check adds to serving a
// 1 KiB record read from a file.
func BenchmarkCheckRecord(b *testing.B) {
	frame := make([]byte, 1024+TrailerSize)
	for i := range frame[:1024] {
		frame[i] = byte(i)
	}
	putUint32(frame[1024:], crc32Checksum(frame[:1024]))
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := CheckRecord(frame, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCloseReportsBytesLeftUnwritten: when the final round of Close cannot
// write what was appended (ENOSPC is not sticky, so Err stays nil), Close
// must say so instead of returning nil: those appends were acknowledged
// (NoWait) and are not in the files.
func TestCloseReportsBytesLeftUnwritten(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, p flush.Policy) {
		fsys := crashfs.New()
		l, err := Open(fsys, crashConfig(p, Hint{}))
		must(t, err)
		fsys.Inject(crashfs.Fault{Op: crashfs.OpWrite, PathContains: segmentFault, Err: syscall.ENOSPC})
		if _, err := l.Append(one("acked"), flush.NoWait); err != nil {
			t.Fatal(err)
		}
		err = closeWithin(t, l, 10*time.Second)
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("Close with appended bytes it could not write = %v, want ErrDiskFull", err)
		}
	})
}
