package broker

import (
	"sync/atomic"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
)

// topicEntry is one topic of the topic table (TopicManager): its config
// and what a send needs of the topic besides, so that a send makes one
// lookup for all of it (issue 14: with 10,000 topics round-robin the topic
// table, the per-topic statistics and the engine's queue-offset table
// were each a lookup that missed the CPU cache, the last under the commit
// log's append lock). A change of a topic's config replaces its entry, and
// a deleted topic's entry goes with it, so the send state is found again
// from the name: the put counters on the first stored put, the engine's
// handle on its queue offsets on the first send.
type topicEntry struct {
	name     string
	tc       protocol.TopicConfig
	counters atomic.Pointer[Counters]
	handle   atomic.Pointer[engine.Topic]
}

// sendTopic returns the entry of an existing topic (false: no such topic).
func (b *Broker) sendTopic(topic string) (*topicEntry, bool) { return b.topics.entry(topic) }

// putCounters are the topic's put counters, made with its first stored
// put (a topic never written to has none: Java's VIEW_BROKER_STATS_DATA
// answers that they do not exist). A topic deleted (its counters
// forgotten) and re-created counts afresh in its new entry.
func (e *topicEntry) putCounters(s *Stats) *Counters {
	if c := e.counters.Load(); c != nil {
		return c
	}
	c := s.Topic(e.name)
	if e.counters.CompareAndSwap(nil, c) {
		return c
	}
	return e.counters.Load()
}

// storeTopic is the engine's handle on the topic's queue offsets
// (engine.Store.Topic, the same for every call with a name).
func (e *topicEntry) storeTopic(s *engine.Store) *engine.Topic {
	if t := e.handle.Load(); t != nil {
		return t
	}
	t := s.Topic(e.name)
	e.handle.Store(t)
	return t
}
