// Package agent is the broker side of controller mode (Java's
// ReplicasManager, facts-2 §21.3): it registers the broker with the
// controller group, heartbeats every Interval, reports the master's
// in-sync slaves, applies the role the controller decided through the
// broker's role-switch API (Replica), and tells the master whose
// acknowledgement a SYNC_MASTER send needs.
//
// With AllAck (allAckInSyncStateSet, the default of cmd/mqd) a master
// acknowledges a send only once every member of its in-sync set has it,
// and counts proposed changes of the set as described in isr.go; that
// needs no lease (controller/doc.go, "Acknowledgement"): a master that
// loses the controller quorum goes on acknowledging as long as its whole
// in-sync set acknowledges, and stops the moment it learns of a newer
// epoch or another master.
//
// Lease (controllerLeaseMills; on by default only without AllAck, where a
// master acknowledges with one slave's ack, 4.x): the lease runs from the
// moment the agent SENT the last heartbeat the leader answered (confirming
// this broker as master at its epoch). The leader controller elects a
// replacement only Timeout after it RECEIVED the master's last heartbeat,
// which is later; Lease < Timeout, so the old master has stopped
// acknowledging writes before a new one can be elected (clock rates
// assumed equal within the margin Timeout − Lease).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Role is what the controller decided for this broker.
type Role struct {
	Master       bool
	Epoch        int32  // the master epoch
	BrokerID     int64  // the id to register with nameservers: 0 for the master, the controller's id (≥ 1) for a slave
	MasterAddr   string // slave: the master's remoting address
	MasterHAAddr string // slave: the master's HA address
}

// Status is the broker's replication state the agent reports.
type Status struct {
	Epoch     int32 // last epoch in the broker's epoch file
	MaxOffset int64 // commit-log max offset
	// Acked (master only) maps the controller id of every slave connected
	// to this master's HA server to the offset it last acknowledged; nil
	// when the broker cannot tell (the slaves' heartbeat offsets are used).
	Acked map[int64]int64
	// Confirmed (master, AllAck) is the highest send end acknowledged to a
	// client; a slave joins the in-sync set only with Acked at least this.
	Confirmed int64
}

// Replica is the broker as the agent drives it (implemented by the
// broker's role-switch API).
type Replica interface {
	// SwitchRole makes the broker master at an epoch or a slave of a
	// master; it is called again only when the decision changes.
	SwitchRole(Role) error
	// Fence(true) stops acknowledging SYNC_MASTER writes and stops
	// advertising the broker as brokerId 0 to the nameservers; Fence(false)
	// lifts it.
	Fence(bool)
	// Lease bounds, at the acknowledgement itself, when a master may
	// acknowledge: Fence comes from a periodic check and can be late
	// (a stalled process, a slow heartbeat), the lease deadline cannot.
	// Called only when Config.Lease is on.
	Lease(until time.Time)
	// SyncStateSet (AllAck) names the slaves whose acknowledgement a
	// SYNC_MASTER send needs: the committed in-sync set and the slaves of
	// proposals whose outcome is unknown or being admitted (isr.go), both
	// without this broker. It is called before SwitchRole makes the broker
	// master, and it must hold across role switches.
	SyncStateSet(committed, pending []int64)
	Status() Status
}

// Config configures an Agent. Zero durations take the defaults.
type Config struct {
	Cluster, BrokerName string
	BrokerAddr, HAAddr  string   // this broker's remoting and HA addresses
	Controllers         []string // controllerAddr, split
	Interval            time.Duration
	Timeout             time.Duration // controllerHeartBeatTimeoutMills, default 6 s
	// AllAck is allAckInSyncStateSet: the master's sends wait for the
	// whole in-sync set (isr.go).
	AllAck bool
	// Lease is controllerLeaseMills: 0 with AllAck means none; without
	// AllAck the default is Timeout − 2 × Interval (at least Timeout / 2).
	Lease    time.Duration
	Priority int32 // brokerElectionPriority
	// InSyncLag is haMaxTimeSlaveNotCatchup: a slave is in sync while
	// its reported offset, at the master's epoch, is at least where the
	// master's log ended InSyncLag ago (default 15 s).
	InSyncLag time.Duration
	Logger    *slog.Logger
}

