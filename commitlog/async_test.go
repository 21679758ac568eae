package commitlog

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// told is a flush.Completer that hands its outcome over.
type told chan error

func (c told) Complete(_ int64, err error) { c <- err }

func (c told) await(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c:
		select {
		case again := <-c:
			t.Fatalf("told twice: %v, then %v", err, again)
		case <-time.After(time.Millisecond):
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("asynchronous append never told")
		return nil
	}
}

// AppendAsync under SYNC_FLUSH tells its Completer once the record is
// durable, never before.
func TestAppendAsyncToldWhenDurable(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			l := openLog(t, b.fs(t), t.TempDir(), policies[0].p, Hint{})
			defer l.Close()
			c := make(told, 2)
			res, err := l.AppendAsync(one("a"), flush.WaitDurable, c)
			if err != nil {
				t.Fatalf("AppendAsync: %v", err)
			}
			if err := c.await(t); err != nil {
				t.Fatal(err)
			}
			if l.Durable() < res.End {
				t.Fatalf("told durable at %d, record ends at %d", l.Durable(), res.End)
			}
		})
	}
}

// WaitWritten (ASYNC_FLUSH's default) is released once the round has
// written the record, without the loop syncing for it: asynchronously
// (AppendAsync) and blocking (Append). The bytes are in the file by then.
func TestWaitWrittenReleasedByTheWrite(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			l := openLog(t, b.fs(t), t.TempDir(), flush.DefaultAsync, Hint{})
			defer l.Close()
			c := make(told, 2)
			res, err := l.AppendAsync(one("a"), flush.WaitWritten, c)
			if err != nil {
				t.Fatalf("AppendAsync: %v", err)
			}
			if err := c.await(t); err != nil {
				t.Fatal(err)
			}
			if l.Written() < res.End {
				t.Fatalf("told written at %d, record ends at %d", l.Written(), res.End)
			}
			res2, err := l.Append(one("b"), flush.WaitWritten)
			if err != nil || l.Written() < res2.End {
				t.Fatalf("Append: %v; written %d, record ends at %d", err, l.Written(), res2.End)
			}
			if l.Durable() >= res2.End {
				t.Fatalf("ASYNC_FLUSH synced within its interval (durable %d): the write's wait must not sync", l.Durable())
			}
		})
	}
}

// A failed fdatasync tells every asynchronous appender waiting on it the
// error, never nil; one appended just before Close is told nil (its sync
// comes from the loop or from Close's final round).
func TestAppendAsyncToldFailureAndClose(t *testing.T) {
	fsys := crashfs.New()
	l, err := Open(fsys, crashConfig(policies[0].p, Hint{}))
	must(t, err)
	ok := make(told, 2)
	if _, err := l.AppendAsync(taggedBatch(0, 0), flush.WaitDurable, ok); err != nil {
		t.Fatal(err)
	}
	if err := ok.await(t); err != nil {
		t.Fatal(err)
	}
	fsys.Inject(crashfs.Fault{Op: crashfs.OpSync, PathContains: segmentFault, Err: syscall.EIO})
	bad := make(told, 2)
	if _, err := l.AppendAsync(taggedBatch(0, 1), flush.WaitDurable, bad); err != nil {
		t.Fatalf("AppendAsync before the failed sync: %v", err)
	}
	if err := bad.await(t); !errors.Is(err, syscall.EIO) {
		t.Fatalf("told %v, want the failed sync's error", err)
	}
	if _, err := l.AppendAsync(taggedBatch(0, 2), flush.WaitDurable, bad); err == nil {
		t.Fatal("append after the sticky error accepted")
	}
	_ = closeWithin(t, l, 10*time.Second)

	l2, err := Open(crashfs.New(), crashConfig(policies[1].p, Hint{})) // ASYNC: only Close syncs soon
	must(t, err)
	closing := make(told, 2)
	if _, err := l2.AppendAsync(taggedBatch(0, 0), flush.WaitDurable, closing); err != nil {
		t.Fatalf("AppendAsync: %v", err)
	}
	must(t, closeWithin(t, l2, 10*time.Second))
	if err := closing.await(t); err != nil {
		t.Fatalf("told %v by Close's final sync", err)
	}
}
