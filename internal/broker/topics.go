package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// System topics (Java's TopicValidator system topics).
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

// nameChars is the charset of topic and group names, [%|a-zA-Z0-9_-]
// (Java's TopicValidator bitmap): names are checked on every send and
// pull, where a regular expression cost microseconds.
var nameChars = func() (t [256]bool) {
	for _, r := range "%|_-" {
		t[r] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	return t
}()

// validChars reports whether s is non-empty and made of nameChars only.
func validChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !nameChars[s[i]] {
			return false
		}
	}
	return s != ""
}

// ValidTopic checks a topic name as the Java broker does.
func ValidTopic(topic string) error {
	if topic == "" || len(topic) > maxTopicNameLength || !validChars(topic) {
		return fmt.Errorf("the specified topic %q is invalid: at most %d characters of [%%|a-zA-Z0-9_-]", clip(topic), maxTopicNameLength)
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
	path      string
	autoMax   atomic.Int64 // autoCreateTopicMaxCount (SetLimits changes it live)
	maxQueues atomic.Int64 // maxQueueNums
	mu        sync.RWMutex
	topics    map[string]*topicEntry // sendtopics.go: a config and what sends need of its topic
	version   protocol.DataVersion
	onChange  func()
	persistMu sync.Mutex // serialises writes of the file
	persisted int64      // version counter the file holds
	journal   *journal   // journal.go: auto-created topics between rewrites
	log       *slog.Logger
}

type topicFile struct {
	TopicConfigTable map[string]protocol.TopicConfig `json:"topicConfigTable"`
	DataVersion      protocol.DataVersion            `json:"dataVersion"`
}

func newTopicManager(configDir string, cfg *Config) (*TopicManager, error) {
	m := &TopicManager{path: filepath.Join(configDir, topicConfigFileName), topics: map[string]*topicEntry{}}
	m.SetLimits(cfg.AutoCreateTopicMaxCount, cfg.MaxQueueNums)
	var f topicFile
	if err := loadJSON(m.path, &f); err != nil {
		return nil, err
	}
	for k, v := range f.TopicConfigTable {
		if tc, ok := m.loadedTopic(cfg, k, v); ok {
			m.setLocked(tc)
		}
	}
	m.version = f.DataVersion
	m.log = cfg.Logger
	jpath := m.path + journalSuffix
	_, err := replayJournal(jpath, &m.version.Counter, cfg.Logger, func(tc protocol.TopicConfig) {
		if tc, ok := m.loadedTopic(cfg, tc.TopicName, tc); ok {
			m.setLocked(tc)
		}
	})
	if err != nil {
		return nil, err
	}
	m.createSystemTopics(cfg)
	m.version.Counter++
	m.version.Timestamp = time.Now().UnixMilli()
	m.persisted = m.version.Counter
	if err := m.persistLocked(); err != nil { // the journal's lines are in the file now
		return nil, err
	}
	if m.journal, err = openJournal(jpath); err != nil {
		return nil, err
	}
	return m, nil
}

// loadedTopic vets a persisted topic: a name no client may use (written
// before names were validated) is dropped, queue numbers beyond
// maxQueueNums are capped; both are logged.
func (m *TopicManager) loadedTopic(cfg *Config, name string, tc protocol.TopicConfig) (protocol.TopicConfig, bool) {
	if err := ValidTopic(name); err != nil || tc.TopicName != name {
		cfg.Logger.Error("broker: dropping a persisted topic with an invalid name", "topic", clip(name), "file", m.path)
		return tc, false
	}
	for _, n := range []*int32{&tc.ReadQueueNums, &tc.WriteQueueNums} {
		if int(*n) > cfg.MaxQueueNums || *n < 0 {
			cfg.Logger.Error("broker: capping a persisted topic's queue number (maxQueueNums)", "topic", name,
				"queues", *n, "maxQueueNums", cfg.MaxQueueNums)
			*n = capQueues(*n, cfg.MaxQueueNums)
		}
	}
	return tc, true
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
	} else if tc, ok := m.getLocked(TopicAutoCreate); ok {
		tc.Perm = rw // a persisted TBW102 no longer allows inheritance (Java's TopicConfigManager (TBW102))
		m.setLocked(tc)
	}
	for _, tc := range sys {
		if _, ok := m.topics[tc.TopicName]; !ok {
			m.setLocked(tc)
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
	return m.getLocked(topic)
}

// entry returns a topic's entry (sendtopics.go).
func (m *TopicManager) entry(topic string) (*topicEntry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.topics[topic]
	return e, e != nil
}

// getLocked returns a topic's config.
func (m *TopicManager) getLocked(topic string) (protocol.TopicConfig, bool) {
	if e := m.topics[topic]; e != nil {
		return e.tc, true
	}
	return protocol.TopicConfig{}, false
}

// setLocked creates or replaces tc's topic with a new entry (its send
// state is found again from its name on the next send).
func (m *TopicManager) setLocked(tc protocol.TopicConfig) {
	m.topics[tc.TopicName] = &topicEntry{name: tc.TopicName, tc: tc}
}

// configsLocked is a copy of the table's configs.
func (m *TopicManager) configsLocked() map[string]protocol.TopicConfig {
	t := make(map[string]protocol.TopicConfig, len(m.topics))
	for k, e := range m.topics {
		t[k] = e.tc
	}
	return t
}

// Snapshot returns the table and its version (for registration and
// GET_ALL_TOPIC_CONFIG).
func (m *TopicManager) Snapshot() protocol.TopicConfigSerializeWrapper {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return protocol.TopicConfigSerializeWrapper{TopicConfigTable: m.configsLocked(), DataVersion: m.version}
}

// Names returns every topic name, sorted.
func (m *TopicManager) Names() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.topics))
}

