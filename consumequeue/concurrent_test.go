package consumequeue

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/vfs"
)

// TestConcurrentReadersOneWriter runs one dispatcher, one flusher, one
// retention goroutine and several readers on one queue; run it with -race.
// Every entry a reader gets must be the one put at that offset, and an
// entry must be readable as soon as Put returned.
func TestConcurrentReadersOneWriter(t *testing.T) {
	const n = 6000
	s := openStore(t, t.TempDir(), 64)
	defer s.Close()
	q := mustQueue(t, s, "T", 0)
	var done atomic.Bool
	var put atomic.Int64 // entries [0, put) were put
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	wg.Add(1)
	written := make(chan struct{})
	go func() { // dispatcher
		defer wg.Done()
		defer close(written)
		for i := int64(0); i < n; i++ {
			if err := q.Put(i, ent(i)); err != nil {
				errc <- err
				return
			}
			put.Store(i + 1)
		}
	}()
	background(&wg, &done, errc, func(i int) error { return q.Flush(i % 3) })
	background(&wg, &done, errc, func(i int) error {
		_, err := q.DeleteBelow(ent(put.Load() / 2).CommitLogOffset)
		return err
	})
	var reads atomic.Int64
	for r := 0; r < 4; r++ {
		rng := rand.New(rand.NewSource(int64(r)))
		buf := make([]Entry, 0, 32)
		background(&wg, &done, errc, func(int) error {
			ok, err := readRandom(q, rng, put.Load(), buf)
			if ok {
				reads.Add(1)
			}
			return err
		})
	}
	// Readers keep going after the last Put until they have done some work:
	// on a busy machine the writer can finish before they are scheduled.
	<-written
	for deadline := time.Now().Add(10 * time.Second); reads.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	done.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if reads.Load() < 100 {
		t.Fatalf("only %d successful reads", reads.Load())
	}
	checkRange(t, q, q.MinOffset(), n)
}

// background runs fn(i) for i = 0, 1, … until done is set.
func background(wg *sync.WaitGroup, done *atomic.Bool, errc chan<- error, fn func(i int) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			if err := fn(i); err != nil {
				errc <- err
				return
			}
		}
	}()
}

func readRandom(q *Queue, rng *rand.Rand, put int64, buf []Entry) (bool, error) {
	if put == 0 {
		return false, nil
	}
	from := rng.Int63n(put)
	if rng.Intn(4) == 0 {
		from = put - 1 // the entry just put must be visible
	}
	got, err := q.Read(from, 32, buf[:0])
	if errors.Is(err, ErrBelowMin) {
		return false, nil // retention overtook the reader
	}
	if err != nil {
		return false, err
	}
	if int64(len(got)) < min(32, put-from) {
		return false, fmt.Errorf("Read(%d): %d entries, %d were put", from, len(got), put)
	}
	for i, e := range got {
		if want := ent(from + int64(i)); e != want {
			return false, fmt.Errorf("entry %d = %+v, want %+v", from+int64(i), e, want)
		}
	}
	return true, nil
}

// failFS makes WriteAt fail on demand.
type failFS struct {
	vfs.FS
	fail     atomic.Bool
	failOpen atomic.Bool // creating files fails (disk full)
}

type failFile struct {
	vfs.File
	fs *failFS
}

func (f *failFS) Open(name string, flags vfs.OpenFlags) (vfs.File, error) {
	if f.failOpen.Load() && flags&vfs.Create != 0 {
		return nil, errors.New("injected create error")
	}
	file, err := f.FS.Open(name, flags)
	if err != nil {
		return nil, err
	}
	return failFile{File: file, fs: f}, nil
}

func (f failFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.fail.Load() {
		return 0, errors.New("injected write error")
	}
	return f.File.WriteAt(p, off)
}

