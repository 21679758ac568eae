package engine

import (
	"strings"
	"sync"

	"github.com/mqd/mqd/internal/message"
)

// queueOffsets is the next logical offset of every (topic, queue). The
// offsets themselves are only touched under the commit log's append lock
// (putRequest.Encode) or before the store is shared (recovery); mu guards
// only the table of topics, since a handle (Store.Topic) is made outside
// the append lock. Entries are never removed, so a handle stays valid for
// the store's life; values are pointers so that an update never writes a
// key (Go rewrites a string key on assignment, and a caller's topic may
// alias a buffer).
//
// It is keyed by topic, each topic holding its queues by id: a string-keyed
// lookup takes the map's string fast path, where a (topic, queue) struct
// key took the generic hash and equality (issue 14: with 10,000 topics × 8
// queues that lookup was 6% of the broker's CPU, under the append lock).
type queueOffsets struct {
	mu sync.Mutex
	m  map[string]*Topic
}

// Topic is a handle on one topic's next queue offsets (Store.Topic). A
// caller that resolves its topic once, as the broker does beside the
// topic's config, passes it with a put (PutMessageAsync) so that the
// append lock assigns the queue offset without a lookup in the table of
// every topic (issue 14: with 10,000 topics round-robin that lookup
// missed the CPU cache under the lock). Queue ids below denseQueues are
// kept by index (every real topic's), any other in a map, so that a
// hostile queue id costs one entry, not an array up to it.
type Topic struct {
	owner  *queueOffsets
	name   string
	dense  []int64          // guarded by the append lock
	sparse map[int32]*int64 // guarded by the append lock
}

// denseQueues bounds the queue ids kept by index (RocketMQ topics have at
// most a few hundred queues; mqd's own bound on a topic's queues is
// internal/broker's).
const denseQueues = 1024

func newQueueOffsets() *queueOffsets { return &queueOffsets{m: make(map[string]*Topic)} }

// Topic returns the handle on topic's queue offsets, the same one for
// every call with that name. It is safe for concurrent use.
func (s *Store) Topic(topic string) *Topic { return s.offsets.topic(topic) }

// topic finds or adds topic's entry; topic may alias a caller's buffer.
func (q *queueOffsets) topic(topic string) *Topic {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.m[topic]
	if t == nil {
		t = &Topic{owner: q, name: strings.Clone(topic)}
		q.m[t.name] = t
	}
	return t
}

// slot is where queue's next offset is kept; the pointer is valid until
// the next slot call on t (the dense array may grow).
func (t *Topic) slot(queue int32) *int64 {
	if queue >= 0 && queue < denseQueues {
		if int(queue) >= len(t.dense) {
			t.dense = append(t.dense, make([]int64, int(queue)+1-len(t.dense))...)
		}
		return &t.dense[queue]
	}
	p := t.sparse[queue]
	if p == nil {
		if t.sparse == nil {
			t.sparse = make(map[int32]*int64)
		}
		p = new(int64)
		t.sparse[queue] = p
	}
	return p
}

// next assigns m's queue offset, through t when it is m's topic's handle
// from this table (otherwise, or nil: looked up), and returns the handle
// it used (for the next message of a batch). Prepared and rolled-back
// transactional records get 0 and do not advance the queue (Java's
// CommitLog.DefaultAppendMessageCallback).
func (q *queueOffsets) next(m *message.Message, t *Topic) (int64, *Topic) {
	if f := m.SysFlag & message.FlagTransactionMask; f == message.FlagPrepared || f == message.FlagRollback {
		return 0, t
	}
	if t == nil || t.owner != q || t.name != m.Topic {
		t = q.topic(m.Topic)
	}
	p := t.slot(m.QueueID)
	off := *p
	*p = off + 1
	return off, t
}

// observe raises the next offset of (topic, queue) past queueOffset.
func (q *queueOffsets) observe(topic string, queue int32, queueOffset int64) {
	if p := q.topic(topic).slot(queue); queueOffset+1 > *p {
		*p = queueOffset + 1
	}
}
