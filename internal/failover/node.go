// Package failover runs a broker whose role can change while the process
// lives: SwitchRole restarts the broker in-process as the master of an
// epoch or as a slave of another master, and a slave whose log goes beyond
// the history it shares with its master is stopped, truncated offline
// (the cut bytes kept in .broken copies) and started again. Fence stops a
// master acknowledging writes. Who decides the roles (an operator, a
// controller) is not this package's business; see ha/FORMAT.md §6 for the
// epochs and README.md for the guarantees.
//
// Goroutines: one supervisor per Node watches the running broker's fatal
// errors; Node.mu serialises role switches, truncations and shutdown.
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/internal/broker"
)

// Role is what a broker is told to be.
type Role struct {
	Master bool
	// Epoch is the master epoch: a master begins it at its log end before
	// it accepts a write (0: none, a statically configured master); a
	// slave ignores it (it learns the epochs from its master).
	Epoch int32
	// BrokerID is registered with the nameserver: 0 for a master, > 0 for
	// a slave.
	BrokerID int64
	// MasterAddr and MasterHAAddr (slaves) are the master's remoting and
	// HA addresses; "" learns them from the nameserver.
	MasterAddr, MasterHAAddr string
}

// Options configure a Node.
type Options struct {
	// Broker is the base configuration; each role overrides brokerRole,
	// brokerId, the HA master addresses and the epoch.
	Broker broker.Config
	// MasterRole is the brokerRole of a master: SYNC_MASTER (default) or
	// ASYNC_MASTER.
	MasterRole string
	// ShutdownTimeout bounds the broker's shutdown in a switch (30 s).
	ShutdownTimeout time.Duration
	// AllAck makes a SYNC_MASTER master acknowledge a send only once every
	// slave of its in-sync set has it (allAckInSyncStateSet, controller
	// mode; SyncStateSet names the set), refusing sends while the set,
	// itself counted, is below MinInSync (minInSyncReplicas).
	AllAck    bool
	MinInSync int
	// InSync is the first role's committed in-sync set without this
	// broker (SyncStateSet sets the later ones).
	InSync []int64
}

// Node is a broker that can change roles.
type Node struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	b       *broker.Broker
	role    Role
	fenced  bool
	lease   time.Time  // Lease; zero: none
	inSync  [2][]int64 // SyncStateSet: committed, pending
	closed  bool
	stopSup chan struct{} // closes the current supervisor
	supDone chan struct{}
	fatal   chan error // errors the node cannot handle itself
	addr    string     // remoting listen address kept across restarts
	haAddr  string     // HA listen address kept across restarts ("": as configured)
}

