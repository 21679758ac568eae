package metrics

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func startBroker(t *testing.T, mutate func(*broker.Config)) *broker.Broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.NewConfig()
	cfg.BrokerIP1, cfg.Listener = "127.0.0.1", ln
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Store = engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: t.TempDir(), MappedFileSizeCommitLog: 1 << 20, ConsumeQueueEntriesPerFile: 1000,
		MaxHashSlotNum: 1000, MaxIndexNum: 10000, FlushDiskType: engine.SyncFlush}
	mutate(&cfg)
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	return b
}

func scrape(b *broker.Broker) string {
	rec := httptest.NewRecorder()
	Handler(b).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A SYNC_MASTER with a slave that keeps up and one that never
// acknowledges (a raw HA connection): per-slave lag, ack latency, and the
// slave's own view.
func TestScrapeReplication(t *testing.T) {
	m := startBroker(t, func(c *broker.Config) { c.HA.Role = broker.RoleSyncMaster })
	s := startBroker(t, func(c *broker.Config) {
		c.BrokerID = 1
		c.HA = broker.HAConfig{Role: broker.RoleSlave, MasterAddress: m.HAAddr()}
	})
	waitUntil(t, "slave connected", func() bool { return m.HAStatus().Slaves == 1 })
	stuck, err := net.Dial("tcp", m.HAAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	hello := make([]byte, 32) // ha/FORMAT.md: magic, version, segment size, offset 0
	binary.BigEndian.PutUint32(hello, 0x4D514841)
	binary.BigEndian.PutUint32(hello[4:], 1)
	binary.BigEndian.PutUint64(hello[8:], uint64(m.Store().SegmentSize()))
	if _, err := stuck.Write(hello); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "two slaves", func() bool { return m.HAStatus().Slaves == 2 })

	c, err := remoting.Dial(context.Background(), m.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		req := protocol.NewRequest(protocol.SendMessage, &protocol.SendMessageRequestHeader{ProducerGroup: "pg",
			Topic: "HaT", DefaultTopic: "TBW102", DefaultTopicQueueNums: 1, QueueID: 0, BornTimestamp: 1})
		req.Body = []byte("0123456789")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.Invoke(ctx, req)
		cancel()
		if err != nil || resp.Code != protocol.ResponseSuccess {
			t.Fatalf("send: %v %v", resp, err)
		}
	}
	end := strconv.FormatInt(m.Store().WrittenOffset(), 10)
	var real string
	for _, x := range m.HASlaves() {
		if x.Addr != stuck.LocalAddr().String() {
			real = x.Addr
		}
	}
	mb := scrape(m)
	l := `\{broker="broker-a",cluster="DefaultCluster",`
	for _, want := range []string{
		`mqd_ha_connected_slaves\{broker="broker-a",cluster="DefaultCluster"\} 2\n`,
		`mqd_ha_slave_lag_bytes` + l + `slave="` + regexp.QuoteMeta(stuck.LocalAddr().String()) + `"\} ` + end + `\n`,
		`mqd_ha_slave_lag_bytes` + l + `slave="` + regexp.QuoteMeta(real) + `"\} 0\n`,
		`mqd_ha_slave_report_age_seconds` + l + `slave="` + regexp.QuoteMeta(real) + `"\} \d`,
		`mqd_ha_slave_ack_latency_seconds_count\{broker="broker-a",cluster="DefaultCluster"\} 3\n`,
	} {
		if !regexp.MustCompile(want).MatchString(mb) {
			t.Errorf("master scrape lacks %s", want)
		}
	}
	waitUntil(t, "slave caught up", func() bool { return s.HAStatus().Lag == 0 && s.HAStatus().MasterEnd > 0 })
	sb := scrape(s)
	for _, want := range []string{
		`mqd_ha_master_connected\{broker="broker-a",cluster="DefaultCluster"\} 1\n`,
		`mqd_ha_master_lag_bytes\{broker="broker-a",cluster="DefaultCluster"\} 0\n`,
	} {
		if !regexp.MustCompile(want).MatchString(sb) {
			t.Errorf("slave scrape lacks %s", want)
		}
	}
	// Every replication series the Grafana dashboard queries is exported
	// by a master or a slave.
	dash, err := os.ReadFile("../../deploy/grafana/mqd.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\bmqd_ha_[a-z_]+`).FindAllString(string(dash), -1)
	if len(names) < 4 {
		t.Errorf("the dashboard shows %d replication series", len(names))
	}
	for _, name := range names {
		if !strings.Contains(mb+sb, "\n"+name+"{") {
			t.Errorf("dashboard queries %s, which is not exported", name)
		}
	}
	if t.Failed() {
		t.Log(mb, sb)
	}
}

// roomyDisk is the disk usage the tests' stores see, whatever the host
// disk's (above 85% retention deletes unexpired segments, above 90% the
// store refuses writes, by design).
func roomyDisk(string) (float64, error) { return 0.1, nil }
