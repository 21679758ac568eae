package broker

// Registration with the nameservers (Java's RegisterBrokerBody and BrokerHousekeepingService): REGISTER_BROKER
// to every nameserver in parallel at start, every RegisterNameServerPeriod
// and after every topic change; UNREGISTER_BROKER on shutdown.
//
// Registrations never overlap: a registerAll call made while one runs only
// asks the running one for another round (so a burst of auto-created
// topics costs one or two registrations, and a stale snapshot never
// overtakes a newer one). unregisterAll first stops registration for good
// (cancelling a round in flight), so no REGISTER_BROKER can follow the
// UNREGISTER_BROKER. Handlers never wait for any of this: topic changes
// reach registerAll on the change hook's own goroutine.

import (
	"context"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

const (
	registerTimeout   = 6 * time.Second // registerBrokerTimeoutMills
	unregisterTimeout = 3 * time.Second // whole unregistration, all nameservers
)

// registration is the state behind registerAll/unregisterAll (the Broker's
// reg field).
type registration struct {
	// lastGood is the last body a nameserver accepted (registerOnce's
	// goroutines only run one round at a time).
	lastGood atomic.Pointer[registerBody]

	mu      sync.Mutex
	running bool
	again   bool
	closed  bool
	idle    chan struct{} // closed when the running round ends
	ctx     context.Context
	cancel  context.CancelFunc
}

// registerLoop registers at start and then every RegisterNameServerPeriod.
func (b *Broker) registerLoop(stop <-chan struct{}) {
	b.registerAll()
	period := b.cfg.RegisterNameServerPeriod
	if period <= 0 {
		period = 30 * time.Second
	}
	tickLoop(stop, period, b.registerAll) // delay.go
}

// registerAll registers with every nameserver, or makes the registration
// already running do one more round.
func (b *Broker) registerAll() {
	ctx, ok := b.reg.begin()
	if !ok {
		return
	}
	for {
		b.registerOnce(ctx)
		if !b.reg.next() {
			return
		}
	}
}

// begin reports whether the caller must run the registration rounds.
func (r *registration) begin() (context.Context, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false
	}
	if r.running {
		r.again = true
		return nil, false
	}
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	r.running, r.idle = true, make(chan struct{})
	return r.ctx, true
}

// next reports whether another round was asked for; if not, the runner is
// done.
func (r *registration) next() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.again && !r.closed {
		r.again = false
		return true
	}
	r.running = false
	close(r.idle)
	return false
}

// stop ends registration for good and waits for a running round, which it
// cancels.
func (r *registration) stop() {
	r.mu.Lock()
	r.closed = true
	if r.cancel != nil {
		r.cancel()
	}
	idle, running := r.idle, r.running
	r.mu.Unlock()
	if running {
		<-idle
	}
}

// registerOnce sends one REGISTER_BROKER to every nameserver in parallel.
func (b *Broker) registerOnce(ctx context.Context) {
	if len(b.cfg.NamesrvAddrs) == 0 || b.routesFenced() {
		return
	}
	body, err := b.registerBody()
	if err != nil {
		// Never silently leave the routes: keep the last good topic
		// table registered (it keeps the broker live) and say so.
		b.log.Error("register broker: the topic table cannot be registered; re-registering the last good one", "err", err)
		if body = b.reg.lastGood.Load(); body == nil {
			return
		}
	}
	var wg sync.WaitGroup
	for _, addr := range b.cfg.NamesrvAddrs {
		wg.Go(func() { b.registerTo(ctx, addr, body) })
	}
	wg.Wait()
}

// registerTo registers body with one nameserver. When the nameserver
// refuses a new body, the last good one is sent at once so the broker
// stays in the routes with its previous topics; the new one is tried
// again next round.
func (b *Broker) registerTo(ctx context.Context, addr string, body *registerBody) {
	err := b.invokeRegister(ctx, addr, body)
	if err == nil {
		b.reg.lastGood.Store(body)
		b.log.Debug("registered with nameserver", "namesrv", addr, "bytes", len(body.data), "compressed", body.compressed)
		return
	}
	b.log.Error("register broker refused or failed", "namesrv", addr, "err", err, "bytes", len(body.data),
		"compressed", body.compressed)
	if last := b.reg.lastGood.Load(); last != nil && last != body {
		if err := b.invokeRegister(ctx, addr, last); err != nil {
			b.log.Error("register broker: last good topic table refused too", "namesrv", addr, "err", err)
		}
	}
}

func (b *Broker) invokeRegister(ctx context.Context, addr string, body *registerBody) error {
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	h := b.registerHeader(body)
	req := protocol.NewRequest(protocol.RegisterBroker, &h)
	req.Body = body.data
	resp, err := b.namesrv.Invoke(ctx, addr, b.signOuter(req)) // acl.go
	if err == nil && resp.Code != protocol.ResponseSuccess {
		err = fmt.Errorf("code %s: %s", protocol.ResponseCodeName(resp.Code), resp.Remark)
	}
	if err == nil && strings.HasPrefix(resp.Remark, protocol.RemarkStaleRegistration) {
		// Not an error of the body: the nameserver routes another master
		// of a newer epoch (controller mode) and keeps doing so.
		b.log.Warn("register broker: the nameserver ignored this registration: another broker holds this brokerId with a newer master epoch",
			"namesrv", addr, "broker_id", b.cfg.BrokerID, "state_version", body.stateVersion, "remark", resp.Remark)
		return nil
	}
	if err == nil {
		b.learnFromRegister(resp) // ha.go: a slave learns its master
	}
	return err
}

