package broker

// Replication (package ha; Java's HAService and HAService and SlaveSynchronize): a master
// serves its commit log on haListenPort (default listenPort + 1); a slave
// (brokerRole=SLAVE, brokerId > 0) streams it from the address in
// haMasterAddress or, as BrokerController does, from the haServerAddr the
// nameserver returns on registration, refuses sends, serves pulls and
// copies the master's metadata (haslave.go). A SYNC_MASTER's sends wait
// for a slave's acknowledgement (engine.ReplicaWaiter).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/stat"
)

// Broker roles (brokerRole).
const (
	RoleAsyncMaster = "ASYNC_MASTER"
	RoleSyncMaster  = "SYNC_MASTER"
	RoleSlave       = "SLAVE"
)

// HAConfig holds the replication keys (Java's HAService and BrokerConfig and MessageStoreConfig).
type HAConfig struct {
	Role string // brokerRole, ASYNC_MASTER
	// ListenPort is haListenPort; 0 means listenPort + 1 (BrokerStartup
	// forces that in Java; here an explicit value is honoured).
	ListenPort int
	// Listener, if set, is used instead of ListenPort (tests).
	Listener        net.Listener
	MasterAddress   string        // haMasterAddress: the master's HA address; "" = learn it from the nameserver
	SlaveReadEnable bool          // slaveReadEnable, false
	Heartbeat       time.Duration // haSendHeartbeatInterval, 5 s
	Housekeeping    time.Duration // haHousekeepingInterval, 20 s
	BatchSize       int           // haTransferBatchSize (bytes), 256 KiB here (Java: 32 KiB)
	FallBehindMax   int64         // haSlaveFallbehindMax, 256 MiB
	// AckDurable (haSlaveAckDurable, ours): a slave acknowledges only
	// fdatasynced bytes, so a SYNC_MASTER send survives both machines
	// losing power.
	AckDurable bool
	// StreamCompression (haStreamCompression, ours): "s2" makes a slave
	// ask its master for S2-compressed data messages (ha/compress.go);
	// "none" (default) streams plain. A master honours any slave's ask.
	StreamCompression string
	// SyncInterval is how often a slave copies the master's metadata
	// (SlaveSynchronize: 10 s, first after 3 s).
	SyncInterval time.Duration
	// Epoch (masters, failover.go) is the master epoch begun at the log
	// end before the first write; 0: no epoch (a statically configured
	// master).
	Epoch int32
	// MasterRemoting (slaves) is the master's remoting address for the
	// metadata sync; "" = learn it from the nameserver.
	MasterRemoting string
	// AdvertisedAddr is haAdvertisedAddr (mqd only; Java's brokerIP2 sets
	// the host alone): the host:port this broker registers as its HA
	// address (nameserver haServerAddr, controller replica HA address)
	// instead of the one it listens on, for a broker behind NAT or a
	// proxy; "" = brokerIP1 and the HA listen port.
	AdvertisedAddr string
	// AllAck (SYNC_MASTER in controller mode, allAckInSyncStateSet; set
	// by internal/failover, not a key here) makes a send wait for every
	// in-sync slave (SetSyncStateSet), refused below MinInSync
	// (minInSyncReplicas, the master counted).
	AllAck    bool
	MinInSync int
}

// applyHAProperty parses the replication keys.
func applyHAProperty(c *Config, k, v string) (bool, error) {
	h := &c.HA
	switch k {
	case "brokerRole":
		if v != RoleAsyncMaster && v != RoleSyncMaster && v != RoleSlave {
			return true, fmt.Errorf("want %s, %s or %s", RoleAsyncMaster, RoleSyncMaster, RoleSlave)
		}
		h.Role = v
	case "haListenPort":
		return true, setInt(&h.ListenPort, v)
	case "haMasterAddress":
		h.MasterAddress = v
	case "haAdvertisedAddr":
		if err := checkHostPort(v); err != nil {
			return true, err
		}
		h.AdvertisedAddr = v
	case "slaveReadEnable":
		return true, setBool(&h.SlaveReadEnable, v)
	case "haSendHeartbeatInterval":
		return true, setMillis(&h.Heartbeat, v)
	case "haHousekeepingInterval":
		return true, setMillis(&h.Housekeeping, v)
	case "haTransferBatchSize":
		return true, setInt(&h.BatchSize, v)
	case "haSlaveFallbehindMax":
		return true, setInt64(&h.FallBehindMax, v)
	case "haSlaveAckDurable":
		return true, setBool(&h.AckDurable, v)
	case "haStreamCompression":
		if v != "none" && v != "s2" {
			return true, fmt.Errorf("want none or s2")
		}
		h.StreamCompression = v
	default:
		return false, nil
	}
	return true, nil
}

