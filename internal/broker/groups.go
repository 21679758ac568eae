package broker

import (
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// GroupManager owns the subscription-group configs
// (config/subscriptionGroup.json). Safe for concurrent use.
type GroupManager struct {
	path       string
	autoCreate bool
	mu         sync.RWMutex
	groups     map[string]protocol.SubscriptionGroupConfig
	version    protocol.DataVersion
}

func newGroupManager(configDir string, autoCreate bool) (*GroupManager, error) {
	m := &GroupManager{path: filepath.Join(configDir, "subscriptionGroup.json"), autoCreate: autoCreate,
		groups: map[string]protocol.SubscriptionGroupConfig{}}
	var f protocol.SubscriptionGroupWrapper
	if err := loadJSON(m.path, &f); err != nil {
		return nil, err
	}
	for k, v := range f.SubscriptionGroupTable {
		m.groups[k] = v
	}
	m.version = f.DataVersion
	return m, nil
}

// Get returns the group's config, creating it with the Java defaults when
// autoCreateSubscriptionGroup is on; ok is false for an unknown group
// otherwise.
func (m *GroupManager) Get(group string) (protocol.SubscriptionGroupConfig, bool, error) {
	m.mu.RLock()
	g, ok := m.groups[group]
	m.mu.RUnlock()
	if ok || !m.autoCreate {
		return g, ok, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if g, ok := m.groups[group]; ok {
		return g, true, nil
	}
	g = protocol.NewSubscriptionGroupConfig(group)
	m.groups[group] = g
	return g, true, m.changedLocked()
}

// Put creates or replaces a group config.
func (m *GroupManager) Put(g protocol.SubscriptionGroupConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.groups[g.GroupName] = g
	return m.changedLocked()
}

// Delete removes a group config.
func (m *GroupManager) Delete(group string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.groups, group)
	return m.changedLocked()
}

// Snapshot returns every group config (GET_ALL_SUBSCRIPTIONGROUP_CONFIG).
func (m *GroupManager) Snapshot() protocol.SubscriptionGroupWrapper {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := make(map[string]protocol.SubscriptionGroupConfig, len(m.groups))
	for k, v := range m.groups {
		t[k] = v
	}
	return protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: t, DataVersion: m.version}
}

// Names returns the group names, sorted.
func (m *GroupManager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.groups))
}

func (m *GroupManager) changedLocked() error {
	m.version.Counter++
	m.version.Timestamp = time.Now().UnixMilli()
	return saveJSON(m.path, protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: m.groups, DataVersion: m.version})
}
