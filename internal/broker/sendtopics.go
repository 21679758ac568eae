package broker

import (
	"strings"
	"sync"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
)

// sendTopic is what a send needs of its topic, reached with one lookup a
// send (issue 14: with 10,000 topics round-robin the topic table, the
// per-topic statistics and the engine's queue-offset table were each a
// lookup that missed the CPU cache, the last under the commit log's
// append lock): the topic's config as of a count of the topic table's
// changes, its put counters and the engine's handle on its queue offsets.
// An entry is never changed once published; a change of the table makes
// every entry stale, and the next send to a topic reads its config again.
type sendTopic struct {
	name     string // the cache's key, not aliasing any request
	tc       protocol.TopicConfig
	changes  int64 // TopicManager.Changes when tc was read
	counters *Counters
	store    *engine.Topic
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
	if e != nil && e.changes == changes {
		return e, true
	}
	return b.refreshSendTopic(topic, e, changes)
}

// refreshSendTopic reads topic's config at count changes into a new entry,
// keeping old's counters and handle (they belong to the name, not the
// config); a topic gone is dropped. Entries of topics deleted and never
// sent to again are dropped when the cache outgrows the table.
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
	e := &sendTopic{tc: tc, changes: changes}
	if old != nil {
		e.name, e.counters, e.store = old.name, old.counters, old.store
	} else {
		e.name = strings.Clone(topic) // topic may alias the request's buffer
		e.counters, e.store = b.stats.Topic(e.name), b.store.Topic(e.name)
	}
	limit := 2*b.topics.Len() + 1024
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= limit {
		c.m = make(map[string]*sendTopic)
	}
	if cur := c.m[e.name]; cur == nil || cur.changes <= changes {
		c.m[e.name] = e // Go writes the key too: never topic, which may alias
	}
	return e, true
}
