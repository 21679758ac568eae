package broker

import (
	"context"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Queue locks for orderly consumption (Java's
// RebalanceLockManager): per consumer group, a message queue belongs to
// one client id until that client unlocks it or stops refreshing it for
// LockMaxLiveTime. Locks live in memory only and are not tied to
// connections.

type lockEntry struct {
	clientID   string
	lastUpdate time.Time
}

// LockManager is the lock table. Safe for concurrent use.
type LockManager struct {
	maxLive time.Duration
	mu      sync.Mutex
	groups  map[string]map[protocol.MessageQueue]*lockEntry
}

func newLockManager(maxLive time.Duration) *LockManager {
	return &LockManager{maxLive: maxLive, groups: map[string]map[protocol.MessageQueue]*lockEntry{}}
}

func (m *LockManager) expired(e *lockEntry, now time.Time) bool {
	return now.Sub(e.lastUpdate) > m.maxLive
}

// TryLock locks every queue it can for clientID and returns those now
// held by it, in request order without duplicates: free queues, queues it
// already holds (refreshed) and queues whose owner's lock expired.
func (m *LockManager) TryLock(group, clientID string, mqs []protocol.MessageQueue, now time.Time) []protocol.MessageQueue {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[group]
	if g == nil {
		g = map[protocol.MessageQueue]*lockEntry{}
		m.groups[group] = g
	}
	out := make([]protocol.MessageQueue, 0, len(mqs))
	seen := make(map[protocol.MessageQueue]bool, len(mqs))
	for _, mq := range mqs {
		if seen[mq] {
			continue
		}
		seen[mq] = true
		e := g[mq]
		switch {
		case e == nil:
			g[mq] = &lockEntry{clientID: clientID, lastUpdate: now}
		case e.clientID == clientID || m.expired(e, now):
			e.clientID, e.lastUpdate = clientID, now
		default:
			continue // held by another live client
		}
		out = append(out, mq)
	}
	return out
}

// Unlock releases the queues held by clientID; others' locks are kept.
func (m *LockManager) Unlock(group, clientID string, mqs []protocol.MessageQueue) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[group]
	for _, mq := range mqs {
		if e := g[mq]; e != nil && e.clientID == clientID {
			delete(g, mq)
		}
	}
	if g != nil && len(g) == 0 {
		delete(m.groups, group)
	}
}

// Owner returns the live owner of a queue ("" when unlocked or expired).
func (m *LockManager) Owner(group string, mq protocol.MessageQueue, now time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.groups[group][mq]; e != nil && !m.expired(e, now) {
		return e.clientID
	}
	return ""
}

// expire drops expired entries (memory only: an expired entry is already
// free for the taking).
func (m *LockManager) expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, g := range m.groups {
		for mq, e := range g {
			if m.expired(e, now) {
				delete(g, mq)
			}
		}
		if len(g) == 0 {
			delete(m.groups, name)
		}
	}
}

func (b *Broker) registerLocks() {
	b.server.Handle(protocol.LockBatchMQ, b.handleLockBatch)
	b.server.Handle(protocol.UnlockBatchMQ, b.handleUnlockBatch)
}

// handleLockBatch is LOCK_BATCH_MQ (41): code 0 with the queues now held.
func (b *Broker) handleLockBatch(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	body, err := protocol.DecodeLockBatchRequestBody(req.Body)
	if err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, "bad lock body: "+err.Error())
	}
	if _, resp := b.groupConfig(req, body.ConsumerGroup); resp != nil {
		return resp
	}
	held := b.locks.TryLock(body.ConsumerGroup, body.ClientID, b.ownQueues(body.MQSet), time.Now())
	out, err := (&protocol.LockBatchResponseBody{LockOKMQSet: held}).Encode()
	if err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	}
	resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
	resp.Body = out
	return resp
}

// handleUnlockBatch is UNLOCK_BATCH_MQ (42): always code 0.
func (b *Broker) handleUnlockBatch(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	body, err := protocol.DecodeLockBatchRequestBody(req.Body)
	if err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, "bad unlock body: "+err.Error())
	}
	b.locks.Unlock(body.ConsumerGroup, body.ClientID, body.MQSet)
	return protocol.NewResponse(req, protocol.ResponseSuccess, "")
}
