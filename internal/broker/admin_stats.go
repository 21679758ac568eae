package broker

// Traffic statistics: the figures behind GET_BROKER_RUNTIME_INFO (Java's
// StoreStatsService and BrokerStatsManager), ConsumeStats.consumeTps and
// the metrics exporter. Counting on the send and pull paths is one atomic
// add per figure: counters per topic and per group live in copy-on-write
// maps read with an atomic load, so a message never takes a lock or
// allocates once its topic has been seen.

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/stat"
)

// Counters are one scope's running totals (broker, topic or group/topic).
type Counters struct {
	PutMsgs, PutBytes atomic.Int64
	GetMsgs, GetBytes atomic.Int64
	PutReqs, GetReqs  atomic.Int64 // sends and pulls that counted messages
	// put and get are sampled by the stats loop under Stats.mu.
	put, get history
}

// GroupTopic names a consumer group's counters.
type GroupTopic struct{ Group, Topic string }

// window is how many one-second samples the broker-wide figures keep: Java
// reports TPS over 10 s, 60 s and 600 s.
const window = 601

type sample struct{ put, get, getFound, getMiss, putBytes int64 }

// Stats counts traffic. Safe for concurrent use.
type Stats struct {
	Boot      time.Time
	total     Counters
	putFailed atomic.Int64
	getFound  atomic.Int64 // pulls that returned messages
	getMiss   atomic.Int64 // pulls that returned none
	topics    atomic.Pointer[map[string]*Counters]
	groups    atomic.Pointer[map[GroupTopic]*Counters]
	addMu     sync.Mutex // serialises map copies
	// SendLatency is the time from a decoded send to its response (the
	// put and, under SYNC_FLUSH, its fsync wait).
	SendLatency stat.Histogram
	putDist     putDistribution // admin_load.go: SendLatency in Java's buckets
	// ReplicaAckLatency is a SYNC_MASTER's wait for a slave's
	// acknowledgement (admin_ha.go), one per wait: the deferred sends one
	// flush round released share one (engine/replica_group.go) unless it
	// is answered at once; a blocking send waits alone.
	ReplicaAckLatency stat.Histogram
	// Request load per class (admin_load.go).
	Send, Pull, Query, EndTxn ReqLoad

	mu               sync.Mutex // guards the sampled fields below
	ring             [window]sample
	samples          int
	day              int
	todayMorning     sample
	yesterdayMorning sample
	maxDispatchLag   int64
	ticks            int64 // seconds sampled
}

func newStats(now time.Time) *Stats {
	s := &Stats{Boot: now, day: now.YearDay()}
	s.topics.Store(&map[string]*Counters{})
	s.groups.Store(&map[GroupTopic]*Counters{})
	return s
}

// Topic returns topic's counters, creating them on first use.
func (s *Stats) Topic(topic string) *Counters {
	if c := (*s.topics.Load())[topic]; c != nil {
		return c
	}
	return addCounters(&s.addMu, &s.topics, topic)
}

// Group returns the counters of a group's consumption of topic.
func (s *Stats) Group(group, topic string) *Counters {
	k := GroupTopic{group, topic}
	if c := (*s.groups.Load())[k]; c != nil {
		return c
	}
	return addCounters(&s.addMu, &s.groups, k)
}

func addCounters[K comparable](mu *sync.Mutex, p *atomic.Pointer[map[K]*Counters], k K) *Counters {
	mu.Lock()
	defer mu.Unlock()
	old := *p.Load()
	if c := old[k]; c != nil {
		return c
	}
	next := maps.Clone(old)
	c := &Counters{}
	next[k] = c
	p.Store(&next)
	return c
}

// Topics is a snapshot of the per-topic counters.
func (s *Stats) Topics() map[string]*Counters { return *s.topics.Load() }

// Groups is a snapshot of the per-group counters.
func (s *Stats) Groups() map[GroupTopic]*Counters { return *s.groups.Load() }

// Total is the broker-wide counters.
func (s *Stats) Total() *Counters { return &s.total }

// forgetTopic drops a deleted topic's counters (and its groups').
func (s *Stats) forgetTopic(topic string) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	t := maps.Clone(*s.topics.Load())
	delete(t, topic)
	s.topics.Store(&t)
	g := maps.Clone(*s.groups.Load())
	maps.DeleteFunc(g, func(k GroupTopic, _ *Counters) bool { return k.Topic == topic })
	s.groups.Store(&g)
}

// forgetGroup drops a deleted group's counters.
func (s *Stats) forgetGroup(group string) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	g := maps.Clone(*s.groups.Load())
	maps.DeleteFunc(g, func(k GroupTopic, _ *Counters) bool { return k.Group == group })
	s.groups.Store(&g)
}

// countPut records stored messages (n records, size body bytes) under a
// topic's counters c (Topic).
func (s *Stats) countPut(c *Counters, n, size int) {
	c.PutReqs.Add(1)
	c.PutMsgs.Add(int64(n))
	c.PutBytes.Add(int64(size))
	s.total.PutMsgs.Add(int64(n))
	s.total.PutBytes.Add(int64(size))
}