// Defaults fills zero fields and checks the timings.
func (c *Config) Defaults() error {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 6 * time.Second
	}
	if c.Lease < 0 {
		c.Lease = 0
	}
	if c.Lease == 0 && !c.AllAck {
		c.Lease = max(c.Timeout-2*c.Interval, c.Timeout/2)
	}
	if c.InSyncLag <= 0 {
		c.InSyncLag = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case len(c.Controllers) == 0:
		return errors.New("agent: controllerAddr is empty")
	case c.Lease >= c.Timeout:
		return fmt.Errorf("agent: lease %v must be shorter than the heartbeat timeout %v", c.Lease, c.Timeout)
	case c.Lease > 0 && c.Interval >= c.Lease:
		return fmt.Errorf("agent: heartbeat interval %v must be shorter than the lease %v", c.Interval, c.Lease)
	}
	return nil
}

// Agent runs the broker's side of controller mode.
type Agent struct {
	cfg  Config
	r    Replica
	pool *remoting.Pool
	log  *slog.Logger

	leader string // controller to ask next
	next   int    // round-robin index when no leader is known
	id     int64  // controller-assigned id, 0 until registered
	info   protocol.ReplicaSetInfo

	role      *Role     // last role applied, nil before the first
	leaseFrom time.Time // send time of the last answer confirming us as master
	fenced    bool
	fenceSet  bool // the broker's fence is known to equal fenced

	history []sample  // master: own log end over the last InSyncLag
	props   proposals // master, AllAck: in-sync changes not resolved (isr.go)
	seq     int64     // AllAck: the last proposal's number (isr.go)
	// prevConfirmed is Status.Confirmed at the previous report (isr.go).
	prevConfirmed int64
	applied       bool // a role was applied since the process started
	// alterFn replaces the controller for proposals in tests (isr.go).
	alterFn func(context.Context, protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error)
}

// sample is the master's log end at a time.
type sample struct {
	at  time.Time
	end int64
}

// New returns an agent; Run drives it.
func New(cfg Config, r Replica) (*Agent, error) {
	if err := cfg.Defaults(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, r: r, log: cfg.Logger, pool: remoting.NewPool(remoting.ClientConfig{Logger: cfg.Logger})}, nil
}

// Run fences the broker (it acknowledges nothing until the controller
// names it master), then heartbeats until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	defer a.pool.Close()
	a.setFenced(true)
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		a.tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) tick(ctx context.Context, sent time.Time) {
	if a.id == 0 {
		a.register(ctx, sent)
	} else {
		a.heartbeat(ctx, sent)
	}
	now := time.Now()
	a.checkLease(now)
	switch {
	case a.role == nil || !a.role.Master || a.fenced:
	case a.cfg.AllAck:
		a.reportAllAck(ctx, now) // isr.go
	default:
		a.reportInSync(ctx, now)
	}
}

func (a *Agent) body() protocol.BrokerHeartbeatBody {
	st := a.r.Status()
	return protocol.BrokerHeartbeatBody{Cluster: a.cfg.Cluster, BrokerName: a.cfg.BrokerName, BrokerAddr: a.cfg.BrokerAddr,
		HAAddr: a.cfg.HAAddr, BrokerID: a.id, Epoch: st.Epoch, MaxOffset: st.MaxOffset,
		TimeoutMs: a.cfg.Timeout.Milliseconds(), Priority: a.cfg.Priority}
}

func (a *Agent) register(ctx context.Context, sent time.Time) {
	info, ok := a.invoke(ctx, protocol.RequestControllerRegisterBroker, a.body())
	if !ok {
		return
	}
	a.id = info.BrokerID
	a.log.Info("agent: registered with the controller", "brokerName", a.cfg.BrokerName, "id", a.id)
	a.apply(info, sent)
}

func (a *Agent) heartbeat(ctx context.Context, sent time.Time) {
	if info, ok := a.invoke(ctx, protocol.RequestBrokerHeartbeat, a.body()); ok {
		a.apply(info, sent)
	}
}