// maxHostPort bounds an advertised host:port (a DNS name is at most 253
// bytes, the port 5 digits).
const maxHostPort = 261

// checkHostPort accepts host:port with a non-empty host (name or IP, IPv6
// in brackets) and a port in 1..65535: what a peer can dial.
func checkHostPort(v string) error {
	if len(v) > maxHostPort || strings.ContainsAny(v, " \t\r\n;,/\x00") {
		return fmt.Errorf("want host:port (at most %d bytes, no spaces, ';', ',' or '/')", maxHostPort)
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("want host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q outside 1..65535", port)
	}
	return nil
}

func (h *HAConfig) defaults() {
	if h.Role == "" {
		h.Role = RoleAsyncMaster
	}
	if h.SyncInterval <= 0 {
		h.SyncInterval = 10 * time.Second
	}
}

// isSlave reports whether this broker is a slave.
func (b *Broker) isSlave() bool { return b.cfg.HA.Role == RoleSlave }

// haState is the broker's replication state (Broker.ha).
type haState struct {
	server *ha.Server
	client *ha.Client
	cancel context.CancelFunc
	done   chan struct{}
	addr   netip.AddrPort // this master's HA address, for registration

	learnedHA     atomic.Pointer[string] // master HA address from the nameserver
	learnedMaster atomic.Pointer[string] // master remoting address from the nameserver
	fatal         chan error
	epochs        *ha.Epochs // failover.go
	fenced        atomic.Bool
	lease         atomic.Pointer[time.Time]  // failover.go: SetLease
	syncSet       atomic.Pointer[ha.SyncSet] // failover.go: SetSyncStateSet
}

// checkHA validates the role against brokerId (BrokerStartup: a master's
// id is 0, a slave's must be positive).
func (c *Config) checkHA() error {
	switch c.HA.Role {
	case RoleSlave:
		if c.BrokerID <= 0 {
			return fmt.Errorf("broker: brokerRole=SLAVE needs brokerId > 0 (got %d)", c.BrokerID)
		}
	case RoleAsyncMaster, RoleSyncMaster:
		if c.BrokerID != 0 {
			return fmt.Errorf("broker: brokerRole=%s needs brokerId=0 (got %d)", c.HA.Role, c.BrokerID)
		}
	default:
		return fmt.Errorf("broker: brokerRole %q: want %s, %s or %s", c.HA.Role, RoleAsyncMaster, RoleSyncMaster, RoleSlave)
	}
	return nil
}

func (b *Broker) haConfig() ha.Config {
	c := b.cfg.haConfigFor()
	c.Logger, c.Epochs, c.BrokerID = b.log, b.ha.epochs, b.cfg.BrokerID
	return c
}

// haConfigFor is the ha package's view of the replication keys.
func (c *Config) haConfigFor() ha.Config {
	h := c.HA
	return ha.Config{BatchSize: h.BatchSize, Heartbeat: h.Heartbeat, Housekeeping: h.Housekeeping,
		FallBehindMax: h.FallBehindMax, AckDurable: h.AckDurable,
		Compress: h.StreamCompression == "s2"}
}

// initHA sets the store's role and opens its epochs before anything can
// put (New).
func (b *Broker) initHA() error {
	b.ha.fatal = make(chan error, 1)
	b.store.SetSlave(b.isSlave())
	return b.openEpochs() // failover.go
}

// startHA starts the HA server (masters) or client (slaves); Start calls
// it once the remoting port is known.
func (b *Broker) startHA() error {
	if b.isSlave() {
		ctx, cancel := context.WithCancel(context.Background())
		b.ha.cancel, b.ha.done = cancel, make(chan struct{})
		b.ha.client = ha.NewClient(b.store, b.masterHAAddr, b.haConfig())
		go func() {
			defer close(b.ha.done)
			if err := b.ha.client.Run(ctx); err != nil {
				b.ha.fatal <- fmt.Errorf("broker: this slave cannot replicate from its master: %w", err)
			}
		}()
		b.goLoop(b.slaveSyncLoop) // haslave.go
		if b.cfg.HA.MasterAddress == "" {
			b.goLoop(b.learnMasterLoop)
		}
		return nil
	}
	ln := b.cfg.HA.Listener
	if ln == nil {
		host, port := "", b.cfg.HA.ListenPort
		switch {
		case port == 0 && b.cfg.Listener != nil:
			host = "127.0.0.1" // an injected remoting listener (tests): any free loopback port
		case port == 0:
			port = int(b.storeHost.Port()) + 1
		}
		var err error
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err != nil {
			return fmt.Errorf("broker: HA listen (haListenPort): %w", err)
		}
	}
	b.ha.addr = netip.AddrPortFrom(b.storeHost.Addr(), uint16(ln.Addr().(*net.TCPAddr).Port))
	b.ha.server = ha.NewServer(ln, haSource{b.store}, b.haConfig())
	b.ha.server.Fence(b.ha.fenced.Load()) // SetFenced before Start
	if l := b.ha.lease.Load(); l != nil {
		b.ha.server.SetLease(*l) // SetLease before Start
	}
	if b.allAck() {
		b.ha.server.SetSyncSet(b.syncSet()) // SetSyncStateSet before Start, or none yet
		// consumers see a message once the whole in-sync set has it
		// (Java's confirmOffset; engine/dispatchlimit.go)
		b.store.SetDispatchLimit(b.ha.server.ConfirmOffset)
	}
	go b.ha.server.Serve()
	if b.cfg.HA.Role == RoleSyncMaster {
		b.store.SetReplicaWaiter(replicaWaiter{srv: b.ha.server, timeout: b.syncTimeout(), lat: &b.stats.ReplicaAckLatency})
	}
	return nil
}

