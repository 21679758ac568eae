package engine

import (
	"fmt"
	"testing"

	"github.com/mqd/mqd/consumequeue"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

// TestDispatchAfterTopicDeleted: the consume-queue dispatcher keeps recent
// queues (cqDispatcher.recent); once their topic is deleted they refuse
// puts, and the next record of that topic and queue lands in the queue the
// store makes again, readable, while other topics' queues go on.
func TestDispatchAfterTopicDeleted(t *testing.T) {
	s, err := Open(testConfig(t.TempDir(), AsyncFlush))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(topic string, i int) {
		t.Helper()
		if r := s.PutMessage(msg(topic, 0, fmt.Sprintf("%s-%d", topic, i), nil)); r.Status != PutOK {
			t.Fatalf("put %s %d: %v %v", topic, i, r.Status, r.Err)
		}
	}
	for i := range 3 {
		put("D", i)
		put("Other", i)
	}
	waitFor(t, func() bool { return s.MaxOffsetInQueue("D", 0) == 3 && s.MaxOffsetInQueue("Other", 0) == 3 })
	if err := s.DeleteTopic("D"); err != nil {
		t.Fatal(err)
	}
	put("D", 3) // queue offset 3: the store's next offset outlives the deletion (DeleteTopic)
	put("Other", 3)
	waitFor(t, func() bool { return s.MaxOffsetInQueue("D", 0) == 4 && s.MaxOffsetInQueue("Other", 0) == 4 })
	for _, c := range []struct {
		topic string
		want  string
	}{{"D", "D-3"}, {"Other", "Other-3"}} {
		res := s.GetMessage(c.topic, 0, 3, 8, nil)
		if res.Status != Found || len(res.Messages) != 1 {
			t.Fatalf("%s after the deletion: %v, %d messages", c.topic, res.Status, len(res.Messages))
		}
		v, err := message.Parse(res.Messages[0])
		if err != nil || string(v.Body) != c.want {
			t.Fatalf("%s: read %q (%v), want %q", c.topic, v.Body, err, c.want)
		}
	}
	if got := s.DispatchStats().Records; got != 8 {
		t.Fatalf("dispatched %d records, want 8", got)
	}
}

// TestRecentSlotSpreadsQueues: one topic's eight queues, and numbered
// topics' queues, land in different slots mostly (a slot they share only
// costs a store lookup).
func TestRecentSlotSpreadsQueues(t *testing.T) {
	used := map[int]bool{}
	for q := range int32(8) {
		used[recentSlot("BenchTopic", q)] = true
	}
	if len(used) != 8 {
		t.Errorf("one topic's 8 queues use %d slots", len(used))
	}
	clear(used)
	for i := range 8 {
		used[recentSlot(fmt.Sprintf("T_%d", i), 0)] = true
	}
	if len(used) < 6 {
		t.Errorf("8 numbered topics' queue 0 use %d slots", len(used))
	}
	if recentSlot("", 0) < 0 || recentSlot("", 0) >= cqRecentSlots {
		t.Error("an empty topic's slot is out of range")
	}
}

// TestRecentQueuesDroppedOnDeletion: a topic's deletion empties the
// dispatcher's recent queues at its next record, whatever that record's
// topic: a deleted topic's queues are closed one by one after it leaves
// the store, and a record put to one still open would vanish with it.
func TestRecentQueuesDroppedOnDeletion(t *testing.T) {
	cq, err := consumequeue.Open(vfs.Default(), t.TempDir(), consumequeue.Config{EntriesPerFile: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer cq.Close()
	d := &cqDispatcher{cq: cq}
	dispatch := func(topic string, off int64) {
		t.Helper()
		if err := d.Dispatch(&DispatchRequest{Topic: topic, QueueOffset: off, PhysOffset: 1000 * (off + 1), Size: 100}); err != nil {
			t.Fatal(err)
		}
	}
	holds := func(topic string) bool {
		for _, q := range d.recent {
			if q != nil && q.Topic() == topic {
				return true
			}
		}
		return false
	}
	dispatch("D", 0)
	dispatch("Other", 0)
	if !holds("D") || !holds("Other") {
		t.Fatal("recent queues not kept")
	}
	if err := cq.DeleteTopic("D"); err != nil {
		t.Fatal(err)
	}
	dispatch("Other", 1)
	if holds("D") {
		t.Fatal("a deleted topic's queue is still among the recent ones")
	}
	if q, ok := cq.Lookup("Other", 0); !ok || q.MaxOffset() != 2 {
		t.Fatalf("Other/0 after the deletion: %v", ok)
	}
}
