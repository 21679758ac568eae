package broker

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// startBroker starts a broker on a loopback port with a small store in a
// temp dir (no nameserver unless mutate sets one) and a client connected
// to it. Both are stopped when the test ends.
func startBroker(t *testing.T, mutate func(*Config)) (*Broker, *remoting.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	cfg.BrokerIP1 = "127.0.0.1"
	cfg.Listener = ln
	cfg.Store = engine.Config{Dir: t.TempDir(), MappedFileSizeCommitLog: 1 << 20, ConsumeQueueEntriesPerFile: 1000,
		MaxHashSlotNum: 1000, MaxIndexNum: 10000, FlushDiskType: engine.SyncFlush,
		Retention: engine.RetentionConfig{DiskUsage: roomyDisk}}
	if mutate != nil {
		mutate(&cfg)
	}
	return serve(t, cfg)
}

// serve starts a broker with cfg and a client connected to it, both
// stopped when the test ends.
func serve(t *testing.T, cfg Config) (*Broker, *remoting.Client) {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b, c
}

// call sends req and fails the test on a transport error.
func call(t *testing.T, c *remoting.Client, req *protocol.Command) *protocol.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestBrokerStartsAndStops(t *testing.T) {
	b, _ := startBroker(t, nil)
	if _, ok := b.topics.Get(TopicAutoCreate); !ok {
		t.Fatal("TBW102 missing with autoCreateTopicEnable")
	}
}

// roomyDisk is the disk usage the tests' stores see, whatever the host
// disk's (above 85% retention deletes unexpired segments, above 90% the
// store refuses writes, by design).
func roomyDisk(string) (float64, error) { return 0.1, nil }
