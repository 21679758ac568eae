package broker

import (
	"log/slog"
	"net"
	"time"

	"github.com/mqd/mqd/engine"
)

// Config is the broker's configuration; zero values take RocketMQ's
// defaults (Java's BrokerConfig and MessageStoreConfig). cmd/mqd fills it from broker.conf and flags.
type Config struct {
	ClusterName string // brokerClusterName, DefaultCluster
	BrokerName  string // brokerName, broker-a
	BrokerID    int64  // brokerId, 0 (master)
	BrokerIP1   string // address put in routes and STOREHOST; default: an address clients can reach
	ListenPort  int    // listenPort, 10911 (0 with Listener set in tests)
	// Listener, if set, is used instead of listening on ListenPort.
	Listener     net.Listener
	NamesrvAddrs []string // namesrvAddr split on ';'

	BrokerPermission            int32 // 6
	AutoCreateTopicEnable       bool  // true: use NewConfig or set it
	DefaultTopicQueueNums       int   // 8
	AutoCreateSubscriptionGroup bool  // true
	LongPollingEnable           bool  // true
	ShortPollingTimeMills       int64 // 1000
	NotifyConsumerIdsChanged    bool  // true
	RegionID                    string
	TraceOn                     bool
	EnablePropertyFilter        bool // enablePropertyFilter: SQL92 filters; true here (Java: false)
	StoreReplyMessageEnable     bool // storeReplyMessageEnable, true: replies (324/325) are stored as well as pushed (reply.go)

	RegisterNameServerPeriod    time.Duration // 30 s
	FlushConsumerOffsetInterval time.Duration // 5 s
	ChannelExpiredTimeout       time.Duration // 120 s: clients not heard from are dropped
	ClientScanInterval          time.Duration // 10 s
	LockMaxLiveTime             time.Duration // 60 s: orderly queue locks

	ACL ACLConfig // acl.go: aclEnable, aclFile
	// Limits on client input (limits.go); zero takes the default.
	MaxQueueNums                        int  // maxQueueNums, 1024: read/write/retry queue numbers
	AutoCreateTopicMaxCount             int  // autoCreateTopicMaxCount, 10000 topics
	AutoCreateSubscriptionGroupMaxCount int  // autoCreateSubscriptionGroupMaxCount, 10000 groups
	MaxBatchMessageNums                 int  // maxBatchMessageNums, 10000 entries per batch
	MaxBatchPropertiesBytes             int  // maxBatchPropertiesBytes, 4 MiB of stored properties per batch
	CompressedRegister                  bool // compressedRegister: always send the zlib register body
	MaxProducerGroups                   int  // maxProducerGroups, 10000 producer groups registered by heartbeats
	MaxProducerGroupsPerConnection      int  // maxProducerGroupsPerConnection, 1000 producer groups of one connection
	MaxQueryReplyBytes                  int  // maxQueryReplyBytes, 4 MiB of records in one QUERY_MESSAGE reply

	Delay DelayConfig // delay.go: flushDelayOffsetInterval (messageDelayLevel is Store.DelayLevels)
	Timer TimerConfig // timer.go: timerWheelEnable, timerMaxDelaySec, timerRollWindowSlot
	// Transactions (txncheck.go); zero takes Java's default.
	TransactionCheckInterval time.Duration // transactionCheckInterval, 60 s between check-back scans
	TransactionTimeOut       time.Duration // transactionTimeOut, 6 s: younger half messages are not checked
	TransactionCheckMax      int           // transactionCheckMax, 15 checks before a half message is discarded
	// Transport limits (SECURITY.md, "Transport limits"); 0 takes the
	// default, a negative value disables the first two.
	MaxConnections              int              // maxConnections, 10000
	MaxQueuedBytesPerConnection int64            // maxQueuedBytesPerConnection, 16 MiB
	MaxParkedPullsPerConnection int              // maxParkedPullsPerConnection, 1024
	MaxInboundBytes             int64            // maxInboundBytes, 32 MiB of inbound frames read or handled, all connections
	HA                          HAConfig         // ha.go: brokerRole, haListenPort, haMasterAddress, slaveReadEnable, …
	Controller                  ControllerConfig // controllermode.go: enableControllerMode, controllerAddr, …

	Store  engine.Config
	Logger *slog.Logger
}

// NewConfig returns a config with every RocketMQ default set, the boolean
// ones included (which a zero Config cannot express).
func NewConfig() Config {
	return Config{
		AutoCreateTopicEnable: true, AutoCreateSubscriptionGroup: true, LongPollingEnable: true,
		NotifyConsumerIdsChanged: true, TraceOn: true, EnablePropertyFilter: true,
		Timer: TimerConfig{WheelEnable: true}, StoreReplyMessageEnable: true,
		Controller: ControllerConfig{AllAck: DefaultAllAckInSyncStateSet, MinInSync: DefaultMinInSyncReplicas},
		Store:      engine.Config{SyncFlushMinGapFromTps: engine.DefaultSyncFlushMinGapFromTps},
	}
}

func (c *Config) defaults() {
	if c.ClusterName == "" {
		c.ClusterName = "DefaultCluster"
	}
	if c.BrokerName == "" {
		c.BrokerName = "broker-a"
	}
	c.HA.defaults() // ha.go
	if c.BrokerIP1 == "" {
		c.BrokerIP1 = DefaultBrokerIP()
	}
	if c.BrokerPermission == 0 {
		c.BrokerPermission = 6
	}
	if c.DefaultTopicQueueNums == 0 {
		c.DefaultTopicQueueNums = 8
	}
	if c.ShortPollingTimeMills == 0 {
		c.ShortPollingTimeMills = 1000
	}
	if c.RegionID == "" {
		c.RegionID = "DefaultRegion"
	}
	if c.RegisterNameServerPeriod == 0 {
		c.RegisterNameServerPeriod = 30 * time.Second
	}
	if c.FlushConsumerOffsetInterval == 0 {
		c.FlushConsumerOffsetInterval = 5 * time.Second
	}
	if c.ChannelExpiredTimeout == 0 {
		c.ChannelExpiredTimeout = 120 * time.Second
	}
	if c.ClientScanInterval == 0 {
		c.ClientScanInterval = 10 * time.Second
	}
	if c.LockMaxLiveTime == 0 {
		c.LockMaxLiveTime = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.limitDefaults() // limits.go
	c.txnDefaults()   // txncheck.go
}

// DefaultBrokerIP picks the address put in routes when brokerIP1 is not
// set: the first non-loopback IPv4 address not in 192.168/16 (as the Java
// broker does), else the last IPv4 found, else 127.0.0.1.
func DefaultBrokerIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	last := ""
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipn.IP.To4()
		if ip == nil {
			continue
		}
		if !ip.IsLoopback() && !(ip[0] == 192 && ip[1] == 168) {
			return ip.String()
		}
		last = ip.String()
	}
	if last == "" {
		return "127.0.0.1"
	}
	return last
}