// Start starts a broker in role r.
func Start(opt Options, r Role) (*Node, error) {
	if opt.MasterRole == "" {
		opt.MasterRole = broker.RoleSyncMaster
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = 30 * time.Second
	}
	n := &Node{opt: opt, log: opt.Broker.Logger, fatal: make(chan error, 1), inSync: [2][]int64{slices.Clone(opt.InSync), nil}}
	if n.log == nil {
		n.log = slog.Default()
	}
	if ln := opt.Broker.Listener; ln != nil {
		n.addr = ln.Addr().String()
	}
	if ln := opt.Broker.HA.Listener; ln != nil {
		n.haAddr = ln.Addr().String()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.startLocked(r, true); err != nil {
		return nil, err
	}
	return n, nil
}

// ConfiguredRole is the node options and starting role of a broker
// configured statically (brokerRole, brokerId, haMasterAddress): cmd/mqd
// runs every broker as a Node.
func ConfiguredRole(cfg broker.Config) (Options, Role) {
	if cfg.HA.Role == broker.RoleSlave {
		return Options{Broker: cfg}, Role{BrokerID: cfg.BrokerID, MasterHAAddr: cfg.HA.MasterAddress, MasterAddr: cfg.HA.MasterRemoting}
	}
	role := cfg.HA.Role
	if role == "" {
		role = broker.RoleAsyncMaster // brokerRole's default
	}
	return Options{Broker: cfg, MasterRole: role}, Role{Master: true, BrokerID: cfg.BrokerID, Epoch: cfg.HA.Epoch}
}

// config is the broker configuration for role r.
func (n *Node) config(r Role, first bool) (broker.Config, error) {
	cfg := n.opt.Broker
	if !first {
		// The listeners of the first run are closed: listen again on the
		// same addresses.
		cfg.Listener, cfg.HA.Listener = nil, nil
		if n.addr != "" {
			ln, err := net.Listen("tcp", n.addr)
			if err != nil {
				return cfg, fmt.Errorf("failover: listen again on %s: %w", n.addr, err)
			}
			cfg.Listener = ln
		}
		if n.haAddr != "" && r.Master {
			ln, err := net.Listen("tcp", n.haAddr)
			if err != nil {
				if cfg.Listener != nil {
					cfg.Listener.Close()
				}
				return cfg, fmt.Errorf("failover: listen again on %s: %w", n.haAddr, err)
			}
			cfg.HA.Listener = ln
		}
	}
	cfg.BrokerID = r.BrokerID
	cfg.HA.Epoch = 0
	if r.Master {
		cfg.HA.Role, cfg.HA.Epoch = n.opt.MasterRole, r.Epoch
		cfg.HA.MasterAddress, cfg.HA.MasterRemoting = "", ""
		cfg.HA.AllAck, cfg.HA.MinInSync = n.opt.AllAck, n.opt.MinInSync
	} else {
		cfg.HA.Role = broker.RoleSlave
		cfg.HA.MasterAddress, cfg.HA.MasterRemoting = r.MasterHAAddr, r.MasterAddr
		if cfg.HA.Listener != nil && first {
			// a slave serves no HA port; keep the listener for a later
			// mastership
			cfg.HA.Listener = nil
		}
	}
	return cfg, nil
}

// startLocked starts a broker in role r and its supervisor.
func (n *Node) startLocked(r Role, first bool) error {
	cfg, err := n.config(r, first)
	if err != nil {
		return err
	}
	b, err := broker.New(cfg)
	if err == nil {
		if !n.lease.IsZero() {
			b.SetLease(n.lease) // before Start: no acknowledgement outside the lease
		}
		b.SetSyncStateSet(n.inSync[0], n.inSync[1]) // before Start: no acknowledgement by a smaller set
		err = b.Start()
		if err != nil {
			n.shutdownBroker(b)
		}
	}
	if err != nil {
		for _, ln := range []net.Listener{cfg.Listener, cfg.HA.Listener} {
			if ln != nil {
				ln.Close()
			}
		}
		return fmt.Errorf("failover: start as %s: %w", describe(r), err)
	}
	if first && !r.Master && n.opt.Broker.HA.Listener != nil {
		n.opt.Broker.HA.Listener.Close() // re-listened on n.haAddr when master
	}
	n.b, n.role = b, r
	n.stopSup, n.supDone = make(chan struct{}), make(chan struct{})
	go n.supervise(b, n.stopSup, n.supDone)
	n.log.Info("failover: broker running", "role", describe(r), "logEnd", b.LogEnd(), "epoch", b.Epochs().Last().Epoch)
	return nil
}

func describe(r Role) string {
	if r.Master {
		return fmt.Sprintf("master (epoch %d, brokerId %d)", r.Epoch, r.BrokerID)
	}
	return fmt.Sprintf("slave (brokerId %d) of %s", r.BrokerID, r.MasterHAAddr)
}

func (n *Node) shutdownBroker(b *broker.Broker) error {
	ctx, cancel := context.WithTimeout(context.Background(), n.opt.ShutdownTimeout)
	defer cancel()
	return b.Shutdown(ctx)
}

// stopLocked stops the supervisor and the broker.
func (n *Node) stopLocked() error {
	if n.b == nil {
		return nil
	}
	close(n.stopSup)
	<-n.supDone
	err := n.shutdownBroker(n.b)
	n.b = nil
	return err
}

// SwitchRole restarts the broker in role r. A master's epoch is begun at
// its log end, durably, before it accepts a write; a slave connects to its
// master, truncates its log when the master says it goes beyond their
// shared history, and replicates. The broker re-registers with the
// nameserver under r.BrokerID. The fence is lifted: a new role is a new
// lease. On error the node runs no broker; SwitchRole may be called again.
func (n *Node) SwitchRole(r Role) error {
	if r.Master && r.BrokerID != 0 || !r.Master && r.BrokerID <= 0 {
		return fmt.Errorf("failover: %s: a master's brokerId is 0, a slave's above 0", describe(r))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("failover: node is shut down")
	}
	n.log.Warn("failover: switching role", "from", describe(n.role), "to", describe(r))
	if err := n.stopLocked(); err != nil {
		n.log.Warn("failover: broker shutdown", "err", err)
	}
	n.fenced = false
	return n.startLocked(r, false)
}

// Fence makes a master refuse new sends and fail its waiting SYNC_MASTER
// sends (true), or accept them again (false). It has no effect on a slave
// beyond being remembered until the next SwitchRole.
func (n *Node) Fence(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fenced = on
	if n.b != nil {
		n.b.SetFenced(on)
	}
}

// Lease bounds when the master may acknowledge SYNC_MASTER writes
// (broker.SetLease): after until, slave reports release nothing, whether
// or not Fence was called yet. It carries over a SwitchRole, so a broker
// restarted as master acknowledges nothing until the lease is renewed;
// the zero time (the default, static roles) means no lease.
func (n *Node) Lease(until time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lease = until
	if n.b != nil {
		n.b.SetLease(until)
	}
}

// SyncStateSet names the slaves whose acknowledgement a send needs with
// Options.AllAck (broker.SetSyncStateSet): the controller's committed
// in-sync set and the slaves of unresolved proposals, both without this
// broker's own id. It carries over a SwitchRole, so the caller sets the
// set of a new role before switching to it.
func (n *Node) SyncStateSet(committed, pending []int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inSync = [2][]int64{slices.Clone(committed), slices.Clone(pending)}
	if n.b != nil {
		n.b.SetSyncStateSet(n.inSync[0], n.inSync[1])
	}
}

// Status is what a node reports (to a controller's heartbeat, a test).
type Status struct {
	Role    Role
	Running bool
	Fenced  bool
	LogEnd  int64
	Epoch   ha.Entry // the store's last epoch
	HA      broker.HAStatus
}

// Status reports the node's role and replication.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Status{Role: n.role, Fenced: n.fenced, Running: n.b != nil}
	if n.b != nil {
		st.LogEnd, st.Epoch, st.HA = n.b.LogEnd(), n.b.Epochs().Last(), n.b.HAStatus()
	}
	return st
}

