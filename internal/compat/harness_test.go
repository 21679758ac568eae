package compat

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/namesrv"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/testport"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel(os.Getenv("MQD_CLIENT_LOG"))
	os.Exit(m.Run())
}

// cluster is an in-process nameserver and broker on loopback ports.
type cluster struct {
	t      *testing.T
	ns     *namesrv.Server
	nsAddr string
	b      *broker.Broker
	cfg    broker.Config
	port   int
}

func startCluster(t *testing.T, mutate func(*broker.Config)) *cluster {
	t.Helper()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := namesrv.New(namesrv.Config{Listener: nl})
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	// The broker's port is from testport: a restart binds it again.
	c := &cluster{t: t, ns: ns, nsAddr: nl.Addr().String(), port: testport.Free(t)}
	cfg := broker.NewConfig()
	cfg.BrokerIP1 = "127.0.0.1"
	cfg.NamesrvAddrs = []string{c.nsAddr}
	cfg.Store = engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: t.TempDir(), MappedFileSizeCommitLog: 16 << 20, FlushDiskType: engine.SyncFlush,
		ConsumeQueueEntriesPerFile: 10000, MaxHashSlotNum: 10000, MaxIndexNum: 40000}
	if mutate != nil {
		mutate(&cfg)
	}
	c.cfg = cfg
	c.startBroker()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if c.b != nil {
			c.b.Shutdown(ctx)
		}
		ns.Shutdown(ctx)
	})
	return c
}

// startBroker starts the broker; a restart keeps the store and the port,
// so clients reconnect to the address they know.
func (c *cluster) startBroker() {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.port))
	if err != nil {
		c.t.Fatal(err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	cfg := c.cfg
	cfg.Listener = ln
	b, err := broker.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.b = b
}

func (c *cluster) restartBroker() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.b.Shutdown(ctx); err != nil {
		c.t.Fatal(err)
	}
	c.startBroker()
}

func (c *cluster) resolver() primitive.NsResolver {
	return primitive.NewPassthroughResolver([]string{c.nsAddr})
}

// createTopic creates topic through the Go client's admin API and waits
// until the nameserver routes it.
func (c *cluster) createTopic(topic string, queues int) {
	c.t.Helper()
	a, err := admin.NewAdmin(admin.WithResolver(c.resolver()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer a.Close()
	err = a.CreateTopic(context.Background(), admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.b.Addr()),
		admin.WithReadQueueNums(queues), admin.WithWriteQueueNums(queues))
	if err != nil {
		c.t.Fatal(err)
	}
	waitUntil(c.t, 10*time.Second, func() bool { return c.routed(topic) })
}

var instanceSeq struct {
	sync.Mutex
	n int
}

// instance returns a unique client instance name: the Go client shares one
// client per instance within a process, and the broker tells consumers
// apart by it.
func instance(prefix string) string {
	instanceSeq.Lock()
	defer instanceSeq.Unlock()
	instanceSeq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), instanceSeq.n)
}

// producerGroup is the test's producer group: its name, with the "/" of a
// subtest (not allowed in a group name) as "_".
func producerGroup(t testing.TB) string { return "pg-" + strings.ReplaceAll(t.Name(), "/", "_") }

func (c *cluster) producer(opts ...producer.Option) rocketmq.Producer {
	c.t.Helper()
	opts = append([]producer.Option{producer.WithNsResolver(c.resolver()), producer.WithGroupName(producerGroup(c.t)),
		producer.WithInstanceName(instance("p")), producer.WithRetry(2)}, opts...)
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.Shutdown() })
	return p
}

func (c *cluster) pushConsumer(group string, opts ...consumer.Option) rocketmq.PushConsumer {
	c.t.Helper()
	opts = append([]consumer.Option{consumer.WithNsResolver(c.resolver()), consumer.WithGroupName(group),
		consumer.WithInstance(instance("c")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)}, opts...)
	pc, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	return pc
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// routed reports whether the nameserver has a route for topic.
func (c *cluster) routed(topic string) bool {
	cl, err := remoting.Dial(context.Background(), c.nsAddr, remoting.ClientConfig{})
	if err != nil {
		return false
	}
	defer cl.Close()
	req := protocol.NewRequest(protocol.GetRouteInfoByTopic, nil)
	req.SetExt("topic", topic)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, req)
	return err == nil && resp.Code == protocol.ResponseSuccess
}

func producerSendTimeout() producer.Option { return producer.WithSendMsgTimeout(2 * time.Second) }

// roomyDisk is the disk usage the tests' stores see, whatever the host
// disk's (above 85% retention deletes unexpired segments, above 90% the
// store refuses writes, by design).
func roomyDisk(string) (float64, error) { return 0.1, nil }
