package engine

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// heldReplica is a ReplicaAsyncWaiter a test answers: it records each
// wait's end and keeps its ReplicaDone until release.
type heldReplica struct {
	mu    sync.Mutex
	ends  []int64
	dones []ReplicaDone
	now   *PutStatus // when set, every wait is decided at once with it
}

func (h *heldReplica) WaitReplica(int64) PutStatus { panic("the deferred path must not block") }

func (h *heldReplica) WaitReplicaAsync(end int64, done ReplicaDone) (PutStatus, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ends = append(h.ends, end)
	if h.now != nil {
		return *h.now, true
	}
	h.dones = append(h.dones, done)
	return 0, false
}

// grouped counts the puts in the held waits' groups.
func (h *heldReplica) grouped(s *Store) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.rg.mu.Lock()
	defer s.rg.mu.Unlock()
	n := 0
	for _, d := range h.dones {
		if g, ok := d.(*replicaGroup); ok {
			n += len(g.reqs)
		} else {
			n++ // a put waiting alone
		}
	}
	return n
}

// checkGroups checks the held groups against the log: each asks for an
// end the log has written, at most the span past its first put's, its
// puts end at or below it and above the previous group's, the groups'
// puts are in log order, and none still references its message (a
// deferred send must not keep its body alive while it waits).
func (h *heldReplica) checkGroups(t *testing.T, s *Store) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := int64(-1)
	for i, d := range h.dones {
		g := d.(*replicaGroup)
		if g.end != h.ends[i] || g.end > s.cl.Written() {
			t.Fatalf("group %d asked %d for end %d, log written to %d", i, h.ends[i], g.end, s.cl.Written())
		}
		if len(g.reqs) > 0 {
			if first := g.reqs[0].out; g.end > first.Offset+int64(first.Size)+4+s.rg.span {
				t.Fatalf("group %d ends at %d, more than %d past its first put [%d, +%d)", i, g.end, s.rg.span, first.Offset, first.Size)
			}
		}
		for _, r := range g.reqs {
			if r.ms != nil || r.one[0] != nil {
				t.Fatalf("group %d holds a put that still references its message", i)
			}
			end := r.out.Offset + int64(r.out.Size) + 4
			if end > g.end || end <= prev {
				t.Fatalf("group %d (end %d) holds a put ending at %d after %d", i, g.end, end, prev)
			}
			prev = end
		}
	}
}

// release answers every held wait with st and reports how many there were.
func (h *heldReplica) release(st PutStatus) int {
	h.mu.Lock()
	dones := h.dones
	h.dones = nil
	h.mu.Unlock()
	for _, d := range dones {
		d.ReplicaDone(st)
	}
	return len(dones)
}

// putConcurrently makes n deferred puts from 8 goroutines over 4 queues,
// each answered later through done.
func putConcurrently(t *testing.T, s *Store, n int, done PutDone) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range n / 8 {
				if r, now := s.PutMessageAsync(nil, msg("T", int32(g%4), fmt.Sprint(i), nil), true, done); now {
					t.Errorf("put answered at once: %v", r.Status)
				}
			}
		})
	}
	wg.Wait()
}