// apply follows the controller's committed decision.
func (a *Agent) apply(info protocol.ReplicaSetInfo, sent time.Time) {
	if prev := a.info; info.MasterEpoch == prev.MasterEpoch && info.SyncStateSetEpoch < prev.SyncStateSetEpoch {
		// an answer older than one already applied: keep the newer set
		info.SyncStateSet, info.SyncStateSetEpoch = prev.SyncStateSet, prev.SyncStateSetEpoch
	}
	a.info = info
	if info.MasterID == 0 {
		a.setFenced(true) // no master: nobody acknowledges
		return
	}
	want := Role{Epoch: info.MasterEpoch, BrokerID: a.id}
	if info.MasterID == a.id {
		want.Master, want.BrokerID = true, 0
	} else {
		want.MasterAddr, want.MasterHAAddr = info.MasterAddr, info.MasterHAAddr
	}
	if a.role == nil || *a.role != want {
		a.setFenced(true)
		a.role, a.history, a.props = nil, nil, proposals{}
		if want.Master && a.cfg.AllAck {
			if !a.applied {
				a.props = a.unsealed(info) // an earlier run may have proposed at this epoch (isr.go)
			}
			a.installSync() // before the switch: the new master waits for its whole set at once
		}
		err := a.r.SwitchRole(want)
		a.fenceSet = false // a switch may lift the fence: state it again below
		if err != nil {
			a.log.Error("agent: role switch failed", "role", want, "err", err)
			a.setFenced(true)
			return
		}
		a.applied = true
		a.log.Info("agent: role applied", "master", want.Master, "epoch", want.Epoch, "brokerId", want.BrokerID, "masterAddr", want.MasterAddr)
		a.role = &want
	}
	if !want.Master {
		a.setFenced(true) // a slave acknowledges nothing anyway
		return
	}
	if a.cfg.AllAck {
		a.resolve() // isr.go
	}
	if a.cfg.Lease > 0 {
		a.leaseFrom = sent
		a.r.Lease(sent.Add(a.cfg.Lease)) // enforced where slave reports release sends
	}
	a.setFenced(false)
	a.checkLease(time.Now()) // the switch may have outlasted the lease
}

// checkLease fences a master whose lease ran out.
func (a *Agent) checkLease(now time.Time) {
	if a.cfg.Lease <= 0 || a.role == nil || !a.role.Master || a.fenced {
		return
	}
	if now.Sub(a.leaseFrom) > a.cfg.Lease {
		a.log.Warn("agent: no answer from the controller quorum within the lease: fencing", "lease", a.cfg.Lease)
		a.setFenced(true)
	}
}

func (a *Agent) setFenced(f bool) {
	if a.fenceSet && a.fenced == f {
		return
	}
	a.fenced, a.fenceSet = f, true
	a.r.Fence(f)
}

// inSync returns the master's in-sync set: itself and every alive slave
// that has caught up with where this master's log ended InSyncLag ago
// (Java's haMaxTimeSlaveNotCatchup rule). Caught up means acknowledged
// over HA when the broker reports acknowledgements (Status.Acked: only a
// slave connected to this master counts), else the slave's heartbeat
// offset at this master's epoch.
func (a *Agent) inSync(now time.Time) []int64 {
	st := a.r.Status()
	a.history = append(a.history, sample{at: now, end: st.MaxOffset})
	cut := 0
	for cut+1 < len(a.history) && now.Sub(a.history[cut+1].at) >= a.cfg.InSyncLag {
		cut++ // history[cut] is the newest sample at least InSyncLag old
	}
	a.history = a.history[cut:]
	target := a.history[0].end
	set := []int64{a.id}
	for _, r := range a.info.Replicas {
		// With AllAck and HA acknowledgements known, an in-sync slave
		// acknowledging over HA stays whatever the controller's table says
		// (a new leader has not heard from everyone yet): only HA drops
		// it. A slave joining must be alive for the controller too.
		keep := a.cfg.AllAck && st.Acked != nil && slices.Contains(a.info.SyncStateSet, r.BrokerID)
		if r.BrokerID == a.id || !r.Alive && !keep {
			continue
		}
		off, ok := r.MaxOffset, r.Epoch == a.info.MasterEpoch
		if st.Acked != nil {
			off, ok = st.Acked[r.BrokerID]
		}
		if ok && off >= target {
			set = append(set, r.BrokerID)
		}
	}
	slices.Sort(set)
	return set
}

