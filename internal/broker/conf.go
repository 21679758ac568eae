package broker

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/engine"
)

// ParseProperties reads a Java .properties file: key=value or key:value
// (or key value), '#' and '!' comments, trailing-backslash continuation.
func ParseProperties(r io.Reader) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(r)
	var pending string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		i := strings.IndexAny(line, "=: \t")
		if i < 0 {
			props[line] = ""
			continue
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(strings.TrimLeft(line[i:], "=: \t"))
	}
	return props, sc.Err()
}

// LoadConfFile applies a broker.conf file (RocketMQ keys, Java's BrokerConfig and MessageStoreConfig) to cfg.
// It returns the keys it ignored (unknown or not supported yet).
func LoadConfFile(path string, cfg *Config) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props, err := ParseProperties(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ApplyProperties(props, cfg)
}

// ApplyProperties sets cfg from RocketMQ configuration keys.
func ApplyProperties(props map[string]string, cfg *Config) (ignored []string, err error) {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok, err := applyProperty(cfg, k, props[k])
		if err != nil {
			return ignored, fmt.Errorf("%s=%s: %w", k, props[k], err)
		}
		if !ok {
			ignored = append(ignored, k)
		}
	}
	return ignored, nil
}

func applyProperty(c *Config, k, v string) (bool, error) {
	s := &c.Store
	switch k {
	case "brokerClusterName":
		c.ClusterName = v
	case "brokerName":
		c.BrokerName = v
	case "brokerId":
		return true, setInt64(&c.BrokerID, v)
	case "namesrvAddr":
		c.NamesrvAddrs = SplitAddrs(v)
	case "brokerIP1":
		c.BrokerIP1 = v
	case "listenPort":
		return true, setInt(&c.ListenPort, v)
	case "maxConnections":
		return true, setInt(&c.MaxConnections, v)
	case "maxQueuedBytesPerConnection":
		return true, setInt64(&c.MaxQueuedBytesPerConnection, v)
	case "maxInboundBytes":
		return true, setInt64(&c.MaxInboundBytes, v)
	case "maxParkedPullsPerConnection":
		return true, setInt(&c.MaxParkedPullsPerConnection, v)
	case "brokerPermission":
		n, err := strconv.ParseInt(v, 10, 32)
		c.BrokerPermission = int32(n)
		return true, err
	case "autoCreateTopicEnable":
		return true, setBool(&c.AutoCreateTopicEnable, v)
	case "defaultTopicQueueNums":
		return true, setInt(&c.DefaultTopicQueueNums, v)
	case "autoCreateSubscriptionGroup":
		return true, setBool(&c.AutoCreateSubscriptionGroup, v)
	case "longPollingEnable":
		return true, setBool(&c.LongPollingEnable, v)
	case "shortPollingTimeMills":
		return true, setInt64(&c.ShortPollingTimeMills, v)
	case "notifyConsumerIdsChangedEnable":
		return true, setBool(&c.NotifyConsumerIdsChanged, v)
	case "regionId":
		c.RegionID = v
	case "traceOn":
		return true, setBool(&c.TraceOn, v)
	case "enablePropertyFilter":
		return true, setBool(&c.EnablePropertyFilter, v)
	case "storeReplyMessageEnable":
		return true, setBool(&c.StoreReplyMessageEnable, v)
	case "registerNameServerPeriod":
		return true, setMillis(&c.RegisterNameServerPeriod, v)
	case "flushConsumerOffsetInterval":
		return true, setMillis(&c.FlushConsumerOffsetInterval, v)
	case "aclEnable":
		return true, setBool(&c.ACL.Enable, v)
	case "innerClientAuthenticationCredentials":
		return true, parseCredentials(v, &c.ACL.Inner) // acl.go
	case "aclFile":
		c.ACL.File = ExpandHome(v)
	case "maxQueueNums", "autoCreateTopicMaxCount", "autoCreateSubscriptionGroupMaxCount",
		"maxBatchMessageNums", "maxBatchPropertiesBytes", "compressedRegister",
		"maxProducerGroups", "maxProducerGroupsPerConnection", "maxQueryReplyBytes":
		return applyLimitProperty(c, k, v) // limits.go
	case "messageDelayLevel", "flushDelayOffsetInterval":
		return applyDelayProperty(c, k, v) // delay.go
	case "timerWheelEnable", "timerMaxDelaySec", "timerRollWindowSlot":
		return applyTimerProperty(c, k, v) // timer.go
	case "enableControllerMode", "controllerAddr", "brokerHeartbeatInterval", "controllerHeartBeatTimeoutMills",
		"controllerLeaseMills", "haMaxTimeSlaveNotCatchup", "brokerElectionPriority", "allAckInSyncStateSet",
		"minInSyncReplicas":
		return applyControllerProperty(c, k, v) // controllermode.go
	case "transactionCheckInterval", "transactionTimeOut", "transactionCheckMax":
		return applyTxnProperty(c, k, v) // txncheck.go
	case "brokerRole", "haListenPort", "haMasterAddress", "slaveReadEnable", "haSendHeartbeatInterval",
		"haHousekeepingInterval", "haTransferBatchSize", "haSlaveFallbehindMax", "haSlaveAckDurable":
		return applyHAProperty(c, k, v) // ha.go
	case "haStreamCompression", "haAdvertisedAddr":
		return applyHAProperty(c, k, v) // ha.go
	default:
		return applyStoreProperty(s, k, v)
	}
	return true, nil
}

