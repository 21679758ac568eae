package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// putDoneCh is an engine.PutDone that hands the result over.
type putDoneCh chan PutResult

func (c putDoneCh) PutDone(r PutResult) { c <- r }

// putAsync puts m and returns its result, waiting for the completion when
// the put answers later; later reports which it was.
func putAsync(t *testing.T, s *Store, m *message.Message, wait bool) (res PutResult, later bool) {
	t.Helper()
	done := make(putDoneCh, 1)
	res, now := s.PutMessageAsync(nil, m, wait, done)
	if now {
		select {
		case r := <-done:
			t.Fatalf("completed now and also told %v", r)
		default:
		}
		return res, false
	}
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("asynchronous put never completed")
	}
	select {
	case r := <-done:
		t.Fatalf("told twice: %v", r)
	case <-time.After(time.Millisecond):
	}
	return res, true
}

// An asynchronous put answers exactly what the blocking put answers: later,
// once durable under SYNC_FLUSH and once written under ASYNC_FLUSH; with
// WAIT=false at once; refusals at once.
func TestPutMessageAsyncMatchesPut(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		s := openTest(t, ft)
		want := s.PutMessage(msg("T", 1, "blocking", nil))
		// the next record starts after the blocking one and its 4-byte
		// trailer (commitlog/FORMAT.md)
		res, later := putAsync(t, s, msg("T", 1, "async", map[string]string{"UNIQ_KEY": "U1"}), true)
		if !later {
			t.Fatalf("answered at once under %v", ft)
		}
		if res.Status != PutOK || res.QueueOffset != want.QueueOffset+1 ||
			res.Offset != want.Offset+int64(want.Size)+4 || res.Size <= 0 || res.StoreTimestamp == 0 {
			t.Fatalf("async %+v after blocking %+v", res, want)
		}
		if ft == SyncFlush && s.DurableOffset() < res.Offset+int64(res.Size) {
			t.Fatal("told PUT_OK before durable")
		}
		if s.cl.Written() < res.Offset+int64(res.Size) {
			t.Fatal("told PUT_OK before written")
		}
		var b []byte
		waitFor(t, func() bool { // ASYNC_FLUSH: readable once written
			var err error
			b, err = s.ReadMessage(res.Offset)
			return err == nil
		})
		if v, err := message.Parse(b); err != nil || !bytes.Equal(v.Body, []byte("async")) || v.QueueOffset != res.QueueOffset {
			t.Fatalf("stored record: %v", err)
		}
		if _, later := putAsync(t, s, msg("T", 1, "no wait", nil), false); later {
			t.Fatal("WAIT=false answered later")
		}
		if r, later := putAsync(t, s, msg("../x", 1, "bad", nil), true); later || r.Status != MessageIllegal {
			t.Fatalf("illegal topic: %v later=%v", r.Status, later)
		}
	})
}

// A SYNC_FLUSH asynchronous put whose fdatasync outlasts syncFlushTimeout
// is told FLUSH_DISK_TIMEOUT (stored), as the blocking put.
func TestPutMessageAsyncFlushDiskTimeout(t *testing.T) {
	fsys := crashfs.New()
	fsys.GateSyncs(commitLogSyncs, 0)
	cfg := cfsConfig(fsys, SyncFlush, nil)
	cfg.SyncFlushTimeout = 20 * time.Millisecond
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := s.PutMessage(cfsMsg(0)); !r.Status.Stored() {
		t.Fatal(r.Status, r.Err)
	}
	waitFor(t, func() bool { return s.DurableOffset() == s.MaxPhysOffset() })
	fsys.HoldSyncs()
	done := make(putDoneCh, 1)
	if _, now := s.PutMessageAsync(nil, cfsMsg(1), true, done); now {
		fsys.ReleaseSyncs()
		t.Fatal("SYNC_FLUSH put answered at once")
	}
	select {
	case r := <-done:
		fsys.ReleaseSyncs()
		t.Fatalf("told %v while its fdatasync is held", r.Status)
	case <-time.After(5 * time.Millisecond): // well under the 20 ms timeout
	}
	res := <-done
	fsys.ReleaseSyncs()
	if res.Status != FlushDiskTimeout || !res.Status.Stored() {
		t.Fatalf("held fdatasync: %v %v, want FLUSH_DISK_TIMEOUT", res.Status, res.Err)
	}
	waitFor(t, func() bool { return s.DurableOffset() >= res.Offset+int64(res.Size) })
}
