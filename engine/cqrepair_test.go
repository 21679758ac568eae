package engine

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// TestManyQueuesOutOfServiceRepairOnePass: when 40 consume queues are out
// of service at once (their files cannot be opened: EMFILE), each rebuild
// attempt reads the log once for all of them, not once per queue (with
// 80 000 queues that was hours per attempt, and Close waited for it);
// Close returns while they are still out of service, and the next run has
// every message in every queue.
func TestManyQueuesOutOfServiceRepairOnePass(t *testing.T) {
	const queues = 40
	fsys := crashfs.New()
	s := cfsOpen(t, fsys, AsyncFlush, nil)
	put := func(from, to int) {
		for q := 0; q < queues; q++ {
			topic := fmt.Sprint("T", q)
			for i := from; i < to; i++ {
				if r := s.PutMessage(msg(topic, 0, fmt.Sprintf("%s-%d", topic, i), nil)); r.Status != PutOK {
					t.Fatalf("put %s %d: %v %v", topic, i, r.Status, r.Err)
				}
			}
		}
	}
	put(0, 5)
	waitFor(t, func() bool { return s.DispatchLag() == 0 })
	s.dispatch.repairEvery.Store(int64(time.Hour))
	fsys.Inject(crashfs.Fault{Op: crashfs.OpOpen | crashfs.OpWrite | crashfs.OpSync,
		PathContains: "consumequeue/", Err: syscall.EMFILE})
	put(5, 10)
	waitFor(t, func() bool {
		_ = s.cq.Flush(0) // under -race the checkpoint loop never flushes thoroughly
		return len(s.cq.Broken()) == queues
	})
	before := s.dispatch.replays.Load()
	s.dispatch.repairEvery.Store(int64(time.Millisecond))
	waitFor(t, func() bool { return s.dispatch.rounds.Load() >= 3 })
	s.dispatch.repairEvery.Store(int64(time.Hour))
	closeStore(t, s)
	if passes, rounds := s.dispatch.replays.Load()-before, s.dispatch.rounds.Load(); passes > rounds {
		t.Fatalf("%d passes over the log in %d rebuild attempts of %d queues, want at most one per attempt",
			passes, rounds, queues)
	}
	fsys.ClearFaults()
	s = cfsOpen(t, fsys, AsyncFlush, nil)
	defer s.Close()
	for q := 0; q < queues; q++ {
		topic := fmt.Sprint("T", q)
		if got := pullAll(t, s, topic, 0); len(got) != 10 || got[9] != topic+"-9" {
			t.Fatalf("%s after restart: %d messages", topic, len(got))
		}
	}
}
