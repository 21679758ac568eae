package broker

// Broker configuration over the wire: GET_BROKER_CONFIG (26) answers the
// running configuration as a .properties text under RocketMQ's key names
// (Java's AdminBrokerProcessor.getBrokerConfig); UPDATE_BROKER_CONFIG (25)
// validates the keys it is sent and stores them in
// <storePathRootDir>/config/broker.properties, which New applies over the
// configuration it is given, so every accepted key holds after a restart.
//
// The keys in liveKeys also take effect at once: the handlers read them
// from the live configuration (b.conf(), swapped atomically), so an update
// never races a request. Every other key is only stored and takes effect
// when the broker restarts; the response remark and the log name which
// keys are which. A brokerPermission change re-registers with the
// nameservers at once (as Java's updateBrokerConfig does), so routes show
// the new permission.

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// overrideFileName holds the keys set by UPDATE_BROKER_CONFIG.
const overrideFileName = "broker.properties"

// maxConfigBody bounds an UPDATE_BROKER_CONFIG body.
const maxConfigBody = 64 << 10

// liveKeys are the keys UPDATE_BROKER_CONFIG applies at once, each with
// how it is copied from a validated configuration to the live one.
var liveKeys = map[string]func(dst, src *Config){
	"brokerPermission":               func(d, s *Config) { d.BrokerPermission = s.BrokerPermission },
	"autoCreateSubscriptionGroup":    func(d, s *Config) { d.AutoCreateSubscriptionGroup = s.AutoCreateSubscriptionGroup },
	"autoCreateTopicEnable":          func(d, s *Config) { d.AutoCreateTopicEnable = s.AutoCreateTopicEnable },
	"longPollingEnable":              func(d, s *Config) { d.LongPollingEnable = s.LongPollingEnable },
	"shortPollingTimeMills":          func(d, s *Config) { d.ShortPollingTimeMills = s.ShortPollingTimeMills },
	"notifyConsumerIdsChangedEnable": func(d, s *Config) { d.NotifyConsumerIdsChanged = s.NotifyConsumerIdsChanged },
	"maxMessageSize":                 func(d, s *Config) { d.Store.MaxMessageSize = s.Store.MaxMessageSize },
	"maxBatchMessageNums":            func(d, s *Config) { d.MaxBatchMessageNums = s.MaxBatchMessageNums },
	"maxBatchPropertiesBytes":        func(d, s *Config) { d.MaxBatchPropertiesBytes = s.MaxBatchPropertiesBytes },
	"maxQueryReplyBytes":             func(d, s *Config) { d.MaxQueryReplyBytes = s.MaxQueryReplyBytes },
	"transactionCheckInterval":       func(d, s *Config) { d.TransactionCheckInterval = s.TransactionCheckInterval },
	"transactionTimeOut":             func(d, s *Config) { d.TransactionTimeOut = s.TransactionTimeOut },
	"transactionCheckMax":            func(d, s *Config) { d.TransactionCheckMax = s.TransactionCheckMax },
	"slaveReadEnable":                func(d, s *Config) { d.HA.SlaveReadEnable = s.HA.SlaveReadEnable },
	"timerMaxDelaySec":               func(d, s *Config) { d.Timer.MaxDelay = s.Timer.MaxDelay },
	// limits.go: for the next creation or registration
	"maxQueueNums":                        func(d, s *Config) { d.MaxQueueNums = s.MaxQueueNums },
	"autoCreateTopicMaxCount":             func(d, s *Config) { d.AutoCreateTopicMaxCount = s.AutoCreateTopicMaxCount },
	"autoCreateSubscriptionGroupMaxCount": func(d, s *Config) { d.AutoCreateSubscriptionGroupMaxCount = s.AutoCreateSubscriptionGroupMaxCount },
	"maxProducerGroups":                   func(d, s *Config) { d.MaxProducerGroups = s.MaxProducerGroups },
	"maxProducerGroupsPerConnection":      func(d, s *Config) { d.MaxProducerGroupsPerConnection = s.MaxProducerGroupsPerConnection },
	// retention: the store's next deletion round (engine.SetRetentionPolicy)
	"fileReservedTime":      func(d, s *Config) { d.Store.Retention.FileReservedTime = s.Store.Retention.FileReservedTime },
	"deleteWhen":            func(d, s *Config) { d.Store.Retention.DeleteWhen = s.Store.Retention.DeleteWhen },
	"diskMaxUsedSpaceRatio": func(d, s *Config) { d.Store.Retention.DiskMaxUsedSpaceRatio = s.Store.Retention.DiskMaxUsedSpaceRatio },
}

