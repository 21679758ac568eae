package broker

import (
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// A send sees the topic table as it is: a change of the table (queues
// taken away, the topic deleted) holds for the very next send, while the
// topic's statistics and queue offsets carry on across the change, and a
// topic deleted and re-created counts afresh where the statistics show it.
func TestSendTopicFollowsTheTable(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.AutoCreateTopicEnable = false })
	rw := protocol.PermRead | protocol.PermWrite
	put := func(tc protocol.TopicConfig) {
		t.Helper()
		if err := b.topics.Put(tc); err != nil {
			t.Fatal(err)
		}
	}
	put(topicConfig("ST", 4, rw))
	send := func(queue int32) *protocol.Command {
		return produce(t, c, protocol.SendMessageV2, sendHeader("ST", queue, "WAIT\x01true"), []byte("x"))
	}
	expectCode(t, send(9), protocol.ResponseSystemError) // no such queue
	if _, ok := b.stats.Topics()["ST"]; ok {
		t.Fatal("counters made for a topic nothing was stored to (Java: they do not exist)")
	}
	if rh := mustSendOK(t, send(3)); rh.QueueOffset != 0 {
		t.Fatalf("first send: queue offset %d", rh.QueueOffset)
	}
	first, ok := b.sendTopic("ST")
	if !ok {
		t.Fatal("no send entry after a send")
	}
	put(topicConfig("Other", 1, rw))
	if again, _ := b.sendTopic("ST"); again != first {
		t.Fatal("another topic's change replaced this topic's unchanged entry")
	}
	put(topicConfig("ST", 2, rw))
	expectCode(t, send(3), protocol.ResponseSystemError) // queue 3 no longer exists
	if rh := mustSendOK(t, send(1)); rh.QueueOffset != 0 {
		t.Fatalf("queue 1: offset %d", rh.QueueOffset)
	}
	put(topicConfig("ST", 4, rw))
	if rh := mustSendOK(t, send(3)); rh.QueueOffset != 1 {
		t.Fatalf("queue 3 after two changes: offset %d, want 1", rh.QueueOffset)
	}
	now, _ := b.sendTopic("ST")
	if now == first || now.storeTopic(b.store) != first.storeTopic(b.store) || now.tc.WriteQueueNums != 4 {
		t.Fatalf("entry after changes %+v, first %+v: want a new config with the same engine handle", now, first)
	}
	if got := b.stats.Topics()["ST"].PutMsgs.Load(); got != 3 {
		t.Fatalf("%d puts counted, want 3", got)
	}
	resp := call(t, c, protocol.NewRequest(protocol.DeleteTopicInBroker, &protocol.DeleteTopicRequestHeader{Topic: "ST"}))
	expectCode(t, resp, protocol.ResponseSuccess)
	if _, ok := b.sendTopic("ST"); ok {
		t.Fatal("a deleted topic's entry is kept")
	}
	put(topicConfig("ST", 4, rw)) // re-created as it was, with no send in between
	mustSendOK(t, send(0))
	if c := b.stats.Topics()["ST"]; c == nil || c.PutMsgs.Load() != 1 {
		t.Fatalf("re-created topic's counters %+v, want 1 put where the statistics show it", c)
	}
	if _, err := b.topics.Delete("ST"); err != nil { // the table alone (a slave following its master)
		t.Fatal(err)
	}
	expectCode(t, send(0), protocol.ResponseTopicNotExist)
	if _, ok := b.sendTopic("ST"); ok {
		t.Fatal("a deleted topic's entry is kept after a send to it")
	}
	if n := testing.AllocsPerRun(100, func() { b.sendTopic("ST") }); n != 0 {
		t.Fatalf("%v allocations a lookup", n)
	}
}
