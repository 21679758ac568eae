// Package broker is the RocketMQ broker: request handlers over the
// remoting transport in front of the engine.
//
// Goroutines and what they own:
//   - remoting runs each request's handler on its own goroutine; handlers
//     share the managers below, each guarded by its own lock;
//   - the registration loop (register.go) re-registers with every
//     nameserver every 30 s and after topic changes;
//   - the client housekeeping loop (clients.go) drops expired clients and
//     expired queue locks;
//   - the offset loop (offsets.go) persists consumer offsets every 5 s;
//   - the pull-hold service (pullhold.go) owns parked long polls and is
//     woken by the engine's dispatch goroutine through a Dispatcher;
//   - the transaction check loop (txncheck.go) scans open half messages
//     every transactionCheckInterval.
//   - the stats loop (admin_stats.go) samples traffic counters each second.
//
// Files by request family: send.go (+ senddeferred.go, sendtopics.go,
// sendback.go), pull.go (+ pullhold.go, filter.go), offsets.go, query.go,
// clients.go, locks.go, admin.go, register.go, txn.go (+ txncheck.go),
// delay.go, timer.go; operator requests in admin_ops.go, admin_config.go,
// admin_runtime.go.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/schedule"
	"github.com/mqd/mqd/timer"
)

// Broker is a running broker.
type Broker struct {
	cfg       Config
	log       *slog.Logger
	store     *engine.Store
	server    *remoting.Server
	namesrv   *remoting.Pool
	storeHost netip.AddrPort
	deferred  atomic.Int64 // sends answered from the flush loop, not yet answered (senddeferred.go)

	topics    *TopicManager
	groups    *GroupManager
	offsets   *OffsetManager
	consumers *ConsumerManager
	producers *ProducerManager
	locks     *LockManager
	pulls     *PullHold
	reg       registration // register.go: serialises registrations, stops them before unregistering
	limits    limitLog     // limits.go: rate-bounded log of refused input
	txn       *txnService  // txn.go: transaction decisions

	sched   *schedule.Service // delay.go: delivers delay-level messages
	timers  *timer.Service    // timer.go: delivers timer messages
	aclGate *acl.Gate         // acl.go: nil without aclEnable
	stats   *Stats            // admin_stats.go: traffic counters
	ha      haState           // ha.go: replication server or client
	live    liveConfig        // admin_config.go: UPDATE_BROKER_CONFIG's live keys

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New opens the store and loads the broker's configuration files; Start
// begins serving.
func New(cfg Config) (*Broker, error) {
	cfg.defaults()
	if err := applyOverrides(&cfg); err != nil { // admin_config.go: UPDATE_BROKER_CONFIG keys
		return nil, err
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), txn: newTxnService()}
	b.stats = newStats(time.Now())
	b.live.txnReset = make(chan time.Duration, 1)
	if err := b.cfg.checkHA(); err != nil { // ha.go
		return nil, err
	}
	configDir := filepath.Join(cfg.Store.Dir, "config")
	var err error
	if b.topics, err = newTopicManager(configDir, &b.cfg); err != nil {
		return nil, err
	}
	if b.groups, err = newGroupManager(configDir, &b.cfg); err != nil {
		return nil, err
	}
	if err := b.initClients(configDir); err != nil { // clients.go, offsets.go, locks.go, pullhold.go
		return nil, err
	}
	storeCfg := cfg.Store
	storeCfg.Logger = cfg.Logger
	storeCfg.Dispatchers = append(storeCfg.Dispatchers, b.pulls) // wakes long polls
	if err := b.initDelay(&storeCfg); err != nil {               // delay.go
		return nil, err
	}
	opened := time.Now()
	if b.store, err = engine.Open(storeCfg); err != nil {
		return nil, err
	}
	// bench/recovery.sh reads this line (issue 14: recovery after kill -9)
	b.log.Info("store opened", "took", time.Since(opened).Round(time.Millisecond), "dir", storeCfg.Dir)
	if err := b.attachDelay(); err != nil {
		b.store.Close()
		return nil, err
	}
	if err := b.initHA(); err != nil { // ha.go
		b.store.Close()
		return nil, err
	}
	return b, nil
}