func (b *Broker) syncTimeout() time.Duration {
	if t := b.cfg.Store.SyncFlushTimeout; t > 0 {
		return t
	}
	return 5 * time.Second
}

// stopHA stops replication (Shutdown, before the store closes).
func (b *Broker) stopHA() {
	if b.ha.server != nil {
		b.ha.server.Close()
	}
	if b.ha.cancel != nil {
		b.ha.cancel()
		<-b.ha.done
	}
}

// Fatal delivers an error that must stop the broker: a slave whose log has
// bytes its master never had (cmd/mqd exits with it).
func (b *Broker) Fatal() <-chan error { return b.ha.fatal }

// HAAddr is the address this broker registers as its HA server:
// haAdvertisedAddr if set, else its own (masters) or, before it listens,
// listenPort + 1.
func (b *Broker) HAAddr() string {
	if a := b.cfg.HA.AdvertisedAddr; a != "" {
		return a
	}
	if b.ha.addr.IsValid() {
		return b.ha.addr.String()
	}
	return netip.AddrPortFrom(b.storeHost.Addr(), b.storeHost.Port()+1).String()
}

// masterHAAddr is where a slave replicates from: haMasterAddress, else
// what the nameserver said.
func (b *Broker) masterHAAddr() string {
	if a := b.cfg.HA.MasterAddress; a != "" {
		return a
	}
	if p := b.ha.learnedHA.Load(); p != nil {
		return *p
	}
	return ""
}

// learnMasterLoop re-registers every 2 s until a nameserver has told this
// slave its master's addresses: a slave that registered before its master
// would otherwise wait a whole registerNameServerPeriod (30 s).
func (b *Broker) learnMasterLoop(stop <-chan struct{}) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for b.masterHAAddr() == "" || b.masterAddr() == "" {
		select {
		case <-stop:
			return
		case <-t.C:
			b.registerAll()
		}
	}
}

// masterAddr is the master's remoting address (metadata sync).
func (b *Broker) masterAddr() string {
	if a := b.cfg.HA.MasterRemoting; a != "" {
		return a
	}
	if p := b.ha.learnedMaster.Load(); p != nil {
		return *p
	}
	return ""
}

// learnFromRegister records the master addresses a nameserver returned.
func (b *Broker) learnFromRegister(resp *protocol.Command) {
	if !b.isSlave() || resp == nil {
		return
	}
	var h protocol.RegisterBrokerResponseHeader
	if err := h.Decode(resp.ExtFields); err != nil {
		return
	}
	if h.HaServerAddr != "" {
		b.ha.learnedHA.Store(&h.HaServerAddr)
	}
	if h.MasterAddr != "" {
		b.ha.learnedMaster.Store(&h.MasterAddr)
	}
}

// HAStatus describes replication for admin tools and tests.
type HAStatus struct {
	Role      string
	Slaves    int   // master: connected slaves
	Acked     int64 // master: highest offset a slave acknowledged
	Connected bool  // slave: link up
	MasterEnd int64 // slave: the master's end at its last message
	Lag       int64 // master: written − acked; slave: MasterEnd − own end
	Err       error // slave: the master's refusal
	// Replicas (master) are the connected slaves with their brokerId and
	// acknowledged offset: a controller's in-sync set.
	Replicas []ha.Replica
	// Confirmed (master, all-in-sync mode) is the highest send end every
	// in-sync slave had acknowledged when it was released.
	Confirmed int64
}