// checkLiveKeys bounds the live keys ApplyProperties leaves
// unbounded: a retention of at least an hour, hours of the day, Java's
// clamp of diskMaxUsedSpaceRatio (10..95%), a timer limit of a second or
// more.
func checkLiveKeys(props map[string]string, c *Config) error {
	r := &c.Store.Retention
	if _, ok := props["fileReservedTime"]; ok && r.FileReservedTime < time.Hour {
		return fmt.Errorf("fileReservedTime %q: want at least 1 (hours)", props["fileReservedTime"])
	}
	if _, ok := props["timerMaxDelaySec"]; ok && c.Timer.MaxDelay < time.Second {
		return fmt.Errorf("timerMaxDelaySec %q: want at least 1", props["timerMaxDelaySec"])
	}
	if _, ok := props["diskMaxUsedSpaceRatio"]; ok && (r.DiskMaxUsedSpaceRatio < 0.10 || r.DiskMaxUsedSpaceRatio > 0.95) {
		return fmt.Errorf("diskMaxUsedSpaceRatio %q: want 10..95 (percent)", props["diskMaxUsedSpaceRatio"])
	}
	if v, ok := props["deleteWhen"]; ok {
		for _, h := range strings.Split(v, ";") {
			if n, err := strconv.Atoi(strings.TrimSpace(h)); err != nil || n < 0 || n > 23 {
				return fmt.Errorf("deleteWhen %q: want hours of the day (0..23) separated by ';'", v)
			}
		}
	}
	return nil
}

// liveConfig holds the live configuration.
type liveConfig struct {
	ptr      atomic.Pointer[Config] // nil until the first update: b.cfg
	mu       sync.Mutex             // serialises updates
	txnReset chan time.Duration     // wakes txnCheckLoop on a new interval (txncheck.go)
}

// conf is the live configuration: the one the broker started with plus the
// liveKeys updated since.
func (b *Broker) conf() *Config {
	if c := b.live.ptr.Load(); c != nil {
		return c
	}
	return &b.cfg
}

