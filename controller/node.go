package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Peer is one member of the controller group.
type Peer struct {
	ID       string // raft server id, e.g. "n0"
	RaftAddr string // raft transport address (host:port)
	Addr     string // remoting address brokers use (host:port)
}

// ParsePeers parses "id=raftAddr=addr;id=raftAddr=addr;…" (the
// --peers flag; Java's controllerDLegerPeers is "id-addr;…").
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	for _, part := range splitList(s) {
		f := splitFields(part, '=')
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
			return nil, fmt.Errorf("controller: peer %q: want id=raftHost:port=host:port", part)
		}
		out = append(out, Peer{ID: f[0], RaftAddr: f[1], Addr: f[2]})
	}
	if len(out) == 0 {
		return nil, errors.New("controller: no peers")
	}
	return out, nil
}

// Config configures a controller Node. Zero values take the defaults.
type Config struct {
	ID    string // this node's id among Peers
	Peers []Peer // the whole group, this node included
	Dir   string // raft log, stable store and snapshots
	// RaftListener and Listener, if set, replace listening on this peer's
	// RaftAddr and Addr (tests pass loopback listeners on port 0).
	RaftListener net.Listener
	Listener     net.Listener
	// Unclean is enableElectUncleanMaster: elect outside the in-sync set
	// when no in-sync replica is alive (may lose acknowledged messages).
	Unclean bool
	// ScanInterval is how often the leader looks for dead masters
	// (scanInactiveMasterInterval; default 500 ms here, Java 5 s).
	ScanInterval time.Duration
	// SeedTimeout is how long a new leader treats a replica it has not
	// heard from as alive when the replica registered no heartbeat timeout
	// (default 10 s, Java's heartbeat timeout).
	SeedTimeout time.Duration
	// RaftHeartbeat is raft's heartbeat and election timeout (default
	// 1 s: shorter ones caused needless leader changes on a loaded
	// machine); the leader lease is half of it.
	RaftHeartbeat time.Duration
	Logger        *slog.Logger
	// RaftLog receives the raft library's warnings (default os.Stderr).
	RaftLog io.Writer
}

// Node is one controller: a raft member and, when leader, the failure
// detector and election driver.
type Node struct {
	cfg   Config
	self  Peer
	fsm   *fsm
	raft  *raft.Raft
	store *raftboltdb.BoltStore
	trans *raft.NetworkTransport
	live  *liveness
	srv   *server
	log   *slog.Logger

	// electMu serialises an election (decide, propose, apply) with the
	// answer to a heartbeat: a master's heartbeat is either counted before
	// the decision (so it is not found dead) or answered with the elected
	// state (so it learns it was replaced), never answered from the state
	// an election already decided against; that answer would extend the
	// old master's lease past the election.
	electMu sync.Mutex

	kick     chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	closeOne sync.Once
}