// Put creates or replaces a topic and persists the table.
func (m *TopicManager) Put(tc protocol.TopicConfig) error {
	_, err := m.update(func() (bool, error) {
		m.setLocked(tc)
		return true, nil
	})
	return err
}

// Delete removes a topic; it reports whether it existed.
func (m *TopicManager) Delete(topic string) (bool, error) {
	return m.update(func() (bool, error) {
		_, ok := m.topics[topic]
		delete(m.topics, topic)
		return ok, nil
	})
}

// CreateFromDefault is auto-creation on send (Java's TopicConfigManager (TBW102)): an unknown topic
// inherits from defaultTopic (normally TBW102) when that topic has the
// INHERIT permission; queues = min(requested, default's write queues), perm
// without INHERIT. Retry topics are created with queues queues. It returns
// false when the topic cannot be created.
func (m *TopicManager) CreateFromDefault(topic, defaultTopic string, queues int32) (protocol.TopicConfig, bool, error) {
	var tc protocol.TopicConfig
	found := false
	_, err := m.updateAuto(topic, func() (bool, error) {
		if tc, found = m.getLocked(topic); found {
			return false, nil
		}
		def, ok := m.getLocked(defaultTopic)
		if !ok || def.Perm&protocol.PermInherit == 0 {
			return false, nil
		}
		if err := m.admitLocked(topic); err != nil {
			return false, err
		}
		tc = topicConfig(topic, capQueues(min(queues, def.WriteQueueNums), int(m.maxQueues.Load())), def.Perm&^protocol.PermInherit)
		tc.TopicFilterType = def.TopicFilterType
		m.setLocked(tc)
		found = true
		return true, nil
	})
	return tc, found && err == nil, err
}

// CreateIfMissing creates topic with queues queues (capped at
// maxQueueNums) and perm when absent (retry and DLQ topics); it returns the
// topic's config, or errAutoCreateLimit when autoCreateTopicMaxCount
// topics exist.
func (m *TopicManager) CreateIfMissing(topic string, queues int32, perm int32) (protocol.TopicConfig, error) {
	var tc protocol.TopicConfig
	_, err := m.updateAuto(topic, func() (bool, error) {
		var ok bool
		if tc, ok = m.getLocked(topic); ok {
			return false, nil
		}
		if err := m.admitLocked(topic); err != nil {
			return false, err
		}
		tc = topicConfig(topic, capQueues(queues, int(m.maxQueues.Load())), perm)
		m.setLocked(tc)
		return true, nil
	})
	return tc, err
}

// SetLimits sets autoCreateTopicMaxCount and maxQueueNums for the next
// auto-creation (UPDATE_BROKER_CONFIG).
func (m *TopicManager) SetLimits(autoMax, maxQueues int) {
	m.autoMax.Store(int64(autoMax))
	m.maxQueues.Store(int64(maxQueues))
}