// countGet records a pull's outcome: n messages of size bytes handed to
// group.
func (s *Stats) countGet(group, topic string, n, size int) {
	if n == 0 {
		s.getMiss.Add(1)
		return
	}
	s.getFound.Add(1)
	for _, c := range [...]*Counters{s.Topic(topic), s.Group(group, topic), &s.total} {
		c.GetReqs.Add(1)
		c.GetMsgs.Add(int64(n))
		c.GetBytes.Add(int64(size))
	}
}

// tick takes the one-second sample (the stats loop calls it).
func (s *Stats) tick(now time.Time, dispatchLag int64) {
	cur := sample{put: s.total.PutMsgs.Load(), get: s.total.GetMsgs.Load(), getFound: s.getFound.Load(),
		getMiss: s.getMiss.Load(), putBytes: s.total.PutBytes.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring[s.samples%window] = cur
	s.samples++
	s.maxDispatchLag = max(s.maxDispatchLag, dispatchLag)
	if d := now.YearDay(); d != s.day {
		s.day, s.yesterdayMorning, s.todayMorning = d, s.todayMorning, cur
	}
	s.ticks++
	for _, c := range s.Topics() {
		c.put.sample(s.ticks, c.PutMsgs.Load(), c.PutReqs.Load())
	}
	for _, c := range s.Groups() {
		c.get.sample(s.ticks, c.GetMsgs.Load(), c.GetReqs.Load())
	}
}

// rate is the per-second rate of a sampled figure over the last secs
// seconds (fewer while the broker is younger).
func (s *Stats) rate(secs int, pick func(sample) int64) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples < 2 {
		return 0
	}
	secs = min(secs, s.samples-1)
	last := s.ring[(s.samples-1)%window]
	first := s.ring[(s.samples-1-secs)%window]
	return float64(pick(last)-pick(first)) / float64(secs)
}

// consumeTps is a group's messages per second over the last minute.
func (c *Counters) consumeTps(s *Stats) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.get.minute().TPS
}

// statsLoop samples the counters every second.
func (b *Broker) statsLoop(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			b.stats.tick(now, b.store.DispatchLag())
		}
	}
}

// countPut counts the messages a send response says were stored, one or
// one per id of a batch, under st's topic.
func (b *Broker) countPut(st *topicEntry, req *protocol.Command, began time.Time, resp *protocol.Command) *protocol.Command {
	if resp != nil {
		b.observePut(st, len(req.Body), time.Since(began), resp)
	}
	return resp
}

// observePut counts an answered put of bodyLen bytes to st's topic that
// took elapsed.
func (b *Broker) observePut(st *topicEntry, bodyLen int, elapsed time.Duration, resp *protocol.Command) {
	b.stats.SendLatency.Observe(elapsed)
	b.stats.putDist.observe(elapsed)
	if !storedAnyway(resp.Code) {
		b.stats.putFailed.Add(1)
	}
	if n := storedIDs(resp); n > 0 {
		b.stats.countPut(st.putCounters(b.stats), n, bodyLen)
	}
}

// storedIDs is the number of message ids a send response names: one for
// a single send's typed header, one per comma-joined id of a batch's.
func storedIDs(resp *protocol.Command) int {
	if _, ok := resp.SendResult(); ok {
		return 1
	}
	if id := resp.ExtFields["msgId"]; id != "" {
		return strings.Count(id, ",") + 1
	}
	return 0
}

// countPull counts a pull's outcome.
func (b *Broker) countPull(h *protocol.PullMessageRequestHeader, code int16, res *engine.GetResult) {
	if code != protocol.ResponseSuccess {
		b.stats.countGet(h.ConsumerGroup, h.Topic, 0, 0)
		return
	}
	b.stats.countGet(h.ConsumerGroup, h.Topic, len(res.Messages), res.TotalSize)
}

// Stats is the broker's traffic counters (for the metrics exporter).
func (b *Broker) Stats() *Stats { return b.stats }

// Connections is the number of open client connections.
func (b *Broker) Connections() int { return b.server.ConnCount() }

// ParkedPulls is the number of long polls waiting for messages.
func (b *Broker) ParkedPulls() int { return b.pulls.Len() }

// Name is the broker's name and cluster.
func (b *Broker) Name() (cluster, broker string) { return b.cfg.ClusterName, b.cfg.BrokerName }

// EachConsumerLag calls fn for every committed offset: the group's lag
// behind the queue's max offset.
func (b *Broker) EachConsumerLag(fn func(group, topic string, queueID int32, lag int64)) {
	b.offsets.mu.RLock()
	type row struct {
		k offsetKey
		q int32
		o int64
	}
	rows := make([]row, 0, len(b.offsets.table))
	for k, qs := range b.offsets.table {
		for q, o := range qs {
			rows = append(rows, row{k, q, o})
		}
	}
	b.offsets.mu.RUnlock()
	for _, r := range rows {
		fn(r.k.group, r.k.topic, r.q, max(b.store.MaxOffsetInQueue(r.k.topic, r.q)-max(r.o, 0), 0))
	}
}
