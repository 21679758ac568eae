package broker

import (
	"context"
	"maps"
	"sort"
	"strings"
	"sync"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Consumer offsets (Java's ConsumerManageProcessor and ClientManageProcessor): the committed offset per group, topic and
// queue, persisted to config/consumerOffset.json every
// FlushConsumerOffsetInterval and at shutdown. The file is mqd's standard
// JSON with Java's shape: {"offsetTable":{"<topic>@<group>":{"<queueId>":offset}}}.

const consumerOffsetFileName = "consumerOffset.json"

type offsetKey struct{ topic, group string }

type offsetFile struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

// OffsetManager owns the committed consumer offsets. Safe for concurrent
// use.
type OffsetManager struct {
	path      string
	mu        sync.RWMutex
	table     map[offsetKey]map[int32]int64
	dirty     bool
	persistMu sync.Mutex // serialises file writes
}

func newOffsetManager(path string) (*OffsetManager, error) {
	m := &OffsetManager{path: path, table: map[offsetKey]map[int32]int64{}}
	var f offsetFile
	if err := loadJSON(path, &f); err != nil {
		return nil, err
	}
	for k, queues := range f.OffsetTable {
		// Topic and group names never contain '@' (both are validated
		// before an offset is committed), so the key splits exactly; keys
		// that do not (written before validation) are dropped.
		topic, group, ok := strings.Cut(k, "@")
		if !ok || len(queues) == 0 || ValidTopic(topic) != nil || ValidGroup(group) != nil {
			continue
		}
		q := make(map[int32]int64, len(queues))
		for id, off := range queues {
			q[id] = off
		}
		m.table[offsetKey{topic, group}] = q
	}
	return m, nil
}

// Query returns the committed offset; ok is false when none (or a
// negative one) is stored.
func (m *OffsetManager) Query(group, topic string, queueID int32) (int64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	off, ok := m.table[offsetKey{topic, group}][queueID]
	return off, ok && off >= 0
}

// Commit stores an offset, whatever its value (Java accepts going back).
func (m *OffsetManager) Commit(group, topic string, queueID int32, offset int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := offsetKey{topic, group}
	q := m.table[k]
	if q == nil {
		q = map[int32]int64{}
		m.table[k] = q
	}
	q[queueID] = offset
	m.dirty = true
}

// Offsets returns a copy of the group's committed offsets of topic.
func (m *OffsetManager) Offsets(group, topic string) map[int32]int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	src := m.table[offsetKey{topic, group}]
	out := make(map[int32]int64, len(src))
	for id, off := range src {
		out[id] = off
	}
	return out
}

// Topics returns the topics the group has offsets for, sorted.
func (m *OffsetManager) Topics(group string) []string {
	return m.collect(func(k offsetKey) (string, bool) { return k.topic, k.group == group })
}

// Groups returns the groups with offsets for topic, sorted.
func (m *OffsetManager) Groups(topic string) []string {
	return m.collect(func(k offsetKey) (string, bool) { return k.group, k.topic == topic })
}

func (m *OffsetManager) collect(pick func(offsetKey) (string, bool)) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for k := range m.table {
		if v, ok := pick(k); ok {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// RemoveTopic forgets every group's offsets of topic (topic deleted).
func (m *OffsetManager) RemoveTopic(topic string) {
	m.remove(func(k offsetKey) bool { return k.topic == topic })
}

// RemoveGroup forgets the group's offsets (group deleted).
func (m *OffsetManager) RemoveGroup(group string) {
	m.remove(func(k offsetKey) bool { return k.group == group })
}

func (m *OffsetManager) remove(match func(offsetKey) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.table {
		if match(k) {
			delete(m.table, k)
			m.dirty = true
		}
	}
}

// persist writes the table when it changed since the last write.
func (m *OffsetManager) persist() error {
	return persistDirty(&m.persistMu, &m.mu, &m.dirty, m.path, m.fileLocked)
}

// fileLocked is the table in the file's shape; m.mu is held.
func (m *OffsetManager) fileLocked() any {
	f := offsetFile{OffsetTable: make(map[string]map[int32]int64, len(m.table))}
	for k, q := range m.table {
		f.OffsetTable[k.topic+"@"+k.group] = maps.Clone(q)
	}
	return f
}

// snapshot is the table in the file's shape (GET_ALL_CONSUMER_OFFSET).
func (m *OffsetManager) snapshot() any {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.fileLocked()
}

func (b *Broker) registerOffsets() {
	b.server.Handle(protocol.QueryConsumerOffset, b.handleQueryConsumerOffset)
	b.server.Handle(protocol.UpdateConsumerOffset, b.handleUpdateConsumerOffset)
}

// offsetLoop persists offsets every FlushConsumerOffsetInterval; Shutdown
// writes the last state.
func (b *Broker) offsetLoop(stop <-chan struct{}) {
	tickLoop(stop, b.cfg.FlushConsumerOffsetInterval, func() { // delay.go
		if err := b.offsets.persist(); err != nil {
			b.log.Error("broker: persisting consumer offsets failed", "err", err)
		}
		if err := b.groups.persistDirty(); err != nil { // auto-created groups (groups.go)
			b.log.Error("broker: persisting subscription groups failed", "err", err)
		}
	})
}

// handleQueryConsumerOffset is QUERY_CONSUMER_OFFSET (14): the stored
// offset; with none, 0 for a queue that still starts at 0 (a new group
// reads from the beginning of a young queue) and 22 QUERY_NOT_FOUND
// otherwise (the client then applies its ConsumeFromWhere).
func (b *Broker) handleQueryConsumerOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.QueryConsumerOffsetRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	}
	off, ok := b.offsets.Query(h.ConsumerGroup, h.Topic, h.QueueID)
	if !ok {
		if b.store.MinOffsetInQueue(h.Topic, h.QueueID) > 0 {
			return protocol.NewResponse(req, protocol.ResponseQueryNotFound,
				"Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
		}
		off = 0
	}
	resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
	resp.SetHeader(&protocol.QueryConsumerOffsetResponseHeader{Offset: off})
	return resp
}

// handleUpdateConsumerOffset is UPDATE_CONSUMER_OFFSET (15). The Go client
// sends it as a "oneway" call without the oneway bit; it drops the answer.
func (b *Broker) handleUpdateConsumerOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.UpdateConsumerOffsetRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	}
	if resp := b.checkOffsetTarget(req, h.ConsumerGroup, h.Topic, h.QueueID); resp != nil {
		return resp
	}
	b.offsets.Commit(h.ConsumerGroup, h.Topic, h.QueueID, h.CommitOffset)
	return protocol.NewResponse(req, protocol.ResponseSuccess, "")
}