func (b *Broker) registerHeader(body *registerBody) protocol.RegisterBrokerRequestHeader {
	return protocol.RegisterBrokerRequestHeader{
		BrokerName:   b.cfg.BrokerName,
		BrokerAddr:   b.Addr(),
		ClusterName:  b.cfg.ClusterName,
		HaServerAddr: b.HAAddr(), // ha.go
		BrokerID:     b.cfg.BrokerID,
		Compressed:   body.compressed,
		BodyCrc32:    int32(crc32.ChecksumIEEE(body.data) & 0x7FFFFFFF),
	}
}

// registerBody is an encoded REGISTER_BROKER body.
type registerBody struct {
	data         []byte
	compressed   bool
	stateVersion int64 // for logs
}

const (
	// registerCompressAbove is the topic count above which the body is
	// sent compressed even without compressedRegister (~1 MB of JSON);
	// 100k topics then take ~300 KB instead of ~24 MB, which would exceed
	// a nameserver's 16 MiB frame cap.
	registerCompressAbove = 4096
	// registerMaxBody keeps the request within a nameserver's default
	// frame cap, with room for the header.
	registerMaxBody = protocol.DefaultMaxFrame - 64<<10
)

// registerBody encodes the topic table: compressed as Java's
// RegisterBrokerBody.encode(true) does when compressedRegister is set or
// the table is large; an error when even that exceeds a frame.
func (b *Broker) registerBody() (*registerBody, error) {
	rb := b.registerTable()
	sv := rb.TopicConfigSerializeWrapper.DataVersion.StateVersion
	if !b.cfg.CompressedRegister && len(rb.TopicConfigSerializeWrapper.TopicConfigTable) <= registerCompressAbove {
		data, err := rb.Encode()
		return &registerBody{data: data, stateVersion: sv}, err
	}
	z, err := rb.EncodeCompressed()
	if err != nil {
		return nil, err
	}
	if len(z) > registerMaxBody {
		return nil, fmt.Errorf("compressed register body of %d bytes (%d topics) exceeds %d", len(z),
			len(rb.TopicConfigSerializeWrapper.TopicConfigTable), registerMaxBody)
	}
	return &registerBody{data: z, compressed: true, stateVersion: sv}, nil
}

// stateVersion is the DataVersion.stateVersion this broker registers: in
// controller mode a master's epoch (Java 5 ReplicasManager sets it on a
// role change), so a nameserver keeps routing the newest master when an
// older one, cut off from the controllers, still registers as brokerId 0;
// otherwise 0, which a 4.x nameserver never sees (protocol.DataVersion).
func (b *Broker) stateVersion() int64 {
	if !b.cfg.Controller.Enable || b.isSlave() {
		return 0
	}
	return int64(b.cfg.HA.Epoch)
}

// registerTable is the topic table; when the broker is not both readable
// and writable every topic is registered with the broker's permission
// instead of its own, so clients avoid the broker (Java's SendMessageProcessor).
func (b *Broker) registerTable() *protocol.RegisterBrokerBody {
	snap := b.topics.Snapshot() // a copy: safe to rewrite
	if perm := b.conf().BrokerPermission; perm&protocol.PermRead == 0 || perm&protocol.PermWrite == 0 {
		for name, tc := range snap.TopicConfigTable {
			tc.Perm = perm
			snap.TopicConfigTable[name] = tc
		}
	}
	snap.DataVersion.StateVersion = b.stateVersion()
	return &protocol.RegisterBrokerBody{TopicConfigSerializeWrapper: snap}
}

// unregisterAll stops registration, then sends UNREGISTER_BROKER to every
// nameserver in parallel, best effort, within unregisterTimeout.
func (b *Broker) unregisterAll() {
	b.reg.stop()
	b.sendUnregister()
}

// sendUnregister sends UNREGISTER_BROKER to every nameserver in parallel,
// best effort, within unregisterTimeout.
func (b *Broker) sendUnregister() {
	if len(b.cfg.NamesrvAddrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
	defer cancel()
	h := protocol.UnregisterBrokerRequestHeader{
		BrokerName: b.cfg.BrokerName, BrokerAddr: b.Addr(), ClusterName: b.cfg.ClusterName, BrokerID: b.cfg.BrokerID,
	}
	var wg sync.WaitGroup
	for _, addr := range b.cfg.NamesrvAddrs {
		wg.Go(func() {
			resp, err := b.namesrv.Invoke(ctx, addr, b.signOuter(protocol.NewRequest(protocol.UnregisterBroker, &h)))
			if err == nil && resp.Code != protocol.ResponseSuccess {
				err = fmt.Errorf("code %s: %s", protocol.ResponseCodeName(resp.Code), resp.Remark)
			}
			if err != nil {
				b.log.Info("unregister broker failed", "namesrv", addr, "err", err)
			}
		})
	}
	wg.Wait()
}