// SetAutoCreateTopic applies autoCreateTopicEnable while the broker runs,
// as a start with it would: on, TBW102 exists and allows inheritance (it
// is created with queues queues if missing); off, it no longer allows
// inheritance, so sends to unknown topics are refused. The change is
// versioned and re-registered like any other.
func (m *TopicManager) SetAutoCreateTopic(on bool, queues int32) error {
	_, err := m.update(func() (bool, error) {
		tc, ok := m.getLocked(TopicAutoCreate)
		switch {
		case on && !ok:
			tc = topicConfig(TopicAutoCreate, queues, protocol.PermInherit|protocol.PermRead|protocol.PermWrite)
		case on && tc.Perm&protocol.PermInherit == 0:
			tc.Perm |= protocol.PermInherit
		case !on && ok && tc.Perm&protocol.PermInherit != 0:
			tc.Perm &^= protocol.PermInherit
		default:
			return false, nil
		}
		m.setLocked(tc)
		return true, nil
	})
	return err
}

// admitLocked checks an auto-created topic: a valid name, and room under
// autoCreateTopicMaxCount.
func (m *TopicManager) admitLocked(topic string) error {
	if err := ValidTopic(topic); err != nil {
		return err
	}
	if int64(len(m.topics)) >= m.autoMax.Load() {
		return errAutoCreateLimit
	}
	return nil
}

// update runs f under the write lock. When f changed the table, the change
// is versioned, the change hook started and the table written before
// update returns (admin changes: Put, Delete). The write happens outside
// the lock (sends looking topics up never wait for an fsync) and is
// shared: one write covers every change made before its snapshot.
func (m *TopicManager) update(f func() (bool, error)) (bool, error) {
	m.mu.Lock()
	changed, err := f()
	counter := m.changedLocked(changed)
	m.mu.Unlock()
	if err != nil || !changed {
		return changed, err
	}
	return true, m.persistThrough(counter)
}

// updateAuto is update for an auto-creation of topic: the new topic is
// appended to the journal (under the lock, in version order) and the call
// returns once that line is fsynced (journal.go), without rewriting the
// file. Every compactJournalAfter lines the file is rewritten, which
// empties the journal. Should the journal fail, the file is rewritten
// instead, as update does.
func (m *TopicManager) updateAuto(topic string, f func() (bool, error)) (bool, error) {
	m.mu.Lock()
	changed, err := f()
	counter := m.changedLocked(changed)
	var end int64
	var jerr error
	if changed && err == nil {
		if m.journal == nil {
			jerr = errors.New("no journal")
		} else {
			end, jerr = m.journal.append(counter, m.topics[topic].tc)
		}
	}
	m.mu.Unlock()
	if err != nil || !changed {
		return changed, err
	}
	if jerr == nil {
		jerr = m.journal.syncThrough(end)
	}
	if jerr != nil {
		m.log.Error("broker: topic journal failed; rewriting topics.json instead", "err", jerr)
		return true, m.persistThrough(counter)
	}
	if m.journal.len() >= compactJournalAfter {
		return true, m.persistThrough(counter + 1) // forces a rewrite (no version covers counter+1 yet)
	}
	return true, nil
}

// changedLocked versions a change and starts the change hook; it returns
// the version counter.
func (m *TopicManager) changedLocked(changed bool) int64 {
	if changed {
		m.version.Counter++
		m.version.Timestamp = time.Now().UnixMilli()
		if h := m.onChange; h != nil {
			go h()
		}
	}
	return m.version.Counter
}

// persistThrough writes the table unless a write already covered version
// counter; a write compacts the journal.
func (m *TopicManager) persistThrough(counter int64) error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	if m.persisted >= counter {
		return nil
	}
	m.mu.RLock()
	f := topicFile{TopicConfigTable: m.configsLocked(), DataVersion: m.version}
	var mark int64
	if m.journal != nil {
		mark = m.journal.mark()
	}
	m.mu.RUnlock()
	if err := saveJSON(m.path, f); err != nil {
		return err
	}
	m.persisted = f.DataVersion.Counter
	if m.journal != nil {
		m.mu.Lock()
		m.journal.compacted(mark)
		m.mu.Unlock()
	}
	return nil
}

func (m *TopicManager) persistLocked() error {
	return saveJSON(m.path, topicFile{TopicConfigTable: m.configsLocked(), DataVersion: m.version})
}

// closeJournal closes the journal (broker shutdown); later auto-creations
// rewrite the file.
func (m *TopicManager) closeJournal() error {
	if m.journal == nil {
		return nil
	}
	return m.journal.close()
}