// Start listens, registers with the nameservers and starts the loops.
func (b *Broker) Start() error {
	ln := b.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(b.cfg.ListenPort))); err != nil {
			return fmt.Errorf("broker: listen: %w", err)
		}
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ip, err := netip.ParseAddr(b.cfg.BrokerIP1)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("broker: brokerIP1 %q must be an IPv4 address (clients parse 32-character message ids)", b.cfg.BrokerIP1)
	}
	b.storeHost = netip.AddrPortFrom(ip, uint16(port))
	b.server = remoting.NewServer(b.serverConfig(ln)) // transport.go
	b.namesrv = remoting.NewPool(remoting.ClientConfig{Logger: b.log})
	b.registerHandlers()
	if err := b.startACL(); err != nil { // acl.go
		return err
	}
	// Prepare the commit log's next segment before taking traffic (issue
	// 14: it cost the first seconds' tail); a failure surfaces again at
	// the roll, so the broker serves anyway.
	if err := b.store.AwaitNextSegment(); err != nil {
		b.log.Warn("next commit-log segment not prepared before start", "err", err)
	}
	// Replication before traffic: a SYNC_MASTER's replica wait (and an
	// all-in-sync master's minInSyncReplicas check) is installed by
	// startHA, and a send served before it would be acknowledged by the
	// master alone.
	if err := b.startHA(); err != nil { // ha.go
		return err
	}
	if err := b.server.Start(); err != nil {
		b.stopHA()
		return err
	}
	if testHookServing != nil {
		testHookServing(b)
	}
	b.topics.OnChange(func() { b.registerAll() })
	b.startLoops()
	b.log.Info("broker started", "addr", b.Addr(), "cluster", b.cfg.ClusterName, "name", b.cfg.BrokerName,
		"flush", b.cfg.Store.FlushDiskType, "namesrv", b.cfg.NamesrvAddrs, "role", b.cfg.HA.Role, "ha", b.HAAddr())
	return nil
}

// testHookServing, set by tests only, runs as soon as the remoting server
// serves (before Start returns).
var testHookServing func(*Broker)

// registerHandlers installs every request family's handlers.
func (b *Broker) registerHandlers() {
	b.registerSend()         // send.go
	b.registerSendBack()     // sendback.go
	b.registerQuery()        // query.go
	b.registerAdmin()        // admin.go
	b.registerClients()      // clients.go
	b.registerPull()         // pull.go
	b.registerOffsets()      // offsets.go
	b.registerLocks()        // locks.go
	b.registerFilter()       // filter.go
	b.registerDelay()        // delay.go
	b.registerTransactions() // txn.go
	b.registerOps()          // admin_ops.go
	b.registerReply()        // reply.go
}

func (b *Broker) startLoops() {
	b.goLoop(b.registerLoop)     // register.go
	b.goLoop(b.housekeepingLoop) // clients.go
	b.goLoop(b.offsetLoop)       // offsets.go
	b.goLoop(b.pulls.run)        // pullhold.go
	b.startDelay()               // delay.go
	b.goLoop(b.txnCheckLoop)     // txncheck.go
	b.goLoop(b.statsLoop)        // admin_stats.go
}

func (b *Broker) goLoop(f func(stop <-chan struct{})) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f(b.stop)
	}()
}

// Addr is the address clients reach the broker at (brokerIP1:port).
func (b *Broker) Addr() string { return b.storeHost.String() }

// Store exposes the engine (tests, admin tools).
func (b *Broker) Store() *engine.Store { return b.store }

// Shutdown stops accepting requests, finishes in-flight ones, unregisters
// from the nameservers, persists offsets, then flushes and closes the store
// (which checkpoints and removes the abort file).
func (b *Broker) Shutdown(ctx context.Context) error {
	var errs []error
	b.once.Do(func() {
		if b.server != nil {
			errs = append(errs, b.server.Shutdown(ctx))
			b.unregisterAll()
			close(b.stop)
			b.wg.Wait()
			b.namesrv.Close()
		}
		// Persist as late as possible, after the loops have stopped. If the
		// server's shutdown timed out, a handler still running could commit
		// after this point; that commit is lost, as it would be on a crash.
		b.stopHA() // ha.go
		errs = append(errs, b.offsets.persist())
		errs = append(errs, b.groups.persistDirty())
		errs = append(errs, b.groups.closeJournal(), b.topics.closeJournal()) // journal.go
		storeErr := b.store.Close()
		errs = append(errs, storeErr, b.closeDelay(storeErr)) // delay.go
	})
	return errors.Join(errs...)
}