// ConfigProperties is the running configuration under RocketMQ's key names.
func (c *Config) ConfigProperties() map[string]string {
	i := strconv.Itoa
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	ms := func(d interface{ Milliseconds() int64 }) string { return i64(d.Milliseconds()) }
	b := strconv.FormatBool
	s := &c.Store
	return map[string]string{
		"brokerClusterName": c.ClusterName, "brokerName": c.BrokerName, "brokerId": i64(c.BrokerID),
		"namesrvAddr": strings.Join(c.NamesrvAddrs, ";"), "brokerIP1": c.BrokerIP1, "listenPort": i(c.ListenPort),
		"brokerPermission": i(int(c.BrokerPermission)), "autoCreateTopicEnable": b(c.AutoCreateTopicEnable),
		"defaultTopicQueueNums": i(c.DefaultTopicQueueNums), "autoCreateSubscriptionGroup": b(c.AutoCreateSubscriptionGroup),
		"longPollingEnable": b(c.LongPollingEnable), "shortPollingTimeMills": i64(c.ShortPollingTimeMills),
		"notifyConsumerIdsChangedEnable": b(c.NotifyConsumerIdsChanged), "regionId": c.RegionID, "traceOn": b(c.TraceOn),
		"registerNameServerPeriod": ms(c.RegisterNameServerPeriod), "flushConsumerOffsetInterval": ms(c.FlushConsumerOffsetInterval),
		"aclEnable": b(c.ACL.Enable), "maxQueueNums": i(c.MaxQueueNums), "autoCreateTopicMaxCount": i(c.AutoCreateTopicMaxCount),
		"autoCreateSubscriptionGroupMaxCount": i(c.AutoCreateSubscriptionGroupMaxCount),
		"maxBatchMessageNums":                 i(c.MaxBatchMessageNums), "maxBatchPropertiesBytes": i(c.MaxBatchPropertiesBytes),
		"compressedRegister": b(c.CompressedRegister), "brokerRole": "ASYNC_MASTER",
		"maxProducerGroups": i(c.MaxProducerGroups), "maxProducerGroupsPerConnection": i(c.MaxProducerGroupsPerConnection),
		"maxQueryReplyBytes": i(c.MaxQueryReplyBytes), "storePathRootDir": s.Dir, "flushDiskType": string(s.FlushDiskType), "mappedFileSizeCommitLog": i64(s.MappedFileSizeCommitLog),
		"mappedFileSizeConsumeQueue": i(s.ConsumeQueueEntriesPerFile * 20), "maxOpenConsumeQueueFiles": i(s.MaxOpenConsumeQueueFiles), "maxMessageSize": i(s.MaxMessageSize),
		"syncFlushTimeout": ms(s.SyncFlushTimeout), "flushIntervalCommitLog": ms(s.FlushInterval),
		"flushCommitLogLeastPages": i(s.FlushLeastPages), "flushCommitLogThoroughInterval": ms(s.FlushThoroughInterval),
		"flushConsumeQueueThoroughInterval": ms(s.QueueFlushThoroughInterval), "maxHashSlotNum": i(s.MaxHashSlotNum),
		"syncFlushMinGapMicros":       i64(s.SyncFlushMinGap.Microseconds()),
		"syncFlushMinGapFromTps":      i(s.SyncFlushMinGapFromTps),
		"flushCommitLogMaxDirtyBytes": i64(s.MaxDirtyBytes()),
		"maxIndexNum":                 i(s.MaxIndexNum), "deleteWhen": s.Retention.DeleteWhen,
		"fileReservedTime":      i(int(s.Retention.FileReservedTime.Hours())),
		"diskMaxUsedSpaceRatio": i(int(s.Retention.DiskMaxUsedSpaceRatio * 100)),
	}
}

// formatProperties writes props as sorted key=value lines (MixAll
// .properties2String).
func formatProperties(props map[string]string) string {
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		sb.WriteString(k + "=" + props[k] + "\n")
	}
	return sb.String()
}

// applyOverrides applies the stored UPDATE_BROKER_CONFIG keys to cfg.
func applyOverrides(cfg *Config) error {
	path := filepath.Join(cfg.Store.Dir, "config", overrideFileName)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	if _, err := LoadConfFile(path, cfg); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return nil
}

func (b *Broker) handleGetBrokerConfig(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	resp := respond(req, protocol.ResponseSuccess, "")
	v := b.topics.Snapshot().DataVersion
	resp.SetExt("version", fmt.Sprintf(`{"counter":%d,"timestamp":%d}`, v.Counter, v.Timestamp))
	props := b.conf().ConfigProperties()
	r := b.store.Retention() // the store's defaults and live updates
	props["fileReservedTime"] = strconv.Itoa(int(r.FileReservedTime.Hours()))
	props["deleteWhen"] = r.DeleteWhen
	props["diskMaxUsedSpaceRatio"] = strconv.Itoa(int(math.Round(r.DiskMaxUsedSpaceRatio * 100)))
	resp.Body = []byte(formatProperties(props))
	return resp
}

