package broker

import (
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// GroupManager owns the subscription-group configs
// (config/subscriptionGroup.json). Safe for concurrent use.
//
// Auto-creation (autoCreateSubscriptionGroup) stops at
// autoCreateSubscriptionGroupMaxCount groups. A group it creates is
// appended to the journal (journal.go) and durable before Get returns;
// the file itself is rewritten by the next persistDirty (the offset loop,
// every flushConsumerOffsetInterval, and at shutdown), which empties the
// journal. Admin changes are written at once.
type GroupManager struct {
	path       string
	autoCreate atomic.Bool  // autoCreateSubscriptionGroup; SetAutoCreate changes it live
	autoMax    atomic.Int64 // autoCreateSubscriptionGroupMaxCount; SetAutoMax changes it live
	mu         sync.RWMutex
	groups     map[string]protocol.SubscriptionGroupConfig
	version    protocol.DataVersion
	dirty      bool // auto-created groups not yet written
	persistMu  sync.Mutex
	journal    *journal // journal.go: auto-created groups between rewrites
	log        *slog.Logger
}

func newGroupManager(configDir string, cfg *Config) (*GroupManager, error) {
	m := &GroupManager{path: filepath.Join(configDir, "subscriptionGroup.json"),
		groups: map[string]protocol.SubscriptionGroupConfig{}}
	m.autoMax.Store(int64(cfg.AutoCreateSubscriptionGroupMaxCount))
	m.autoCreate.Store(cfg.AutoCreateSubscriptionGroup)
	var f protocol.SubscriptionGroupWrapper
	if err := loadJSON(m.path, &f); err != nil {
		return nil, err
	}
	for k, v := range f.SubscriptionGroupTable {
		if g, ok := loadedGroup(cfg.Logger, cfg.MaxQueueNums, k, v); ok {
			m.groups[k] = g
		}
	}
	m.version = f.DataVersion
	m.log = cfg.Logger
	jpath := m.path + journalSuffix
	applied, err := replayJournal(jpath, &m.version.Counter, cfg.Logger, func(g protocol.SubscriptionGroupConfig) {
		if g, ok := loadedGroup(cfg.Logger, cfg.MaxQueueNums, g.GroupName, g); ok {
			m.groups[g.GroupName] = g
		}
	})
	if err != nil {
		return nil, err
	}
	m.dirty = applied
	if err := m.persistDirty(); err != nil { // the journal's groups into the file
		return nil, err
	}
	if m.journal, err = openJournal(jpath); err != nil {
		return nil, err
	}
	return m, nil
}

// loadedGroup vets a persisted group like loadedTopic vets topics.
func loadedGroup(log *slog.Logger, maxQueues int, name string, g protocol.SubscriptionGroupConfig) (protocol.SubscriptionGroupConfig, bool) {
	if ValidGroup(name) != nil || g.GroupName != name {
		log.Error("broker: dropping a persisted subscription group with an invalid name", "group", clip(name))
		return g, false
	}
	if g.RetryQueueNums < 0 || int(g.RetryQueueNums) > maxQueues {
		log.Error("broker: capping a persisted group's retryQueueNums (maxQueueNums)", "group", name,
			"retryQueueNums", g.RetryQueueNums, "maxQueueNums", maxQueues)
		g.RetryQueueNums = capQueues(g.RetryQueueNums, maxQueues)
	}
	return g, true
}

// SetAutoMax sets autoCreateSubscriptionGroupMaxCount (UPDATE_BROKER_CONFIG).
func (m *GroupManager) SetAutoMax(n int) { m.autoMax.Store(int64(n)) }

// SetAutoCreate turns auto-creation on or off (UPDATE_BROKER_CONFIG).
func (m *GroupManager) SetAutoCreate(on bool) { m.autoCreate.Store(on) }

// Get returns the group's config, creating it with the Java defaults when
// autoCreateSubscriptionGroup is on; ok is false for an unknown group
// otherwise. Callers validate the name first (ValidGroup); an invalid one
// is never created. Auto-creation beyond the cap returns
// errAutoCreateLimit.
func (m *GroupManager) Get(group string) (protocol.SubscriptionGroupConfig, bool, error) {
	m.mu.RLock()
	g, ok := m.groups[group]
	m.mu.RUnlock()
	if ok || !m.autoCreate.Load() {
		return g, ok, nil
	}
	if err := ValidGroup(group); err != nil {
		return g, false, err
	}
	m.mu.Lock()
	if g, ok := m.groups[group]; ok {
		m.mu.Unlock()
		return g, true, nil
	}
	if int64(len(m.groups)) >= m.autoMax.Load() {
		m.mu.Unlock()
		return g, false, errAutoCreateLimit
	}
	g = protocol.NewSubscriptionGroupConfig(group)
	m.groups[group] = g
	m.bumpLocked()
	m.dirty = true
	end, err := m.journal.append(m.version.Counter, g)
	m.mu.Unlock()
	if err == nil {
		err = m.journal.syncThrough(end)
	}
	if err == nil && m.journal.len() < compactJournalAfter {
		return g, true, nil
	}
	if err != nil {
		m.log.Error("broker: group journal failed; rewriting subscriptionGroup.json instead", "err", err)
	}
	return g, true, m.persistDirty()
}

// Lookup returns a group's config without creating it.
func (m *GroupManager) Lookup(group string) (protocol.SubscriptionGroupConfig, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g, ok := m.groups[group]
	return g, ok
}

// Put creates or replaces a group config.
func (m *GroupManager) Put(g protocol.SubscriptionGroupConfig) error {
	m.mu.Lock()
	m.groups[g.GroupName] = g
	m.bumpLocked()
	m.dirty = true
	m.mu.Unlock()
	return m.persistDirty()
}

// Delete removes a group config.
func (m *GroupManager) Delete(group string) error {
	m.mu.Lock()
	delete(m.groups, group)
	m.bumpLocked()
	m.dirty = true
	m.mu.Unlock()
	return m.persistDirty()
}

// Snapshot returns every group config (GET_ALL_SUBSCRIPTIONGROUP_CONFIG).
func (m *GroupManager) Snapshot() protocol.SubscriptionGroupWrapper {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: maps.Clone(m.groups), DataVersion: m.version}
}

// Names returns the group names, sorted.
func (m *GroupManager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.groups))
}

func (m *GroupManager) bumpLocked() {
	m.version.Counter++
	m.version.Timestamp = time.Now().UnixMilli()
}

// persistDirty writes the table when it changed since the last write,
// and compacts the journal.
func (m *GroupManager) persistDirty() error {
	return persistDirtyJournal(&m.persistMu, &m.mu, &m.dirty, m.path, m.journal, func() any {
		return protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: maps.Clone(m.groups), DataVersion: m.version}
	})
}

// closeJournal closes the journal (broker shutdown, after the last
// persistDirty); later auto-creations rewrite the file.
func (m *GroupManager) closeJournal() error {
	if m.journal == nil {
		return nil
	}
	return m.journal.close()
}