// reportInSync sends CONTROLLER_ALTER_SYNC_STATE_SET when the master's
// view of its in-sync slaves differs from the controller's.
func (a *Agent) reportInSync(ctx context.Context, now time.Time) {
	set := a.inSync(now)
	if slices.Equal(set, a.info.SyncStateSet) {
		return
	}
	body := protocol.AlterSyncStateSetBody{Cluster: a.cfg.Cluster, BrokerName: a.cfg.BrokerName, MasterID: a.id,
		MasterEpoch: a.info.MasterEpoch, SyncStateSetEpoch: a.info.SyncStateSetEpoch, SyncStateSet: set}
	if info, ok := a.invoke(ctx, protocol.RequestControllerAlterSyncState, body); ok {
		a.info = info
		a.log.Info("agent: in-sync set changed", "set", info.SyncStateSet, "epoch", info.SyncStateSetEpoch)
	}
}

// invoke sends one request to the leader as far as known, else to the
// configured controllers in turn, following CONTROLLER_NOT_LEADER hints
// that name one of them (a hint outside controllerAddr, e.g. behind a
// proxy or NAT, is not followed: the next configured address is tried).
// All tries share one Interval. It answers ok with the decoded replica
// set, or false (logged) on any failure.
func (a *Agent) invoke(ctx context.Context, code int16, body any) (protocol.ReplicaSetInfo, bool) {
	info, refused, err := a.call(ctx, code, body)
	if refused != nil {
		a.log.Warn("agent: controller refused", "code", refused.Code, "remark", refused.Remark)
	}
	return info, err == nil && refused == nil
}

// call is invoke with the outcome told apart: a non-nil refused is the
// controller's answer with a code other than success (the request reached
// a leader); a non-nil err means no leader answered (unreachable, no
// leader, a bad answer), so whether the request took effect is unknown.
func (a *Agent) call(ctx context.Context, code int16, body any) (protocol.ReplicaSetInfo, *protocol.Command, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Interval)
	defer cancel()
	err := errors.New("agent: no controller answered")
	for try := 0; try <= len(a.cfg.Controllers) && ctx.Err() == nil; try++ {
		addr := a.leader
		if addr == "" {
			addr = a.cfg.Controllers[a.next%len(a.cfg.Controllers)]
			a.next++
		}
		req := protocol.NewRequest(code, nil)
		req.Body = protocol.EncodeControllerJSON(body)
		resp, ierr := a.pool.Invoke(ctx, addr, req)
		switch {
		case ierr != nil:
			a.leader, err = "", ierr
			a.log.Debug("agent: controller unreachable", "addr", addr, "err", ierr)
			continue
		case resp.Code == protocol.ResponseControllerNotLeader:
			a.leader, err = "", fmt.Errorf("agent: %s: not the leader", addr)
			if hint := resp.ExtFields[protocol.ControllerExtLeader]; slices.Contains(a.cfg.Controllers, hint) {
				a.leader = hint
			}
			continue
		case resp.Code == protocol.ResponseControllerNeedRegister:
			a.id = 0
			return protocol.ReplicaSetInfo{}, nil, errors.New("agent: the controller asks to register again")
		case resp.Code != protocol.ResponseSuccess:
			return protocol.ReplicaSetInfo{}, resp, nil
		}
		a.leader = addr
		info, derr := protocol.DecodeReplicaSetInfo(resp.Body)
		if derr != nil {
			a.log.Warn("agent: bad controller answer", "err", derr)
			return protocol.ReplicaSetInfo{}, nil, derr
		}
		return info, nil, nil
	}
	return protocol.ReplicaSetInfo{}, nil, err
}
