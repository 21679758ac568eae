package broker

// Registration with the nameservers (facts §17.1, §17.2): REGISTER_BROKER
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
	"net/netip"
	"sync"
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
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			b.registerAll()
		}
	}
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
	if len(b.cfg.NamesrvAddrs) == 0 {
		return
	}
	body, err := b.registerBody()
	if err != nil {
		b.log.Error("register broker: encode body", "err", err)
		return
	}
	h := b.registerHeader(body)
	var wg sync.WaitGroup
	for _, addr := range b.cfg.NamesrvAddrs {
		wg.Go(func() { b.registerTo(ctx, addr, &h, body) })
	}
	wg.Wait()
}

func (b *Broker) registerTo(ctx context.Context, addr string, h *protocol.RegisterBrokerRequestHeader, body []byte) {
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	req := protocol.NewRequest(protocol.RegisterBroker, h)
	req.Body = body
	resp, err := b.namesrv.Invoke(ctx, addr, req)
	switch {
	case err != nil:
		b.log.Warn("register broker failed", "namesrv", addr, "err", err)
	case resp.Code != protocol.ResponseSuccess:
		b.log.Warn("register broker refused", "namesrv", addr, "code", protocol.ResponseCodeName(resp.Code), "remark", resp.Remark)
	default:
		b.log.Debug("registered with nameserver", "namesrv", addr)
	}
}

func (b *Broker) registerHeader(body []byte) protocol.RegisterBrokerRequestHeader {
	ha := netip.AddrPortFrom(b.storeHost.Addr(), b.storeHost.Port()+1) // haListenPort = listenPort + 1
	return protocol.RegisterBrokerRequestHeader{
		BrokerName:   b.cfg.BrokerName,
		BrokerAddr:   b.Addr(),
		ClusterName:  b.cfg.ClusterName,
		HaServerAddr: ha.String(),
		BrokerID:     b.cfg.BrokerID,
		Compressed:   false,
		BodyCrc32:    int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF),
	}
}

// registerBody is the topic table; when the broker is not both readable
// and writable every topic is registered with the broker's permission
// instead of its own, so clients avoid the broker (facts §2.2 note).
func (b *Broker) registerBody() ([]byte, error) {
	snap := b.topics.Snapshot() // a copy: safe to rewrite
	if perm := b.cfg.BrokerPermission; perm&protocol.PermRead == 0 || perm&protocol.PermWrite == 0 {
		for name, tc := range snap.TopicConfigTable {
			tc.Perm = perm
			snap.TopicConfigTable[name] = tc
		}
	}
	body := protocol.RegisterBrokerBody{TopicConfigSerializeWrapper: snap}
	return body.Encode()
}

// unregisterAll stops registration, then sends UNREGISTER_BROKER to every
// nameserver in parallel, best effort, within unregisterTimeout.
func (b *Broker) unregisterAll() {
	b.reg.stop()
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
			resp, err := b.namesrv.Invoke(ctx, addr, protocol.NewRequest(protocol.UnregisterBroker, &h))
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
