package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
)

func TestApplyBrokerConf(t *testing.T) {
	const conf = `# shipped conf/broker.conf
brokerClusterName = DefaultCluster
brokerName = broker-b
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
brokerRole = ASYNC_MASTER
flushDiskType = SYNC_FLUSH
namesrvAddr=10.0.0.1:9876;10.0.0.2:9876
listenPort: 10921
autoCreateTopicEnable=false
mappedFileSizeConsumeQueue=600000
storePathRootDir=/data/store
someFutureKey=1
`
	props, err := ParseProperties(strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	ignored, err := ApplyProperties(props, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BrokerName != "broker-b" || cfg.ListenPort != 10921 || cfg.AutoCreateTopicEnable ||
		len(cfg.NamesrvAddrs) != 2 || cfg.Store.FlushDiskType != engine.SyncFlush ||
		cfg.Store.Retention.FileReservedTime != 48*time.Hour || cfg.Store.ConsumeQueueEntriesPerFile != 30000 ||
		cfg.Store.Dir != "/data/store" {
		t.Fatalf("%+v", cfg)
	}
	if len(ignored) != 1 || ignored[0] != "someFutureKey" {
		t.Fatal(ignored)
	}
	if _, err := ApplyProperties(map[string]string{"brokerRole": "SLAVE", "haMasterAddress": "10.0.0.1:10912",
		"slaveReadEnable": "true", "haSendHeartbeatInterval": "1000"}, &cfg); err != nil ||
		cfg.HA.Role != RoleSlave || cfg.HA.MasterAddress != "10.0.0.1:10912" || !cfg.HA.SlaveReadEnable || cfg.HA.Heartbeat != time.Second {
		t.Fatal(err, cfg.HA)
	}
	if _, err := ApplyProperties(map[string]string{"brokerRole": "MASTER"}, &cfg); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, err := ApplyProperties(map[string]string{"listenPort": "x"}, &cfg); err == nil {
		t.Fatal("bad number accepted")
	}
}

func TestLimitKeys(t *testing.T) {
	cfg := NewConfig()
	ignored, err := ApplyProperties(map[string]string{"maxQueueNums": "64", "autoCreateTopicMaxCount": "5",
		"autoCreateSubscriptionGroupMaxCount": "6", "maxBatchMessageNums": "7", "maxBatchPropertiesBytes": "8",
		"compressedRegister": "true", "maxProducerGroups": "9", "maxProducerGroupsPerConnection": "10",
		"maxQueryReplyBytes": "11"}, &cfg)
	if err != nil || len(ignored) != 0 {
		t.Fatal(err, ignored)
	}
	if cfg.MaxQueueNums != 64 || cfg.AutoCreateTopicMaxCount != 5 || cfg.AutoCreateSubscriptionGroupMaxCount != 6 ||
		cfg.MaxBatchMessageNums != 7 || cfg.MaxBatchPropertiesBytes != 8 || !cfg.CompressedRegister ||
		cfg.MaxProducerGroups != 9 || cfg.MaxProducerGroupsPerConnection != 10 || cfg.MaxQueryReplyBytes != 11 {
		t.Fatalf("%+v", cfg)
	}
	for _, v := range []string{"0", "-1", "x"} {
		if _, err := ApplyProperties(map[string]string{"maxQueueNums": v}, &cfg); err == nil {
			t.Fatalf("maxQueueNums=%s accepted", v)
		}
	}
	var d Config
	d.defaults()
	if d.MaxQueueNums != 1024 || d.AutoCreateTopicMaxCount != 10000 || d.MaxBatchPropertiesBytes != 4<<20 ||
		d.MaxProducerGroups != 10000 || d.MaxProducerGroupsPerConnection != 1000 || d.MaxQueryReplyBytes != 4<<20 {
		t.Fatalf("defaults %+v", d)
	}
}

func TestSyncFlushMinGapKey(t *testing.T) {
	cfg := NewConfig()
	if _, err := ApplyProperties(map[string]string{"syncFlushMinGapMicros": "700"}, &cfg); err != nil ||
		cfg.Store.SyncFlushMinGap != 700*time.Microsecond {
		t.Fatal(err, cfg.Store.SyncFlushMinGap)
	}
	if got := cfg.ConfigProperties()["syncFlushMinGapMicros"]; got != "700" {
		t.Fatalf("getBrokerConfig shows %q", got)
	}
	for _, bad := range []string{"-1", "10001", "1ms"} {
		if _, err := ApplyProperties(map[string]string{"syncFlushMinGapMicros": bad}, &cfg); err == nil {
			t.Errorf("syncFlushMinGapMicros=%s accepted", bad)
		}
	}
}

// The gap is off by default, and applies from 60,000 durable sends a
// second once set (BENCHMARKS.md, session 17); syncFlushMinGapFromTps
// sets the rate.
func TestSyncFlushMinGapFromTpsKey(t *testing.T) {
	cfg := NewConfig()
	if cfg.Store.SyncFlushMinGap != 0 || cfg.Store.SyncFlushMinGapFromTps != 60_000 {
		t.Fatalf("defaults: gap %v from %d a second", cfg.Store.SyncFlushMinGap, cfg.Store.SyncFlushMinGapFromTps)
	}
	if got := cfg.ConfigProperties()["syncFlushMinGapFromTps"]; got != "60000" {
		t.Fatalf("getBrokerConfig shows %q", got)
	}
	if _, err := ApplyProperties(map[string]string{"syncFlushMinGapFromTps": "0"}, &cfg); err != nil || cfg.Store.SyncFlushMinGapFromTps != 0 {
		t.Fatal(err, cfg.Store.SyncFlushMinGapFromTps)
	}
	for _, bad := range []string{"-1", "1000000001", "1k"} {
		if _, err := ApplyProperties(map[string]string{"syncFlushMinGapFromTps": bad}, &cfg); err == nil {
			t.Errorf("syncFlushMinGapFromTps=%s accepted", bad)
		}
	}
}

// flushCommitLogMaxDirtyBytes sets the unsynced bytes at which an
// ASYNC_FLUSH sync starts (4 MiB by default, 0: none); getBrokerConfig
// shows the value in effect.
func TestFlushMaxDirtyKey(t *testing.T) {
	cfg := NewConfig()
	if got := cfg.ConfigProperties()["flushCommitLogMaxDirtyBytes"]; got != "4194304" {
		t.Fatalf("default shown as %q", got)
	}
	for v, want := range map[string]string{"1048576": "1048576", "0": "0"} {
		cfg := NewConfig()
		if _, err := ApplyProperties(map[string]string{"flushCommitLogMaxDirtyBytes": v}, &cfg); err != nil {
			t.Fatal(err)
		}
		if got := cfg.ConfigProperties()["flushCommitLogMaxDirtyBytes"]; got != want {
			t.Errorf("flushCommitLogMaxDirtyBytes=%s shown as %q", v, got)
		}
	}
	for _, bad := range []string{"-1", "1", "4095", "1073741825", "4MiB"} {
		cfg := NewConfig()
		if _, err := ApplyProperties(map[string]string{"flushCommitLogMaxDirtyBytes": bad}, &cfg); err == nil {
			t.Errorf("flushCommitLogMaxDirtyBytes=%s accepted", bad)
		}
	}
}