// TestWriteErrorTakesQueueOutOfService: a failed write takes its queue out
// of service (Put refuses, reads fail with ErrUnavailable, the error stays
// until Reopen) while another queue keeps working; Reopen drops what was
// not durable, reports where to put entries again, and the queue is
// readable after MarkRepaired.
func TestWriteErrorTakesQueueOutOfService(t *testing.T) {
	s, q := brokenQueue(t, 6)
	other := mustQueue(t, s, "U", 0)
	if err := q.Put(7, ent(7)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put after a failed write = %v", err)
	}
	if _, err := q.Read(0, 7, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Read of a queue out of service = %v", err)
	}
	if got := s.LostFloor(); got != ent(6).CommitLogOffset {
		t.Fatalf("LostFloor = %d, want the first entry not durable (%d)", got, ent(6).CommitLogOffset)
	}
	checkTroubled(t, s, 1)
	if b := s.Broken(); len(b) != 1 || b[0] != q {
		t.Fatalf("Broken = %v, want the failed queue", b)
	}
	putRange(t, other, 0, 5) // the other queue is not affected
	if err := s.Flush(0); err != nil {
		t.Fatalf("Flush with one queue out of service: %v", err)
	}
	checkRange(t, other, 0, 5)
	from, err := q.Reopen()
	if err != nil || from != ent(6).CommitLogOffset {
		t.Fatalf("Reopen = %d, %v", from, err)
	}
	if q.MaxOffset() != 6 {
		t.Fatalf("max after Reopen %d, want 6 (the durable entries)", q.MaxOffset())
	}
	// Being rebuilt: in service again, but still missing entries.
	checkTroubled(t, s, 1)
	if got := s.LostFloor(); got != ent(6).CommitLogOffset || s.Broken() != nil {
		t.Fatalf("while rebuilding: LostFloor = %d, Broken = %v", got, s.Broken())
	}
	putRange(t, q, 6, 9)
	if err := q.Flush(0); err != nil {
		t.Fatal(err)
	}
	q.MarkRepaired()
	q.MarkRepaired() // a second call changes nothing
	checkRange(t, q, 0, 9)
	if s.LostFloor() != -1 {
		t.Fatalf("LostFloor after repair = %d", s.LostFloor())
	}
	checkTroubled(t, s, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReopenAtFileBoundary: the queue fails creating its next file right
// after a full, durable file; Reopen must handle a cut point that ends the
// last file exactly.
func TestReopenAtFileBoundary(t *testing.T) {
	fsys := &failFS{FS: vfs.Default()}
	s, err := Open(fsys, t.TempDir(), Config{EntriesPerFile: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, 4)
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	putRange(t, q, 4, 6)
	fsys.failOpen.Store(true)
	if err := s.Flush(0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Flush failing to create a file = %v", err)
	}
	fsys.failOpen.Store(false)
	from, err := q.Reopen()
	if err != nil || from != ent(4).CommitLogOffset || q.MaxOffset() != 4 {
		t.Fatalf("Reopen = %d, %v; max %d", from, err, q.MaxOffset())
	}
	putRange(t, q, 4, 7)
	if err := q.Flush(0); err != nil {
		t.Fatal(err)
	}
	q.MarkRepaired()
	checkRange(t, q, 0, 7)
}

// checkTroubled checks the store's count of queues out of service or being
// rebuilt, which lets Broken and LostFloor skip their walk when it is 0.
func checkTroubled(t *testing.T, s *Store, want int64) {
	t.Helper()
	if got := s.troubled.Load(); got != want {
		t.Fatalf("troubled queues = %d, want %d", got, want)
	}
}

// Deleting the topic of a queue out of service takes it off the store's
// count of troubled queues, or the per-second walks would come back for
// good; a fault on the deleted queue afterwards counts nothing.
func TestDeleteTopicOfBrokenQueue(t *testing.T) {
	s, q := brokenQueue(t, 3)
	defer s.Close()
	checkTroubled(t, s, 1)
	if err := s.DeleteTopic("T"); err != nil {
		t.Fatal(err)
	}
	checkTroubled(t, s, 0)
	q.fail(errors.New("late fault on the deleted queue"))
	q.MarkRepaired()
	checkTroubled(t, s, 0)
	if s.Broken() != nil || s.LostFloor() != -1 {
		t.Fatalf("after delete: Broken %v, LostFloor %d", s.Broken(), s.LostFloor())
	}
}

// brokenQueue opens a store whose queue T/0 has durable entries [0, n)
// and went out of service writing entry n (a failed write).
func brokenQueue(t *testing.T, n int64) (*Store, *Queue) {
	t.Helper()
	fsys := &failFS{FS: vfs.Default()}
	s, err := Open(fsys, t.TempDir(), Config{EntriesPerFile: 4})
	if err != nil {
		t.Fatal(err)
	}
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, n)
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	checkTroubled(t, s, 0)
	putRange(t, q, n, n+1)
	fsys.fail.Store(true)
	if err := s.Flush(0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Flush with a failing write = %v, want ErrUnavailable", err)
	}
	fsys.fail.Store(false)
	return s, q
}