func (b *Broker) handleUpdateBrokerConfig(_ context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
	if len(req.Body) == 0 || len(req.Body) > maxConfigBody {
		return respond(req, protocol.ResponseSystemError, fmt.Sprintf("config body of %d bytes (want 1..%d)", len(req.Body), maxConfigBody))
	}
	props, err := ParseProperties(strings.NewReader(string(req.Body)))
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "parse config: "+err.Error())
	}
	for _, k := range []string{"storePathRootDir", "brokerName", "brokerClusterName", "brokerId", "listenPort", "aclFile"} {
		if _, ok := props[k]; ok {
			return respond(req, protocol.ResponseNoPermission, "Can not update config "+k+" over the wire")
		}
	}
	b.live.mu.Lock()
	defer b.live.mu.Unlock()
	cur := b.conf()
	probe := *cur
	ignored, err := ApplyProperties(props, &probe)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "invalid config: "+err.Error())
	}
	if len(ignored) > 0 {
		return respond(req, protocol.ResponseSystemError, "unknown or unsupported config keys: "+strings.Join(ignored, ", "))
	}
	probe.defaults() // a 0 limit takes its default, as at start
	if err := checkLiveKeys(props, &probe); err != nil {
		return respond(req, protocol.ResponseSystemError, "invalid config: "+err.Error())
	}
	if err := probe.Store.CheckPolicy(); err != nil { // e.g. syncFlushMinGapMicros against syncFlushTimeout
		return respond(req, protocol.ResponseSystemError, "invalid config: "+err.Error())
	}
	if err := b.storeOverrides(props); err != nil {
		return respond(req, protocol.ResponseSystemError, "store config: "+err.Error())
	}
	next := *cur
	var live, restart []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if cp, ok := liveKeys[k]; ok {
			cp(&next, &probe)
			live = append(live, k)
		} else {
			restart = append(restart, k)
		}
	}
	if opened := cmp.Or(b.cfg.Store.MaxMessageSize, defaultMaxMessage); next.Store.MaxMessageSize > opened {
		// the store checks the size it was opened with too: above it, the
		// new limit holds only after a restart
		restart = append(restart, fmt.Sprintf("maxMessageSize above %d", opened))
	}
	b.live.ptr.Store(&next)
	b.applyLive(cur, &next)
	b.log.Info("broker config updated", "applied", live, "at_restart", restart, "remote", c.RemoteAddrString())
	remark := "stored in config/" + overrideFileName
	if len(live) > 0 {
		remark += "; applied now: " + strings.Join(live, ", ")
	}
	if len(restart) > 0 {
		remark += "; takes effect when the broker restarts: " + strings.Join(restart, ", ")
	}
	return respond(req, protocol.ResponseSuccess, remark)
}

// applyLive does what a live change needs beyond the handlers reading it.
func (b *Broker) applyLive(old, cur *Config) {
	b.groups.SetAutoCreate(cur.AutoCreateSubscriptionGroup)
	if cur.AutoCreateTopicEnable != old.AutoCreateTopicEnable {
		if err := b.topics.SetAutoCreateTopic(cur.AutoCreateTopicEnable, int32(cur.DefaultTopicQueueNums)); err != nil {
			b.log.Error("autoCreateTopicEnable: topic table not written", "err", err)
		}
	}
	b.groups.SetAutoMax(cur.AutoCreateSubscriptionGroupMaxCount)
	b.topics.SetLimits(cur.AutoCreateTopicMaxCount, cur.MaxQueueNums)
	b.producers.setLimits(cur.MaxProducerGroups, cur.MaxProducerGroupsPerConnection)
	if r, o := cur.Store.Retention, old.Store.Retention; r.FileReservedTime != o.FileReservedTime ||
		r.DeleteWhen != o.DeleteWhen || r.DiskMaxUsedSpaceRatio != o.DiskMaxUsedSpaceRatio {
		b.store.SetRetentionPolicy(engine.RetentionPolicy{FileReservedTime: r.FileReservedTime, DeleteWhen: r.DeleteWhen,
			DiskMaxUsedSpaceRatio: r.DiskMaxUsedSpaceRatio})
	}
	if old.BrokerPermission != cur.BrokerPermission {
		go b.registerAll() // routes carry the permission (register.go)
	}
	if old.TransactionCheckInterval != cur.TransactionCheckInterval {
		select {
		case b.live.txnReset <- cur.TransactionCheckInterval:
		default: // the loop picks up the live value at its next tick anyway
		}
	}
}

// txnInterval is the live transaction check interval.
func (b *Broker) txnInterval() time.Duration { return b.conf().TransactionCheckInterval }

// storeOverrides merges props into the override file.
func (b *Broker) storeOverrides(props map[string]string) error {
	path := filepath.Join(b.cfg.Store.Dir, "config", overrideFileName)
	old := map[string]string{}
	if f, err := os.Open(path); err == nil {
		old, err = ParseProperties(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	maps.Copy(old, props)
	return writeFileAtomic(path, []byte(formatProperties(old)))
}

// writeFileAtomic replaces path with data through a synced temp file.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := writeSynced(path+".tmp", data); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
