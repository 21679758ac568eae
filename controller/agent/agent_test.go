package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/controller"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/testport"
)

var quiet = slog.New(slog.NewTextHandler(testLog(), nil))

// fakeReplica records what the agent asks of the broker.
type fakeReplica struct {
	mu       sync.Mutex
	role     Role
	switched time.Time // when SwitchRole last ran
	fenced   bool
	fencedAt time.Time
	lease    time.Time // last Lease deadline
	status   Status
	switches int
	inSync   [2][]int64 // last SyncStateSet: committed, pending
	syncs    [][2][]int64
	syncsAt  int // len(syncs) at the last SwitchRole
}

func (f *fakeReplica) SyncStateSet(committed, pending []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inSync = [2][]int64{committed, pending}
	f.syncs = append(f.syncs, f.inSync)
}

func (f *fakeReplica) SwitchRole(r Role) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.role, f.switched, f.syncsAt = r, time.Now(), len(f.syncs)
	f.status.Epoch = r.Epoch // a master begins it, a slave learns it when it joins
	f.switches++
	return nil
}

func (f *fakeReplica) Lease(until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lease = until
}

func (f *fakeReplica) Fence(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b && !f.fenced {
		f.fencedAt = time.Now()
	}
	f.fenced = b
}

func (f *fakeReplica) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeReplica) get() (Role, bool, time.Time, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.role, f.fenced, f.switched, f.fencedAt
}

func (f *fakeReplica) setOffset(off int64) {
	f.mu.Lock()
	f.status.MaxOffset = off
	f.mu.Unlock()
}

// freeAddr returns a loopback address from testport, never one handed
// out before in this process: listening on port 0 and closing gave one
// group the same port twice (CI, stop 25).
func freeAddr(t *testing.T) string { return testport.Addr(t) }

// startGroup starts three controllers and returns them with their
// remoting addresses. A free port found by freeAddr may be taken by
// another process (an outgoing connection's ephemeral port) before the
// controller binds it, so a bind failure starts over on new ports.
func startGroup(t *testing.T) ([]*controller.Node, []string) {
	for attempt := 1; ; attempt++ {
		nodes, addrs, err := tryStartGroup(t)
		if err == nil {
			return nodes, addrs
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 5 {
			t.Fatal(err)
		}
	}
}

func tryStartGroup(t *testing.T) ([]*controller.Node, []string, error) {
	var peers []controller.Peer
	for i := 0; i < 3; i++ {
		peers = append(peers, controller.Peer{ID: fmt.Sprintf("n%d", i), RaftAddr: freeAddr(t), Addr: freeAddr(t)})
	}
	var nodes []*controller.Node
	var addrs []string
	for _, p := range peers {
		n, err := controller.Start(controller.Config{ID: p.ID, Peers: peers, Dir: t.TempDir(), ScanInterval: 100 * time.Millisecond,
			RaftHeartbeat: 300 * time.Millisecond, SeedTimeout: 2 * time.Second, Logger: quiet, RaftLog: io.Discard})
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			return nil, nil, err
		}
		nodes = append(nodes, n)
		addrs = append(addrs, p.Addr)
	}
	for _, n := range nodes {
		t.Cleanup(func() { n.Close() })
	}
	return nodes, addrs, nil
}

type broker struct {
	fake   *fakeReplica
	cancel context.CancelFunc
	done   chan struct{}
	a      *Agent // read only after stop
}

// startBroker runs an agent for replica i of c/b against addrs.
func startBroker(t *testing.T, i int, addrs []string) *broker {
	return startBrokerAck(t, i, addrs, false)
}