// Start opens the raft stores, joins (bootstraps, on first start) the
// group and serves brokers.
func Start(cfg Config) (*Node, error) {
	n := &Node{cfg: cfg, fsm: &fsm{st: NewState()}, live: newLiveness(), log: cfg.Logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.cfg.ScanInterval <= 0 {
		n.cfg.ScanInterval = 500 * time.Millisecond
	}
	if n.cfg.SeedTimeout <= 0 {
		n.cfg.SeedTimeout = 10 * time.Second
	}
	if n.cfg.RaftHeartbeat <= 0 {
		n.cfg.RaftHeartbeat = time.Second
	}
	var ok bool
	for _, p := range cfg.Peers {
		if p.ID == cfg.ID {
			n.self, ok = p, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("controller: id %q is not among the peers", cfg.ID)
	}
	if err := n.openRaft(); err != nil {
		n.closeStores()
		return nil, err
	}
	srv, err := newServer(n)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.srv = srv
	n.wg.Add(2)
	go n.leaderLoop()
	go n.scanLoop()
	return n, nil
}

func (n *Node) openRaft() error {
	if err := os.MkdirAll(n.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	var err error
	if n.store, err = raftboltdb.NewBoltStore(filepath.Join(n.cfg.Dir, "raft.db")); err != nil {
		return fmt.Errorf("controller: raft store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(n.cfg.Dir, 2, io.Discard)
	if err != nil {
		return fmt.Errorf("controller: snapshots: %w", err)
	}
	ln := n.cfg.RaftListener
	if ln == nil {
		if ln, err = net.Listen("tcp", n.self.RaftAddr); err != nil {
			return fmt.Errorf("controller: raft listen: %w", err)
		}
	}
	n.trans = raft.NewNetworkTransport(&streamLayer{Listener: ln}, 3, 5*time.Second, io.Discard)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.self.ID)
	rc.HeartbeatTimeout = n.cfg.RaftHeartbeat
	rc.ElectionTimeout = n.cfg.RaftHeartbeat
	rc.LeaderLeaseTimeout = n.cfg.RaftHeartbeat / 2
	rc.CommitTimeout = 20 * time.Millisecond
	rc.LogLevel = "WARN"
	rc.LogOutput = n.cfg.RaftLog
	if rc.LogOutput == nil {
		rc.LogOutput = os.Stderr
	}
	has, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		return fmt.Errorf("controller: raft: %w", err)
	}
	if has {
		return nil
	}
	var conf raft.Configuration
	for _, p := range n.cfg.Peers {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("controller: bootstrap: %w", err)
	}
	return nil
}

// Addr is the remoting address brokers use.
func (n *Node) Addr() net.Addr { return n.srv.rs.Addr() }

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderAddr is the leader's remoting address ("" if none is known).
func (n *Node) LeaderAddr() (id, addr string) {
	_, lid := n.raft.LeaderWithID()
	for _, p := range n.cfg.Peers {
		if raft.ServerID(p.ID) == lid {
			return p.ID, p.Addr
		}
	}
	return "", ""
}

// State returns a copy of the committed state on this node.
func (n *Node) State() []BrokerSet { return n.fsm.all() }

// ErrNotLeader is returned by Propose on a follower.
var ErrNotLeader = errors.New("controller: not the leader")

// Propose commits op through raft and returns its result. It fails when
// this node is not the leader or no quorum answers within 5 s.
func (n *Node) Propose(op Op) (Result, error) {
	if !n.IsLeader() {
		return Result{}, ErrNotLeader
	}
	data, err := json.Marshal(op)
	if err != nil {
		return Result{}, err
	}
	f := n.raft.Apply(data, 5*time.Second)
	if err := f.Error(); err != nil {
		return Result{}, fmt.Errorf("controller: raft apply: %w", err)
	}
	res, ok := f.Response().(Result)
	if !ok {
		return Result{}, fmt.Errorf("controller: raft apply: unexpected %T", f.Response())
	}
	return res, nil
}

// Close stops serving and leaves raft (without removing this node from
// the configuration: a restarted node rejoins with its stored state).
func (n *Node) Close() error {
	n.closeOne.Do(func() {
		close(n.stop)
		if n.srv != nil {
			n.srv.close()
		}
		if n.raft != nil {
			n.raft.Shutdown().Error()
		}
		n.wg.Wait()
		n.closeStores()
	})
	return nil
}

func (n *Node) closeStores() {
	if n.trans != nil {
		n.trans.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

// fsm adapts State to raft.FSM.
type fsm struct {
	mu sync.RWMutex
	st *State
}

func (f *fsm) Apply(l *raft.Log) any {
	var op Op
	if err := json.Unmarshal(l.Data, &op); err != nil {
		return fail(0, "bad log entry: %v", err) // never written by us
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Apply(op)
}

func (f *fsm) get(cluster, name string) (BrokerSet, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.Get(cluster, name)
}

func (f *fsm) all() []BrokerSet {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.All()
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.st.Marshal()
	return snapshot(b), err
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	st, err := UnmarshalState(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}

// streamLayer is raft's TCP stream layer on a given listener.
type streamLayer struct{ net.Listener }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}