// A SYNC_MASTER's deferred puts wait for the slave in groups: the puts a
// flush round releases share one replica wait, for an offset at or past
// each of their ends; its answer, success or not, reaches each put once;
// puts after an answer open a new group.
func TestReplicaWaitsAreGrouped(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		s := openTest(t, ft)
		h := &heldReplica{}
		s.SetReplicaWaiter(h)
		const n = 400
		done := make(putDoneCh, n)
		putConcurrently(t, s, n, done)
		waitFor(t, func() bool { return h.grouped(s) == n }) // every put stored and in a group
		select {
		case r := <-done:
			t.Fatalf("answered before the slave: %v", r.Status)
		case <-time.After(20 * time.Millisecond):
		}
		h.mu.Lock()
		asks := len(h.ends)
		h.mu.Unlock()
		if asks >= n {
			t.Fatalf("%d replica waits for %d puts: not grouped", asks, n)
		}
		h.checkGroups(t, s)
		// The first wait's answer reaches exactly the puts below its end
		// (the flush loop completes puts in log order), the rest's the
		// others.
		h.mu.Lock()
		first, rest := h.dones[0], h.dones[1:]
		firstEnd := h.ends[0]
		h.dones = rest
		h.mu.Unlock()
		first.ReplicaDone(PutOK)
		answered := 0
		for more := true; more; {
			select {
			case r := <-done:
				answered++
				if r.Status != PutOK || r.Offset+int64(r.Size)+4 > firstEnd {
					t.Fatalf("first group answered %v for [%d,%d), its end %d", r.Status, r.Offset, r.Offset+int64(r.Size)+4, firstEnd)
				}
			default:
				more = false // ReplicaDone answers before it returns
			}
		}
		if got := h.release(PutOK); got != asks-1 {
			t.Fatalf("released %d of %d waits", got, asks-1)
		}
		for ; answered < n; answered++ {
			select {
			case r := <-done:
				if r.Status != PutOK || r.Offset+int64(r.Size)+4 <= firstEnd {
					t.Fatalf("a later group answered %v for [%d,...), the first's end %d", r.Status, r.Offset, firstEnd)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a put was never answered")
			}
		}
		select {
		case r := <-done:
			t.Fatalf("an extra answer: %v", r)
		case <-time.After(5 * time.Millisecond):
		}

		// A failed wait answers its whole group with its status.
		for i := range 3 {
			if _, now := s.PutMessageAsync(nil, msg("T", 0, fmt.Sprint(i), nil), true, done); now {
				t.Fatal("answered at once")
			}
		}
		waitFor(t, func() bool { return h.grouped(s) == 3 })
		h.release(FlushSlaveTimeout)
		for range 3 {
			if r := <-done; r.Status != FlushSlaveTimeout {
				t.Fatalf("status %v after the slave's timeout", r.Status)
			}
		}

		// Decided at once (no slave): every put gets the answer.
		st := SlaveNotAvailable
		h.mu.Lock()
		h.now = &st
		h.mu.Unlock()
		for i := range 5 {
			if _, now := s.PutMessageAsync(nil, msg("T", 0, fmt.Sprint(i), nil), true, done); now {
				t.Fatal("answered at once, before its flush")
			}
		}
		for range 5 {
			select {
			case r := <-done:
				if r.Status != SlaveNotAvailable {
					t.Fatalf("status %v without a slave", r.Status)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a put was never answered")
			}
		}
	})
}

// racingReplica answers every wait at once from another goroutine, so
// groups are answered while the flush loop is still adding puts to them.
type racingReplica struct {
	mu   sync.Mutex
	asks int
}

func (w *racingReplica) WaitReplica(int64) PutStatus { panic("the deferred path must not block") }

func (w *racingReplica) WaitReplicaAsync(_ int64, done ReplicaDone) (PutStatus, bool) {
	w.mu.Lock()
	w.asks++
	w.mu.Unlock()
	go done.ReplicaDone(PutOK)
	return 0, false
}

// Every put is answered exactly once while groups are answered as they
// fill (run with -race).
func TestReplicaGroupsAnsweredWhileJoining(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		s := openTest(t, ft)
		w := &racingReplica{}
		s.SetReplicaWaiter(w)
		const n = 800
		done := make(putDoneCh, n+1)
		putConcurrently(t, s, n, done)
		seen := make(map[int64]bool, n)
		for range n {
			select {
			case r := <-done:
				if r.Status != PutOK || seen[r.Offset] {
					t.Fatalf("status %v, offset %d seen before: %v", r.Status, r.Offset, seen[r.Offset])
				}
				seen[r.Offset] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d puts answered", len(seen), n)
			}
		}
		select {
		case r := <-done:
			t.Fatalf("an extra answer: %v", r)
		case <-time.After(5 * time.Millisecond):
		}
		t.Logf("%d waits for %d puts", w.asks, n)
	})
}

// batchedReplica is a heldReplica whose slave takes batches of batch bytes
// (ReplicaBatcher).
type batchedReplica struct {
	heldReplica
	batch int64
}

func (b *batchedReplica) ReplicaBatchSize() int64 { return b.batch }

// A group spans at most the replica waiter's batch (haTransferBatchSize):
// with a batch of about two small records, each group ends within it of
// its first put (checkGroups); a waiter that does not say its batch gets
// the default span.
func TestReplicaGroupSpanIsTheBatchSize(t *testing.T) {
	s := openTest(t, SyncFlush)
	s.SetReplicaWaiter(&heldReplica{})
	if s.rg.span != defaultReplicaGroupSpan {
		t.Fatalf("span %d without a batch size, want %d", s.rg.span, defaultReplicaGroupSpan)
	}
	b := &batchedReplica{batch: 300} // about two of msg's records
	s.SetReplicaWaiter(b)
	if s.rg.span != b.batch {
		t.Fatalf("span %d, want the batch %d", s.rg.span, b.batch)
	}
	const n = 400
	done := make(putDoneCh, n)
	putConcurrently(t, s, n, done)
	waitFor(t, func() bool { return b.grouped(s) == n })
	b.checkGroups(t, s)
	if got := b.release(PutOK); got != len(b.ends) {
		t.Fatalf("released %d of %d waits", got, len(b.ends))
	}
	for range n {
		if r := <-done; r.Status != PutOK {
			t.Fatalf("put answered %v", r.Status)
		}
	}
}
