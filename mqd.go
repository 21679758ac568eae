// Package mqd embeds a RocketMQ 4.x-compatible nameserver and broker in a
// Go process, for tests of code that uses a RocketMQ client:
//
//	c, err := mqd.Start(mqd.Options{})
//	if err != nil { ... }
//	defer c.Close()
//	p, _ := rocketmq.NewProducer(producer.WithNameServer([]string{c.NamesrvAddr()}))
//
// Both servers listen on free loopback ports; the store lives in a
// temporary directory removed by Close unless Options.Dir names one. The
// broker is the same one cmd/mqd runs (see README.md for what it
// supports).
//
// The package's benchmarks are the headline engine benchmarks, named so
// that `go test -bench ./bench` (and `go test -bench bench`) at the
// repository root runs them; the full suite is `go test -bench . ./bench`.
package mqd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/namesrv"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Options configures an embedded cluster; the zero value is a usable
// default (SYNC_FLUSH, silent logs, temporary store).
type Options struct {
	// Dir is the store directory. Empty: a temporary directory that Close
	// removes.
	Dir string
	// AsyncFlush acknowledges sends once written to the files, before
	// their fdatasync (ASYNC_FLUSH); the default waits for the fsync
	// (SYNC_FLUSH).
	AsyncFlush bool
	// ClusterName and BrokerName default to DefaultCluster and broker-a.
	ClusterName, BrokerName string
	// NoAutoCreateTopic turns autoCreateTopicEnable off: sends to unknown
	// topics fail until CreateTopic.
	NoAutoCreateTopic bool
	// Logger receives both servers' logs (default: discarded).
	Logger *slog.Logger
}

// Cluster is a running nameserver and broker.
type Cluster struct {
	ns     *namesrv.Server
	b      *broker.Broker
	dir    string
	tmpDir bool
	admin  *remoting.Pool
}

// Start starts a nameserver and a broker registered with it, on loopback
// ports chosen by the system, and returns once the broker is registered.
func Start(o Options) (*Cluster, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{dir: o.Dir, admin: remoting.NewPool(remoting.ClientConfig{DialTimeout: 3 * time.Second})}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "mqd-")
		if err != nil {
			return nil, err
		}
		c.dir, c.tmpDir = d, true
	}
	if err := c.start(o, log); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func (c *Cluster) start(o Options, log *slog.Logger) error {
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if c.ns, err = namesrv.New(namesrv.Config{Listener: nl, Logger: log}); err != nil {
		nl.Close()
		return err
	}
	if err := c.ns.Start(); err != nil {
		return err
	}
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg := broker.NewConfig()
	cfg.Logger, cfg.Listener, cfg.BrokerIP1 = log, bl, "127.0.0.1"
	cfg.ClusterName, cfg.BrokerName = o.ClusterName, o.BrokerName
	cfg.NamesrvAddrs = []string{nl.Addr().String()}
	cfg.AutoCreateTopicEnable = !o.NoAutoCreateTopic
	// Field by field, so that NewConfig's store defaults stay.
	cfg.Store.Dir, cfg.Store.FlushDiskType, cfg.Store.MappedFileSizeCommitLog = c.dir, engine.SyncFlush, 64<<20
	cfg.Store.ConsumeQueueEntriesPerFile, cfg.Store.MaxHashSlotNum, cfg.Store.MaxIndexNum = 100000, 100000, 400000
	if o.AsyncFlush {
		cfg.Store.FlushDiskType = engine.AsyncFlush
	}
	if c.b, err = broker.New(cfg); err != nil {
		bl.Close()
		return err
	}
	if err := c.b.Start(); err != nil {
		return err
	}
	return c.waitRouted(broker.TopicAutoCreate, !o.NoAutoCreateTopic)
}

// waitRouted waits up to 10 s until the nameserver routes topic (when
// want) — that is, until the broker's registration has arrived.
func (c *Cluster) waitRouted(topic string, want bool) error {
	if !want {
		topic = ""
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if topic == "" {
			if len(c.ns.ClusterInfo().BrokerAddrTable) > 0 {
				return nil
			}
		} else if _, ok := c.ns.TopicRoute(topic); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mqd: topic %q not routed by the nameserver within 10s", topic)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NamesrvAddr is the nameserver's host:port, for a client's name server
// option.
func (c *Cluster) NamesrvAddr() string { return c.ns.Addr() }

// BrokerAddr is the broker's host:port.
func (c *Cluster) BrokerAddr() string { return c.b.Addr() }

// Dir is the store directory.
func (c *Cluster) Dir() string { return c.dir }

// CreateTopic creates (or updates) topic with queues read and write
// queues, and returns once the nameserver routes it.
func (c *Cluster) CreateTopic(topic string, queues int) error {
	if queues <= 0 {
		return fmt.Errorf("mqd: topic %q: %d queues", topic, queues)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.admin.Invoke(ctx, c.b.Addr(), protocol.NewRequest(protocol.UpdateAndCreateTopic,
		&protocol.CreateTopicRequestHeader{Topic: topic, DefaultTopic: broker.TopicAutoCreate,
			ReadQueueNums: int32(queues), WriteQueueNums: int32(queues), Perm: protocol.PermRead | protocol.PermWrite,
			TopicFilterType: protocol.TopicFilterSingleTag}))
	if err != nil {
		return fmt.Errorf("mqd: create topic %q: %w", topic, err)
	}
	if resp.Code != protocol.ResponseSuccess {
		return fmt.Errorf("mqd: create topic %q: code %d: %s", topic, resp.Code, resp.Remark)
	}
	return c.waitRouted(topic, true)
}

// Close stops the broker (persisting offsets, flushing the store) and the
// nameserver, and removes a temporary store directory.
func (c *Cluster) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	c.admin.Close()
	if c.b != nil {
		errs = append(errs, c.b.Shutdown(ctx))
	}
	if c.ns != nil {
		errs = append(errs, c.ns.Shutdown(ctx))
	}
	if c.tmpDir {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}