// maxSyncFlushMinGapMicros bounds syncFlushMinGapMicros: a longer hold
// only adds latency (BENCHMARKS.md, "A minimum gap between syncs").
const maxSyncFlushMinGapMicros = 10_000

// maxFlushMaxDirtyBytes bounds flushCommitLogMaxDirtyBytes (at least a
// page, 4096, when set): a larger bound only lets the periodic sync's
// burst grow again.
const maxFlushMaxDirtyBytes = 1 << 30

// maxSyncFlushMinGapFromTps bounds syncFlushMinGapFromTps (a rate no
// broker reaches turns the gap off as well as 0 turns it always on).
const maxSyncFlushMinGapFromTps = 1_000_000_000

func applyStoreProperty(s *engine.Config, k, v string) (bool, error) {
	switch k {
	case "storePathRootDir":
		s.Dir = ExpandHome(v)
	case "flushDiskType":
		if v != string(engine.SyncFlush) && v != string(engine.AsyncFlush) {
			return true, fmt.Errorf("want SYNC_FLUSH or ASYNC_FLUSH")
		}
		s.FlushDiskType = engine.FlushDiskType(v)
	case "mappedFileSizeCommitLog":
		return true, setInt64(&s.MappedFileSizeCommitLog, v)
	case "maxOpenConsumeQueueFiles":
		return true, setInt(&s.MaxOpenConsumeQueueFiles, v)
	case "mappedFileSizeConsumeQueue":
		var n int
		err := setInt(&n, v)
		s.ConsumeQueueEntriesPerFile = n / 20
		return true, err
	case "maxMessageSize":
		return true, setInt(&s.MaxMessageSize, v)
	case "syncFlushTimeout":
		return true, setMillis(&s.SyncFlushTimeout, v)
	case "syncFlushMinGapMicros":
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && (n < 0 || n > maxSyncFlushMinGapMicros) {
			err = fmt.Errorf("want 0 to %d microseconds", maxSyncFlushMinGapMicros)
		}
		s.SyncFlushMinGap = time.Duration(n) * time.Microsecond
		return true, err
	case "syncFlushMinGapFromTps":
		n, err := strconv.Atoi(v)
		if err == nil && (n < 0 || n > maxSyncFlushMinGapFromTps) {
			err = fmt.Errorf("want 0 to %d sends a second", maxSyncFlushMinGapFromTps)
		}
		s.SyncFlushMinGapFromTps = n
		return true, err
	case "flushIntervalCommitLog":
		return true, setMillis(&s.FlushInterval, v)
	case "flushCommitLogLeastPages":
		return true, setInt(&s.FlushLeastPages, v)
	case "flushCommitLogThoroughInterval":
		return true, setMillis(&s.FlushThoroughInterval, v)
	case "flushCommitLogMaxDirtyBytes":
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
		case n != 0 && (n < 4096 || n > maxFlushMaxDirtyBytes):
			err = fmt.Errorf("want 0 (none) or 4096 to %d bytes", int64(maxFlushMaxDirtyBytes))
		case n == 0:
			s.FlushMaxDirty = -1 // none: engine.Config's 0 is the default
		default:
			s.FlushMaxDirty = n
		}
		return true, err
	case "flushConsumeQueueThoroughInterval":
		return true, setMillis(&s.QueueFlushThoroughInterval, v)
	case "maxHashSlotNum":
		return true, setInt(&s.MaxHashSlotNum, v)
	case "maxIndexNum":
		return true, setInt(&s.MaxIndexNum, v)
	case "deleteWhen":
		s.Retention.DeleteWhen = v
	case "fileReservedTime":
		var h int
		err := setInt(&h, v)
		s.Retention.FileReservedTime = time.Duration(h) * time.Hour
		return true, err
	case "diskMaxUsedSpaceRatio":
		var p int
		err := setInt(&p, v)
		s.Retention.DiskMaxUsedSpaceRatio = float64(p) / 100
		return true, err
	default:
		return false, nil
	}
	return true, nil
}

// SplitAddrs splits a RocketMQ address list ("a:1;b:2").
func SplitAddrs(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// ExpandHome replaces a leading ~ with the home directory.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

func setInt(p *int, v string) error {
	n, err := strconv.Atoi(v)
	*p = n
	return err
}

func setInt64(p *int64, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	*p = n
	return err
}

func setBool(p *bool, v string) error {
	b, err := strconv.ParseBool(v)
	*p = b
	return err
}

func setMillis(p *time.Duration, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	*p = time.Duration(n) * time.Millisecond
	return err
}