// Broker is the running broker (nil between a failed switch and the next).
// It changes with every switch: do not keep it.
func (n *Node) Broker() *broker.Broker {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b
}

// Fatal delivers an error the node cannot handle itself: a master's
// refusal of this slave, a truncation that failed. The broker is stopped.
func (n *Node) Fatal() <-chan error { return n.fatal }

// Shutdown stops the broker for good.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.b == nil {
		return nil
	}
	close(n.stopSup)
	<-n.supDone
	err := n.b.Shutdown(ctx)
	n.b = nil
	return err
}

// supervise waits for the broker's fatal error: a truncation order is
// carried out, anything else is passed on.
func (n *Node) supervise(b *broker.Broker, stop, done chan struct{}) {
	defer close(done)
	var err error
	select {
	case <-stop:
		return
	case err = <-b.Fatal():
	}
	go func() {
		if err := n.handleFatal(b, err); err != nil {
			n.log.Error("failover: broker stopped", "err", err)
			select {
			case n.fatal <- err:
			default:
			}
		}
	}()
}

// handleFatal truncates and restarts a slave told to truncate; any other
// error stops the broker and is returned.
func (n *Node) handleFatal(b *broker.Broker, ferr error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.b != b || n.closed {
		return nil // switched or shut down meanwhile
	}
	trunc, ok := broker.IsTruncate(ferr)
	role := n.role
	<-n.supDone
	close(n.stopSup)
	if err := n.shutdownBroker(b); err != nil {
		n.log.Warn("failover: broker shutdown", "err", err)
	}
	n.b = nil
	if !ok {
		return ferr
	}
	if role.Master {
		// Never: a master runs no replication client. Refuse to cut.
		return fmt.Errorf("failover: a master was told to truncate its log: %w", ferr)
	}
	if err := n.truncate(trunc); err != nil {
		return err
	}
	return n.startLocked(role, false)
}

// truncate cuts the stopped store at t.At (commit log cut with copies
// kept, checkpoint lowered, queues and index rebuilt by the next open's
// recovery: engine.Repair) and drops the epochs that start at or after it.
func (n *Node) truncate(t *ha.TruncateError) error {
	st := n.opt.Broker.Store
	st.Logger = n.log
	if t.At < t.LogEnd {
		res, err := engine.Repair(st, t.At)
		if err != nil {
			return fmt.Errorf("failover: truncating the slave's log to %d: %w", t.At, err)
		}
		n.log.Warn("failover: slave's log truncated to the history it shares with its master",
			"at", t.At, "was", t.LogEnd, "removedBytes", t.LogEnd-t.At, "kept", res.Kept)
	}
	e, err := ha.OpenEpochFile(epochPath(n.opt.Broker))
	if err != nil {
		return err
	}
	before := len(e.Entries())
	if err := e.TruncateAfter(t.At); err != nil {
		return err
	}
	if t.At >= t.LogEnd && len(e.Entries()) == before {
		// Each order must remove bytes or epochs, or the slave would be
		// told the same thing again and again.
		return fmt.Errorf("failover: the master ordered a truncation to %d that changes nothing (log end %d, epochs %v): %w", t.At, t.LogEnd, e.Entries(), t)
	}
	return nil
}

func epochPath(cfg broker.Config) string { return filepath.Join(cfg.Store.Dir, broker.EpochFileName) }
