package broker

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// System topics (facts §17.5).
const (
	TopicAutoCreate     = "TBW102"
	TopicSelfTest       = "SELF_TEST_TOPIC"
	TopicOffsetMoved    = "OFFSET_MOVED_EVENT"
	TopicSchedule       = "SCHEDULE_TOPIC_XXXX"
	TopicTransHalf      = "RMQ_SYS_TRANS_HALF_TOPIC"
	TopicTransOpHalf    = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TopicTransCheckMax  = "TRANS_CHECK_MAX_TIME_TOPIC"
	RetryGroupPrefix    = "%RETRY%"
	DLQGroupPrefix      = "%DLQ%"
	scheduleQueueNums   = 18
	benchmarkQueueNums  = 1024
	clusterTopicQueues  = 16
	TopicBenchmark      = "BenchmarkTest"
	maxTopicNameLength  = 127
	topicConfigFileName = "topics.json"
)

var topicNameRE = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)

// ValidTopic checks a topic name as the Java broker does.
func ValidTopic(topic string) error {
	if topic == "" || len(topic) > maxTopicNameLength || !topicNameRE.MatchString(topic) {
		return fmt.Errorf("the specified topic %q is invalid: at most %d characters of [%%|a-zA-Z0-9_-]", topic, maxTopicNameLength)
	}
	return nil
}

// NotAllowedToSend lists the topics producers may not send to directly.
func NotAllowedToSend(topic string) bool {
	switch topic {
	case TopicSchedule, TopicTransHalf, TopicTransOpHalf, TopicTransCheckMax, TopicSelfTest, TopicOffsetMoved:
		return true
	}
	return false
}

// TopicManager owns the topic table and its persistence (config/topics.json).
// Every method is safe for concurrent use. Changes bump the data version and
// call the change hook (re-registration with the nameservers).
type TopicManager struct {
	path     string
	mu       sync.RWMutex
	topics   map[string]protocol.TopicConfig
	version  protocol.DataVersion
	onChange func()
}

type topicFile struct {
	TopicConfigTable map[string]protocol.TopicConfig `json:"topicConfigTable"`
	DataVersion      protocol.DataVersion            `json:"dataVersion"`
}

func newTopicManager(configDir string, cfg *Config) (*TopicManager, error) {
	m := &TopicManager{path: filepath.Join(configDir, topicConfigFileName), topics: map[string]protocol.TopicConfig{}}
	var f topicFile
	if err := loadJSON(m.path, &f); err != nil {
		return nil, err
	}
	for k, v := range f.TopicConfigTable {
		m.topics[k] = v
	}
	m.version = f.DataVersion
	m.createSystemTopics(cfg)
	m.version.Counter++
	m.version.Timestamp = time.Now().UnixMilli()
	return m, m.persistLocked()
}

func (m *TopicManager) createSystemTopics(cfg *Config) {
	rw := protocol.PermRead | protocol.PermWrite
	sys := []protocol.TopicConfig{
		topicConfig(TopicSelfTest, 1, rw),
		topicConfig(TopicBenchmark, benchmarkQueueNums, rw),
		topicConfig(TopicOffsetMoved, 1, rw),
		topicConfig(TopicSchedule, scheduleQueueNums, rw),
		topicConfig(cfg.ClusterName, clusterTopicQueues, protocol.PermInherit|rw),
		topicConfig(cfg.BrokerName, 1, protocol.PermInherit|rw),
		topicConfig(cfg.ClusterName+"_REPLY_TOPIC", 1, rw),
	}
	if cfg.AutoCreateTopicEnable {
		sys = append(sys, topicConfig(TopicAutoCreate, int32(cfg.DefaultTopicQueueNums), protocol.PermInherit|rw))
	} else if tc, ok := m.topics[TopicAutoCreate]; ok {
		tc.Perm = rw // a persisted TBW102 no longer allows inheritance (facts §17.4)
		m.topics[TopicAutoCreate] = tc
	}
	for _, tc := range sys {
		if _, ok := m.topics[tc.TopicName]; !ok {
			m.topics[tc.TopicName] = tc
		}
	}
}

func topicConfig(name string, queues int32, perm int32) protocol.TopicConfig {
	return protocol.TopicConfig{TopicName: name, ReadQueueNums: queues, WriteQueueNums: queues, Perm: perm, TopicFilterType: "SINGLE_TAG"}
}

// OnChange sets the hook run (on its own goroutine) after each change.
func (m *TopicManager) OnChange(f func()) {
	m.mu.Lock()
	m.onChange = f
	m.mu.Unlock()
}

// Get returns a topic's config.
func (m *TopicManager) Get(topic string) (protocol.TopicConfig, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tc, ok := m.topics[topic]
	return tc, ok
}

// Snapshot returns the table and its version (for registration and
// GET_ALL_TOPIC_CONFIG).
func (m *TopicManager) Snapshot() protocol.TopicConfigSerializeWrapper {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := make(map[string]protocol.TopicConfig, len(m.topics))
	for k, v := range m.topics {
		t[k] = v
	}
	return protocol.TopicConfigSerializeWrapper{TopicConfigTable: t, DataVersion: m.version}
}

// Names returns every topic name, sorted.
func (m *TopicManager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.topics))
}

// Put creates or replaces a topic and persists the table.
func (m *TopicManager) Put(tc protocol.TopicConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.topics[tc.TopicName] = tc
	return m.changedLocked()
}

// Delete removes a topic; it reports whether it existed.
func (m *TopicManager) Delete(topic string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.topics[topic]; !ok {
		return false, nil
	}
	delete(m.topics, topic)
	return true, m.changedLocked()
}

// CreateFromDefault is auto-creation on send (facts §17.4): an unknown topic
// inherits from defaultTopic (normally TBW102) when that topic has the
// INHERIT permission; queues = min(requested, default's write queues), perm
// without INHERIT. Retry topics are created with queues queues. It returns
// false when the topic cannot be created.
func (m *TopicManager) CreateFromDefault(topic, defaultTopic string, queues int32) (protocol.TopicConfig, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tc, ok := m.topics[topic]; ok {
		return tc, true, nil
	}
	def, ok := m.topics[defaultTopic]
	if !ok || def.Perm&protocol.PermInherit == 0 {
		return protocol.TopicConfig{}, false, nil
	}
	tc := topicConfig(topic, min(queues, def.WriteQueueNums), def.Perm&^protocol.PermInherit)
	tc.TopicFilterType = def.TopicFilterType
	m.topics[topic] = tc
	return tc, true, m.changedLocked()
}

// CreateIfMissing creates topic with queues queues and perm when absent
// (retry and DLQ topics); it returns the topic's config.
func (m *TopicManager) CreateIfMissing(topic string, queues int32, perm int32) (protocol.TopicConfig, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tc, ok := m.topics[topic]; ok {
		return tc, nil
	}
	tc := topicConfig(topic, queues, perm)
	m.topics[topic] = tc
	return tc, m.changedLocked()
}

func (m *TopicManager) changedLocked() error {
	m.version.Counter++
	m.version.Timestamp = time.Now().UnixMilli()
	if f := m.onChange; f != nil {
		go f()
	}
	return m.persistLocked()
}

func (m *TopicManager) persistLocked() error {
	return saveJSON(m.path, topicFile{TopicConfigTable: m.topics, DataVersion: m.version})
}
