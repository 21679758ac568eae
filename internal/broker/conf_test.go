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
	if _, err := ApplyProperties(map[string]string{"brokerRole": "SLAVE"}, &cfg); err == nil {
		t.Fatal("SLAVE accepted before replication exists")
	}
	if _, err := ApplyProperties(map[string]string{"listenPort": "x"}, &cfg); err == nil {
		t.Fatal("bad number accepted")
	}
}
