package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mqd/mqd/controller/agent"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/failover"
)

// errInterrupted: a signal arrived before the controller named a role.
var errInterrupted = errors.New("interrupted before the controller named a role")

// startControlled runs the broker in controller mode
// (enableControllerMode=true): the agent registers with the controllers,
// and the broker starts in the role the controller decides, then follows
// its decisions (failover.Node). It returns the running node and a stop
// function that ends the agent (call it before shutting the node down).
func startControlled(cfg broker.Config, log *slog.Logger, sig <-chan os.Signal) (*failover.Node, func(), error) {
	ip := cfg.BrokerIP1
	if ip == "" {
		ip = broker.DefaultBrokerIP()
	}
	haPort := cfg.HA.ListenPort
	if haPort == 0 {
		haPort = cfg.ListenPort + 1
	}
	masterRole := cfg.HA.Role
	if masterRole != broker.RoleAsyncMaster {
		masterRole = broker.RoleSyncMaster // the controller-mode default, as in Java
	}
	haAddr := net.JoinHostPort(ip, strconv.Itoa(haPort))
	if cfg.HA.AdvertisedAddr != "" {
		haAddr = cfg.HA.AdvertisedAddr // haAdvertisedAddr: NAT, a proxy
	}
	cc := cfg.Controller
	r := &controlled{opt: failover.Options{Broker: cfg, MasterRole: masterRole, AllAck: cc.AllAck, MinInSync: cc.MinInSync},
		started: make(chan struct{})}
	a, err := agent.New(agentConfig(cfg, masterRole, net.JoinHostPort(ip, strconv.Itoa(cfg.ListenPort)), haAddr, log), r)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	stop := func() { cancel(); <-done }
	log.Info("controller mode: waiting for the controller to name a role", "controllers", cc.Addrs)
	select {
	case <-r.started:
		return r.node(), stop, nil
	case <-sig:
		stop()
		return nil, nil, errInterrupted
	}
}

// agentConfig is the agent's configuration. All-in-sync acknowledgement
// (agent.Config.AllAck, which turns the lease off by default) applies
// only when the master runs as SYNC_MASTER: an ASYNC_MASTER acknowledges
// without any slave, so only the lease keeps a master cut from the
// controllers from acknowledging next to its replacement.
func agentConfig(cfg broker.Config, masterRole, addr, haAddr string, log *slog.Logger) agent.Config {
	cc := cfg.Controller
	return agent.Config{Cluster: cfg.ClusterName, BrokerName: cfg.BrokerName, BrokerAddr: addr, HAAddr: haAddr,
		Controllers: cc.Addrs, Interval: cc.HeartbeatInterval, Timeout: cc.HeartbeatTimeout, Lease: cc.Lease,
		AllAck: cc.AllAck && masterRole == broker.RoleSyncMaster, InSyncLag: cc.InSyncLag, Priority: cc.Priority, Logger: log}
}

// controlled is the broker as the agent drives it: the failover.Node is
// started on the first role and switched on the next ones.
type controlled struct {
	opt     failover.Options // opt.InSync: the last SyncStateSet before the node started
	mu      sync.Mutex
	n       *failover.Node
	started chan struct{}
}

func (c *controlled) node() *failover.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *controlled) SwitchRole(r agent.Role) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n != nil {
		return c.n.SwitchRole(failover.Role(r))
	}
	n, err := failover.Start(c.opt, failover.Role(r)) // with the in-sync set given before
	if err != nil {
		return err
	}
	c.n = n
	close(c.started)
	return nil
}

// Lease forwards the agent's lease deadline (failover.Node.Lease).
func (c *controlled) Lease(until time.Time) {
	if n := c.node(); n != nil {
		n.Lease(until)
	}
}

// SyncStateSet forwards whose acknowledgement a send needs
// (failover.Node.SyncStateSet); before the node runs it is kept for its
// start, pending slaves united with the committed ones (a master at the
// first role of its run waits for every replica until its first seal,
// controller/agent/isr.go).
func (c *controlled) SyncStateSet(committed, pending []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.opt.InSync = append(slices.Clone(committed), pending...)
		return
	}
	c.n.SyncStateSet(committed, pending)
}

func (c *controlled) Fence(on bool) {
	if n := c.node(); n != nil {
		n.Fence(on)
	}
}

// Status reports the running broker's last epoch and log end and, on a
// master, its slaves' HA acknowledgements by controller id; before the
// first role the broker is not running and reports zeros.
func (c *controlled) Status() agent.Status {
	n := c.node()
	if n == nil {
		return agent.Status{}
	}
	st := n.Status()
	out := agent.Status{Epoch: st.Epoch.Epoch, MaxOffset: st.LogEnd, Confirmed: st.HA.Confirmed}
	if st.Role.Master && st.Running {
		out.Acked = map[int64]int64{}
		for _, r := range st.HA.Replicas {
			if r.BrokerID > 0 { // 0: a slave too old to say who it is
				out.Acked[r.BrokerID] = max(out.Acked[r.BrokerID], r.Acked) // a reconnecting slave may have two links
			}
		}
	}
	return out
}