// startBrokerAck is startBroker with allAckInSyncStateSet on or off (on:
// no lease).
func startBrokerAck(t *testing.T, i int, addrs []string, allAck bool) *broker {
	f := &fakeReplica{status: Status{MaxOffset: 100}}
	lease := 700 * time.Millisecond
	if allAck {
		lease = 0
	}
	a, err := New(Config{Cluster: "c", BrokerName: "b", BrokerAddr: fmt.Sprintf("127.0.0.1:%d", 30000+i),
		HAAddr: fmt.Sprintf("127.0.0.1:%d", 31000+i), Controllers: addrs, Interval: 100 * time.Millisecond,
		Timeout: 1200 * time.Millisecond, Lease: lease, AllAck: allAck, InSyncLag: 500 * time.Millisecond, Logger: quiet}, f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &broker{fake: f, cancel: cancel, done: make(chan struct{}), a: a}
	go func() { defer close(b.done); a.Run(ctx) }()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) stop() {
	b.cancel()
	<-b.done
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// masterOf returns the index of the unfenced master among bs, or -1;
// brokers whose index is in dead (killed, so their fake keeps its last
// state) are skipped.
func masterOf(bs []*broker, dead ...int) int {
	for i, b := range bs {
		if slices.Contains(dead, i) {
			continue
		}
		if r, fenced, _, _ := b.fake.get(); r.Master && !fenced {
			return i
		}
	}
	return -1
}

// threeBrokers starts the group and three agents (all at offset 100),
// waits for a master and for both slaves to be reported in sync, and
// returns the brokers and the master's index.
func threeBrokers(t *testing.T) ([]*controller.Node, []*broker, int) {
	return threeBrokersAck(t, false)
}

func threeBrokersAck(t *testing.T, allAck bool) ([]*controller.Node, []*broker, int) {
	nodes, addrs := startGroup(t)
	var bs []*broker
	for i := 0; i < 3; i++ {
		bs = append(bs, startBrokerAck(t, i, addrs, allAck))
	}
	waitFor(t, 10*time.Second, "a master", func() bool { return masterOf(bs) >= 0 })
	m := masterOf(bs)
	waitFor(t, 5*time.Second, "in-sync set reported", func() bool { return len(committed(nodes).SyncStateSet) == 3 })
	return nodes, bs, m
}

// committed is the leader's committed broker set (zero if none).
func committed(nodes []*controller.Node) controller.BrokerSet {
	for _, n := range nodes {
		if n.IsLeader() {
			if st := n.State(); len(st) == 1 {
				return st[0]
			}
		}
	}
	return controller.BrokerSet{}
}

// TestAgentInSyncLag: a slave that stops catching up leaves the in-sync
// set after the lag and is not elected when the master dies; it rejoins
// the set once it catches up with the new master.
func TestAgentInSyncLag(t *testing.T) {
	nodes, bs, m := threeBrokers(t)
	lagger, good := (m+1)%3, (m+2)%3
	bs[m].fake.setOffset(500)
	bs[good].fake.setOffset(500)
	waitFor(t, 5*time.Second, "lagging slave dropped", func() bool {
		set := committed(nodes).SyncStateSet
		r, _, _, _ := bs[lagger].fake.get()
		return len(set) == 2 && !slices.Contains(set, r.BrokerID)
	})
	bs[m].stop()
	waitFor(t, 10*time.Second, "a new master", func() bool { return masterOf(bs, m) >= 0 })
	if n := masterOf(bs, m); n != good {
		t.Fatalf("elected %d, want the in-sync slave %d (lagging %d)", n, good, lagger)
	}
	bs[lagger].fake.setOffset(500)
	waitFor(t, 5*time.Second, "caught-up slave back in sync", func() bool { return len(committed(nodes).SyncStateSet) == 2 })
}

func TestAgentFollowsElection(t *testing.T) {
	_, bs, m := threeBrokers(t)
	r, _, _, _ := bs[m].fake.get()
	if r.BrokerID != 0 || r.Epoch != 1 {
		t.Fatalf("master role %+v, want brokerId 0 epoch 1", r)
	}
	killed := time.Now()
	bs[m].stop() // kill -9 of the master: its heartbeats stop
	waitFor(t, 10*time.Second, "a new master", func() bool { return masterOf(bs, m) >= 0 })
	n := masterOf(bs, m)
	nr, _, switched, _ := bs[n].fake.get()
	if nr.Epoch != 2 || nr.BrokerID != 0 {
		t.Fatalf("new master role %+v", nr)
	}
	t.Logf("new master %d after %v (heartbeat timeout 1.2 s)", n, switched.Sub(killed))
	// the third broker follows the new master
	for i, b := range bs {
		if i != m && i != n {
			waitFor(t, 5*time.Second, "slave follows the new master", func() bool {
				r, _, _, _ := b.fake.get()
				return !r.Master && r.Epoch == 2 && r.MasterAddr == fmt.Sprintf("127.0.0.1:%d", 30000+n)
			})
		}
	}
}

// TestAgentFencesBeforeElection cuts the master off from every
// controller (its agent keeps running): it must fence itself before the
// controller elects another master, so two masters never both
// acknowledge.
func TestAgentFencesBeforeElection(t *testing.T) {
	_, bs, m := threeBrokers(t)
	// partition: point the master's agent at a dead address
	bs[m].stop()
	dead := freeAddr(t)
	f := bs[m].fake
	a, err := New(Config{Cluster: "c", BrokerName: "b", BrokerAddr: fmt.Sprintf("127.0.0.1:%d", 30000+m),
		HAAddr: fmt.Sprintf("127.0.0.1:%d", 31000+m), Controllers: []string{dead}, Interval: 100 * time.Millisecond,
		Timeout: 1200 * time.Millisecond, Lease: 700 * time.Millisecond, Logger: quiet}, f)
	if err != nil {
		t.Fatal(err)
	}
	// the partitioned agent resumes with the master's lease state
	a.id, a.role, a.leaseFrom, a.fenced, a.fenceSet = func() (int64, *Role, time.Time, bool, bool) {
		r, _, _, _ := f.get()
		return bs[m].a.id, &r, time.Now(), false, true
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil { // Run without its initial fence
			a.tick(ctx, time.Now())
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "a new master", func() bool { return masterOf(bs, m) >= 0 })
	n := masterOf(bs, m)
	_, _, elected, _ := bs[n].fake.get()
	_, fenced, _, fencedAt := f.get()
	if !fenced || !fencedAt.Before(elected) {
		t.Fatalf("old master fenced=%v at %v, new master switched at %v", fenced, fencedAt, elected)
	}
	t.Logf("old master fenced %v before the new master took over", elected.Sub(fencedAt))
	// the lease deadline the acknowledgements obey (ha.Server.SetLease)
	// also ran out before the election, whatever the fence's polling did
	f.mu.Lock()
	lease := f.lease
	f.mu.Unlock()
	if lease.IsZero() || !lease.Before(elected) {
		t.Fatalf("old master's lease runs to %v, new master switched at %v", lease, elected)
	}
}

// TestAgentQuorumLoss stops two controllers: the master fences (no
// quorum confirms it) and nobody is elected; the slaves keep their role.
func TestAgentQuorumLoss(t *testing.T) {
	nodes, bs, m := threeBrokers(t)
	nodes[0].Close()
	nodes[1].Close()
	waitFor(t, 5*time.Second, "master fenced", func() bool { _, fenced, _, _ := bs[m].fake.get(); return fenced })
	time.Sleep(2 * time.Second)
	for i, b := range bs {
		r, _, _, _ := b.fake.get()
		if r.Epoch != 1 || r.Master != (i == m) {
			t.Fatalf("broker %d changed role without quorum: %+v", i, r)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Controllers: []string{"h:1"}}
	if err := c.Defaults(); err != nil || c.Lease != 4*time.Second || c.Timeout != 6*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
	bad := []Config{
		{},
		{Controllers: []string{"h:1"}, Timeout: time.Second, Lease: 2 * time.Second},
		{Controllers: []string{"h:1"}, Interval: 5 * time.Second, Timeout: 6 * time.Second, Lease: 4 * time.Second},
	}
	for i, c := range bad {
		if err := c.Defaults(); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}

func testLog() io.Writer {
	if os.Getenv("AGENT_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// TestInSyncFromAcks: with HA acknowledgements reported, a slave is in
// sync only if connected and acknowledged up to where the master was
// InSyncLag ago; its heartbeat offset does not count.
func TestInSyncFromAcks(t *testing.T) {
	f := &fakeReplica{}
	a, err := New(Config{Controllers: []string{"h:1"}, InSyncLag: time.Second, Logger: quiet}, f)
	if err != nil {
		t.Fatal(err)
	}
	a.id = 1
	a.info.MasterEpoch = 3
	for id := int64(1); id <= 4; id++ {
		a.info.Replicas = append(a.info.Replicas, protocol.ReplicaInfo{BrokerID: id, Alive: id != 4, Epoch: 3, MaxOffset: 1000})
	}
	t0 := time.Now()
	f.status = Status{MaxOffset: 100}
	a.inSync(t0)
	f.status = Status{MaxOffset: 500, Acked: map[int64]int64{2: 100, 3: 99, 4: 500}}
	// 2 acknowledged where the master was 1 s ago; 3 did not (its
	// heartbeat offset 1000 is ignored); 4 is not alive
	if got := a.inSync(t0.Add(1500 * time.Millisecond)); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("in-sync %v, want [1 2]", got)
	}
	f.status.Acked = nil // no acknowledgements known: heartbeat offsets at the epoch
	if got := a.inSync(t0.Add(1600 * time.Millisecond)); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("in-sync from heartbeats %v, want [1 2 3]", got)
	}
}