// HAStatus reports replication (ASYNC_MASTER lag included).
func (b *Broker) HAStatus() HAStatus {
	st := HAStatus{Role: b.cfg.HA.Role}
	switch {
	case b.ha.server != nil:
		s := b.ha.server.Status()
		st.Slaves, st.Acked, st.Replicas, st.Confirmed = s.Slaves, s.Acked, s.Replicas, s.Confirmed
		st.Lag = max(b.store.WrittenOffset()-s.Acked, 0)
	case b.ha.client != nil:
		s := b.ha.client.Status()
		st.Connected, st.MasterEnd, st.Err = s.Connected, s.MasterEnd, s.Err
		st.Lag = max(s.MasterEnd-s.Offset, 0)
	}
	return st
}

// haSource plugs the engine into ha.Server.
type haSource struct{ *engine.Store }

func (s haSource) OpenReader(from int64) (ha.Reader, error) { return s.NewFrameReader(from) }

// replicaWaiter is SYNC_MASTER's wait for a slave, as a put status.
type replicaWaiter struct {
	srv     *ha.Server
	timeout time.Duration
	lat     *stat.Histogram // each wait (admin_ha.go reports it)
}

// EnoughReplicas refuses a put before it is written while the in-sync set
// is below minInSyncReplicas (engine.ReplicaChecker).
func (w replicaWaiter) EnoughReplicas() bool { return w.srv.EnoughInSync() }

// ReplicaBatchSize sizes the engine's groups of puts waiting for the slave
// by haTransferBatchSize (engine.ReplicaBatcher).
func (w replicaWaiter) ReplicaBatchSize() int64 { return int64(w.srv.BatchSize()) }

func (w replicaWaiter) WaitReplica(end int64) engine.PutStatus {
	began := time.Now()
	err := w.srv.WaitAck(end, w.timeout)
	w.lat.Observe(time.Since(began))
	return replicaStatus(err)
}

// WaitReplicaAsync is WaitReplica answering through done
// (engine.ReplicaAsyncWaiter): a deferred SYNC_MASTER send is answered
// from the slave's report, with no goroutine parked per send.
func (w replicaWaiter) WaitReplicaAsync(end int64, done engine.ReplicaDone) (engine.PutStatus, bool) {
	began := time.Now()
	a := replicaAckPool.Get().(*replicaAck)
	*a = replicaAck{began: began, lat: w.lat, done: done}
	pending, err := w.srv.WaitAckAsync(end, w.timeout, a)
	if pending {
		return 0, false // a answers
	}
	*a = replicaAck{}
	replicaAckPool.Put(a)
	w.lat.Observe(time.Since(began))
	return replicaStatus(err), true
}

// replicaAck carries a WaitReplicaAsync to its answer (ha.AckDone).
type replicaAck struct {
	began time.Time
	lat   *stat.Histogram
	done  engine.ReplicaDone
}

var replicaAckPool = sync.Pool{New: func() any { return new(replicaAck) }}

func (a *replicaAck) AckDone(err error) {
	began, lat, done := a.began, a.lat, a.done
	*a = replicaAck{}
	replicaAckPool.Put(a)
	lat.Observe(time.Since(began))
	done.ReplicaDone(replicaStatus(err))
}

// replicaStatus is a slave wait's outcome as a put status.
func replicaStatus(err error) engine.PutStatus {
	switch {
	case err == nil:
		return engine.PutOK
	case errors.Is(err, ha.ErrInSyncNotEnough):
		return engine.InSyncReplicasNotEnough
	case errors.Is(err, ha.ErrSlaveTimeout):
		return engine.FlushSlaveTimeout
	default:
		return engine.SlaveNotAvailable
	}
}

// suggestBroker is PullMessageProcessor's suggestWhichBrokerId: with
// slaveReadEnable, the group's whichBrokerWhenConsumeSlowly when the
// consumer is far behind (the in-memory ratio rule), else the group's
// brokerId; without it, always the master.
func (b *Broker) suggestBroker(group string, slow bool) int64 {
	if !b.conf().HA.SlaveReadEnable {
		return protocol.MasterID
	}
	g, ok := b.groups.Lookup(group)
	if !ok {
		g = protocol.SubscriptionGroupConfig{BrokerID: protocol.MasterID, WhichBrokerWhenConsumeSlowly: 1}
	}
	if slow {
		return g.WhichBrokerWhenConsumeSlowly
	}
	return g.BrokerID
}

// slavePullCode: a slave without slaveReadEnable sends every pull back to
// the master (PULL_RETRY_IMMEDIATELY, suggest the master).
func (b *Broker) slavePullCode(code int16, suggest int64) (int16, int64) {
	if b.isSlave() && !b.conf().HA.SlaveReadEnable {
		return protocol.ResponsePullRetryImmediately, protocol.MasterID
	}
	return code, suggest
}
