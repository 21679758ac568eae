package engine

import (
	"math"
	"testing"
	"unsafe"

	"github.com/mqd/mqd/internal/message"
)

// Queue offsets count per (topic, queue), whatever the queue id: dense
// ids survive the array growing, a hostile id costs one entry, and a
// caller's topic buffer reused afterwards does not change the key.
func TestQueueOffsetsPerTopicQueue(t *testing.T) {
	q := newQueueOffsets()
	buf := []byte("topicA")
	topic := unsafe.String(&buf[0], len(buf)) // aliases a caller's buffer, as decoded headers do
	for _, id := range []int32{3, 0, 7, 3, denseQueues - 1, denseQueues, math.MaxInt32, -5, 3} {
		q.next(&message.Message{Topic: topic, QueueID: id}, nil)
	}
	q.observe("topicA", 100, 41)
	q.observe("topicA", 100, 10) // lower: no change
	q.next(&message.Message{Topic: "topicB", QueueID: 3}, nil)
	buf[0] = 'X'
	for _, tc := range []struct {
		topic string
		queue int32
		want  int64
	}{
		{"topicA", 3, 3}, {"topicA", 0, 1}, {"topicA", 7, 1}, {"topicA", denseQueues - 1, 1},
		{"topicA", denseQueues, 1}, {"topicA", math.MaxInt32, 1}, {"topicA", -5, 1},
		{"topicA", 100, 42}, {"topicA", 5, 0}, {"topicB", 3, 1}, {"Xopic", 3, 0},
	} {
		if got := *q.topic(tc.topic).slot(tc.queue); got != tc.want {
			t.Errorf("%s/%d: next %d, want %d", tc.topic, tc.queue, got, tc.want)
		}
	}
	if n := len(q.m["topicA"].dense); n != denseQueues {
		t.Errorf("dense array of %d, want %d (ids at or past %d are sparse)", n, denseQueues, denseQueues)
	}
}

func BenchmarkQueueOffsetsManyTopics(b *testing.B) {
	q := newQueueOffsets()
	const topics, queues = 10000, 8
	names := make([]string, topics)
	for i := range names {
		names[i] = "bench_topic_" + string(rune('a'+i%26)) + "_" + itoa(i)
		for id := int32(0); id < queues; id++ {
			q.topic(names[i]).slot(id)
		}
	}
	m := &message.Message{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Topic, m.QueueID = names[i%topics], int32(i/topics%queues)
		q.next(m, nil)
	}
}

// BenchmarkQueueOffsetsManyTopicsHandle is BenchmarkQueueOffsetsManyTopics
// with each put carrying its topic's handle, as the broker's sends do.
func BenchmarkQueueOffsetsManyTopicsHandle(b *testing.B) {
	q := newQueueOffsets()
	const topics, queues = 10000, 8
	names := make([]string, topics)
	handles := make([]*Topic, topics)
	for i := range names {
		names[i] = "bench_topic_" + string(rune('a'+i%26)) + "_" + itoa(i)
		handles[i] = q.topic(names[i])
		for id := int32(0); id < queues; id++ {
			handles[i].slot(id)
		}
	}
	m := &message.Message{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Topic, m.QueueID = names[i%topics], int32(i/topics%queues)
		q.next(m, handles[i%topics])
	}
}

// A put through its topic's handle counts in the same place as one looked
// up; a handle of another topic, or of another store's table, is not used.
func TestQueueOffsetsHandle(t *testing.T) {
	q, other := newQueueOffsets(), newQueueOffsets()
	a := q.topic("topicA")
	if q.topic("topicA") != a {
		t.Fatal("two handles for one topic")
	}
	for i, h := range []*Topic{a, nil, a, q.topic("topicB"), other.topic("topicA"), a} {
		if got, _ := q.next(&message.Message{Topic: "topicA", QueueID: 2}, h); got != int64(i) {
			t.Fatalf("put %d (handle %p): offset %d, want %d", i, h, got, i)
		}
	}
	if got := *q.topic("topicB").slot(2); got != 0 {
		t.Errorf("topicB/2 advanced to %d by topicA's puts", got)
	}
	if got := *other.topic("topicA").slot(2); got != 0 {
		t.Errorf("the other table's topicA/2 advanced to %d", got)
	}
	prepared := &message.Message{Topic: "topicA", QueueID: 2, SysFlag: message.FlagPrepared}
	if got, _ := q.next(prepared, a); got != 0 || *a.slot(2) != 6 {
		t.Errorf("prepared record: offset %d, next %d; want 0 and no advance", got, *a.slot(2))
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// BenchmarkPathSafe is validate's topic check on a 16-byte topic.
func BenchmarkPathSafe(b *testing.B) {
	topic := "bench_topic_1234"
	for range b.N {
		if !pathSafe(topic) {
			b.Fatal(topic)
		}
	}
}
