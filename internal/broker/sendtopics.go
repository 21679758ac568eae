package broker

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
)

// sendTopic is what a send needs of its topic, reached with one lookup a
// send (issue 14: with 10,000 topics round-robin the topic table, the
// per-topic statistics and the engine's queue-offset table were each a
// lookup that missed the CPU cache, the last under the commit log's
// append lock): the topic's config as of a count of the topic table's
// changes, its put counters and the engine's handle on its queue offsets.
// A change of the table makes every entry stale; the next send to a topic
// reads its config again, and keeps the entry when the config is the same.
type sendTopic struct {
	name     string // the cache's key, not aliasing any request
	tc       protocol.TopicConfig
	changes  atomic.Int64 // TopicManager.Changes at which tc was last read
	counters atomic.Pointer[Counters]
	store    *engine.Topic
}

// putCounters are the topic's put counters, made with its first stored
// put (a topic never written to has none: Java's VIEW_BROKER_STATS_DATA
// answers that they do not exist). A topic deleted (its counters and its
// entry forgotten, forgetSendTopic) and re-created counts afresh in a new
// entry.
func (e *sendTopic) putCounters(s *Stats) *Counters {
	if c := e.counters.Load(); c != nil {
		return c
	}
	c := s.Topic(e.name)
	if e.counters.CompareAndSwap(nil, c) {
		return c
	}
	return e.counters.Load()
}

// sendTopics holds the entries of the topics sends went to.
type sendTopics struct {
	mu sync.RWMutex
	m  map[string]*sendTopic
}

// sendTopic returns the send entry of an existing topic (false: no such
// topic). The send path calls nothing else for its topic.
func (b *Broker) sendTopic(topic string) (*sendTopic, bool) {
	changes := b.topics.Changes() // before the config is read: a later change makes the entry stale
	c := &b.sendTopics
	c.mu.RLock()
	e := c.m[topic]
	c.mu.RUnlock()
	if e != nil && e.changes.Load() >= changes {
		return e, true
	}
	return b.refreshSendTopic(topic, e, changes)
}

// forgetSendTopic drops a deleted topic's entry (DELETE_TOPIC_IN_BROKER,
// after its statistics are forgotten): were the topic re-created with the
// same config before any send to it, the entry would be kept and count
// into the forgotten counters.
func (b *Broker) forgetSendTopic(topic string) {
	c := &b.sendTopics
	c.mu.Lock()
	delete(c.m, topic)
	c.mu.Unlock()
}

// refreshSendTopic reads topic's config at count changes. An unchanged
// config keeps old (marked current); another gets a new entry with old's
// engine handle (it belongs to the name); a topic gone is dropped. Entries
// of topics deleted and never sent to again are dropped when the cache
// outgrows the table.
func (b *Broker) refreshSendTopic(topic string, old *sendTopic, changes int64) (*sendTopic, bool) {
	tc, ok := b.topics.Get(topic)
	c := &b.sendTopics
	if !ok {
		if old != nil {
			c.mu.Lock()
			if c.m[topic] == old {
				delete(c.m, topic)
			}
			c.mu.Unlock()
		}
		return nil, false
	}
	if old != nil && old.tc == tc {
		for cur := old.changes.Load(); cur < changes && !old.changes.CompareAndSwap(cur, changes); {
			cur = old.changes.Load()
		}
		return old, true
	}
	e := &sendTopic{tc: tc}
	e.changes.Store(changes)
	if old != nil {
		e.name, e.store = old.name, old.store
	} else {
		e.name = strings.Clone(topic) // topic may alias the request's buffer
		e.store = b.store.Topic(e.name)
	}
	limit := 2*b.topics.Len() + 1024
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= limit {
		c.m = make(map[string]*sendTopic)
	}
	if cur := c.m[e.name]; cur == nil || cur.changes.Load() <= changes {
		c.m[e.name] = e // Go writes the key too: never topic, which may alias
	}
	return e, true
}
