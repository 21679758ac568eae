package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/testport"
)

// group is three in-process controllers on loopback.
type group struct {
	t     *testing.T
	seed  time.Duration // Config.SeedTimeout (default 2 s)
	peers []Peer
	dirs  []string
	nodes []*Node
}

func newGroup(t *testing.T) *group { return newGroupSeed(t, 2*time.Second) }

// newGroupSeed starts three controllers. A port freeAddr found free may be
// taken (by another test package's freeAddr or outgoing connection)
// before the controller binds it: a bind failure starts over on new ports.
func newGroupSeed(t *testing.T, seed time.Duration) *group {
	g := &group{t: t, seed: seed}
	for attempt := 1; ; attempt++ {
		err := g.tryStartAll()
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 5 {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range g.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	return g
}

// freeAddr returns a loopback address from testport (the raft group
// needs every address before any node starts). Listening on port 0 and
// closing can hand the same port out twice in one group.
func freeAddr(t *testing.T) string { return testport.Addr(t) }

// tryStartAll picks fresh addresses and starts every node; on an error
// it closes what it started.
func (g *group) tryStartAll() error {
	g.peers, g.dirs, g.nodes = nil, nil, make([]*Node, 3)
	for i := 0; i < 3; i++ {
		g.peers = append(g.peers, Peer{ID: fmt.Sprintf("n%d", i), RaftAddr: freeAddr(g.t), Addr: freeAddr(g.t)})
		g.dirs = append(g.dirs, g.t.TempDir())
	}
	for i := range g.nodes {
		n, err := Start(g.config(i))
		if err != nil {
			for _, n := range g.nodes {
				if n != nil {
					n.Close()
				}
			}
			return err
		}
		g.nodes[i] = n
	}
	return nil
}

func (g *group) config(i int) Config {
	return Config{ID: g.peers[i].ID, Peers: g.peers, Dir: g.dirs[i], ScanInterval: 100 * time.Millisecond,
		RaftHeartbeat: 300 * time.Millisecond, SeedTimeout: g.seed,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLog: io.Discard}
}

func (g *group) start(i int) {
	g.t.Helper()
	n, err := Start(g.config(i))
	if err != nil {
		g.t.Fatal(err)
	}
	g.nodes[i] = n
}

func (g *group) stop(i int) {
	g.nodes[i].Close()
	g.nodes[i] = nil
}

func (g *group) leader(timeout time.Duration) int {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, n := range g.nodes {
			if n != nil && n.IsLeader() && n.live.ready.Load() {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatal("no controller leader")
	return -1
}

func (g *group) addrs() []string {
	var out []string
	for _, p := range g.peers {
		out = append(out, p.Addr)
	}
	return out
}

// call sends one request to any controller, following NOT_LEADER answers
// for up to timeout.
func call(t *testing.T, addrs []string, code int16, body any, timeout time.Duration) *protocol.Command {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for i := 0; time.Now().Before(deadline); i++ {
		addr := addrs[i%len(addrs)]
		resp, err := send(addr, code, body)
		if err == nil && resp.Code != protocol.ResponseControllerNotLeader {
			return resp
		}
		if err == nil {
			if l := resp.ExtFields[protocol.ControllerExtLeader]; l != "" {
				if resp, err = send(l, code, body); err == nil && resp.Code != protocol.ResponseControllerNotLeader {
					return resp
				}
			}
		}
		last = fmt.Sprint(err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no controller answered code %d: %s", code, last)
	return nil
}

func send(addr string, code int16, body any) (*protocol.Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := remoting.Dial(ctx, addr, remoting.ClientConfig{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req := protocol.NewRequest(code, nil)
	req.Body = protocol.EncodeControllerJSON(body)
	return c.Invoke(ctx, req)
}

func decodeInfo(t *testing.T, resp *protocol.Command) protocol.ReplicaSetInfo {
	t.Helper()
	if resp.Code != 0 {
		t.Fatalf("code %d: %s", resp.Code, resp.Remark)
	}
	info, err := protocol.DecodeReplicaSetInfo(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// brokers registers three replicas of c/b and returns their heartbeats.
func (g *group) brokers() []protocol.BrokerHeartbeatBody {
	var hbs []protocol.BrokerHeartbeatBody
	for i := 0; i < 3; i++ {
		hb := protocol.BrokerHeartbeatBody{Cluster: "c", BrokerName: "b", BrokerAddr: fmt.Sprintf("127.0.0.1:%d", 20000+i),
			HAAddr: fmt.Sprintf("127.0.0.1:%d", 21000+i), TimeoutMs: 800, MaxOffset: int64(100 * i)}
		info := decodeInfo(g.t, call(g.t, g.addrs(), protocol.RequestControllerRegisterBroker, hb, 10*time.Second))
		hb.BrokerID = info.BrokerID
		hbs = append(hbs, hb)
	}
	return hbs
}

// beatUntil heartbeats the brokers in hbs whose beating[i] is true, every
// 100 ms, until cond holds on an answer; it fails after timeout.
func (g *group) beatUntil(hbs []protocol.BrokerHeartbeatBody, beating []bool, timeout time.Duration, cond func(protocol.ReplicaSetInfo) bool) protocol.ReplicaSetInfo {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, hb := range hbs {
			if !beating[i] {
				continue
			}
			resp, err := send(g.addrs()[g.leaderOrZero()], protocol.RequestBrokerHeartbeat, hb)
			if err != nil || resp.Code != 0 {
				continue
			}
			if info := decodeInfo(g.t, resp); cond(info) {
				return info
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatal("condition not reached")
	return protocol.ReplicaSetInfo{}
}

func (g *group) leaderOrZero() int {
	for i, n := range g.nodes {
		if n != nil && n.IsLeader() {
			return i
		}
	}
	return 0
}

func TestGroupElectsAndFailsOver(t *testing.T) {
	g := newGroup(t)
	g.leader(10 * time.Second)
	hbs := g.brokers()
	all := []bool{true, true, true}
	info := g.beatUntil(hbs, all, 5*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterID != 0 })
	master := info.MasterID
	if info.MasterEpoch != 1 || info.MasterAddr != hbs[master-1].BrokerAddr {
		t.Fatalf("first election: %+v", info)
	}
	// the master reports one slave in sync
	slave := master%3 + 1
	resp := call(t, g.addrs(), protocol.RequestControllerAlterSyncState, protocol.AlterSyncStateSetBody{Cluster: "c", BrokerName: "b",
		MasterID: master, MasterEpoch: 1, SyncStateSetEpoch: info.SyncStateSetEpoch, SyncStateSet: []int64{master, slave}}, 5*time.Second)
	info = decodeInfo(t, resp)
	if !slices.Equal(info.SyncStateSet, sorted(master, slave)) {
		t.Fatalf("in-sync set %v", info.SyncStateSet)
	}
	// the master stops heartbeating: the in-sync slave, not the third
	// replica (whose offset is higher in some orders), is elected
	beating := []bool{true, true, true}
	beating[master-1] = false
	start := time.Now()
	info = g.beatUntil(hbs, beating, 5*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterID != master })
	if info.MasterID != slave || info.MasterEpoch != 2 || !slices.Equal(info.SyncStateSet, []int64{slave}) {
		t.Fatalf("failover: %+v (want master %d epoch 2)", info, slave)
	}
	t.Logf("failover after %v (heartbeat timeout 800 ms)", time.Since(start))
}

func sorted(ids ...int64) []int64 { slices.Sort(ids); return ids }

// TestGroupLeaderKillAndRestart kills the leader controller: the others
// elect a leader that keeps the state and does not elect away a master
// that keeps heartbeating; then all three restart from disk.
func TestGroupLeaderKillAndRestart(t *testing.T) {
	g := newGroup(t)
	g.leader(10 * time.Second)
	hbs := g.brokers()
	all := []bool{true, true, true}
	first := g.beatUntil(hbs, all, 5*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterID != 0 })
	old := g.leader(time.Second)
	g.stop(old)
	nl := g.leader(10 * time.Second)
	if nl == old {
		t.Fatal("dead node still leader")
	}
	// heartbeats continue through the leader change; seeding keeps the
	// master; wait past the seed timeout and the broker timeout
	until := time.Now().Add(3 * time.Second)
	info := g.beatUntil(hbs, all, 10*time.Second, func(protocol.ReplicaSetInfo) bool { return time.Now().After(until) })
	if info.MasterID != first.MasterID || info.MasterEpoch != first.MasterEpoch {
		t.Fatalf("leader change moved the master: %+v, was %+v", info, first)
	}
	g.start(old) // rejoins as a follower
	// one of the nodes that stayed up restarts from a raft snapshot (FSM
	// Snapshot and Restore), the others from their logs
	snap := (old + 1) % 3
	if err := g.nodes[snap].raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot of node %d: %v", snap, err)
	}
	for i := range g.nodes {
		g.stop(i)
	}
	for i := range g.nodes {
		g.start(i)
	}
	if st := g.nodes[snap].State(); len(st) != 1 || st[0].MasterID != first.MasterID || st[0].MasterEpoch != first.MasterEpoch {
		t.Fatalf("node %d did not restore its snapshot at start: %+v", snap, st)
	}
	g.leader(10 * time.Second)
	info = decodeInfo(t, call(t, g.addrs(), protocol.RequestControllerGetReplicaInfo, protocol.ElectMasterBody{Cluster: "c", BrokerName: "b"}, 10*time.Second))
	if info.MasterID != first.MasterID || info.MasterEpoch != first.MasterEpoch || len(info.Replicas) != 3 {
		t.Fatalf("state after restart: %+v, want master %d epoch %d", info, first.MasterID, first.MasterEpoch)
	}
}

// TestGroupQuorumLossStopsElections stops two controllers: the survivor
// answers no heartbeat as leader and elects nobody, even with the master
// silent; once a quorum is back, the election happens.
func TestGroupQuorumLossStopsElections(t *testing.T) {
	g := newGroup(t)
	g.leader(10 * time.Second)
	hbs := g.brokers()
	all := []bool{true, true, true}
	first := g.beatUntil(hbs, all, 5*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterID != 0 })
	l := g.leader(time.Second)
	survivor := (l + 1) % 3
	for i := range g.nodes {
		if i != survivor {
			g.stop(i)
		}
	}
	// the master goes silent too; the survivor must not elect
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for i, hb := range hbs {
			if int64(i+1) == first.MasterID {
				continue
			}
			resp, err := send(g.peers[survivor].Addr, protocol.RequestBrokerHeartbeat, hb)
			if err == nil && resp.Code == 0 {
				t.Fatalf("a controller without quorum answered a heartbeat as leader")
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, bs := range g.nodes[survivor].State() {
		if bs.MasterID != first.MasterID || bs.MasterEpoch != first.MasterEpoch {
			t.Fatalf("state changed without quorum: %+v", bs)
		}
	}
	// quorum back: the silent master is replaced (first election made
	// the in-sync set just the master, so only an unclean election could
	// pick another: the master is cleared instead, epoch 2)
	g.start((survivor + 1) % 3)
	beating := []bool{true, true, true}
	beating[first.MasterID-1] = false
	info := g.beatUntil(hbs, beating, 15*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterEpoch > first.MasterEpoch })
	if info.MasterID != 0 || info.MasterEpoch != first.MasterEpoch+1 {
		t.Fatalf("after quorum returned: %+v", info)
	}
}

// TestGroupLeaderChangeKeepsDetection: the master dies and the leader
// controller with it; the new leader seeds the replicas with the timeout
// they registered (800 ms), not SeedTimeout (30 s here), so the dead
// master is replaced within seconds.
func TestGroupLeaderChangeKeepsDetection(t *testing.T) {
	g := newGroupSeed(t, 30*time.Second)
	g.leader(10 * time.Second)
	hbs := g.brokers()
	all := []bool{true, true, true}
	first := g.beatUntil(hbs, all, 5*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterID != 0 })
	m := first.MasterID
	slave := m%3 + 1
	decodeInfo(t, call(t, g.addrs(), protocol.RequestControllerAlterSyncState, protocol.AlterSyncStateSetBody{Cluster: "c", BrokerName: "b",
		MasterID: m, MasterEpoch: first.MasterEpoch, SyncStateSetEpoch: first.SyncStateSetEpoch, SyncStateSet: []int64{m, slave}}, 5*time.Second))
	for _, bs := range g.nodes[g.leader(time.Second)].State() {
		if r, _ := bs.Replica(m); r.TimeoutMs != 800 {
			t.Fatalf("registered timeout not stored: %+v", r)
		}
	}
	g.stop(g.leader(time.Second))
	beating := []bool{true, true, true}
	beating[m-1] = false
	start := time.Now()
	info := g.beatUntil(hbs, beating, 8*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterID != m })
	if info.MasterID != slave {
		t.Fatalf("elected %+v, want %d", info, slave)
	}
	t.Logf("dead master replaced %v after the leader change", time.Since(start))
}

// TestGroupShrinkKeepsDeadMembers (review finding 6): a shrink is accepted
// although a member it keeps is not alive for the controller (cut from
// the controllers, still replicating); only a member a proposal adds must
// be alive. A refusal of the state machine carries the set after it.
func TestGroupShrinkKeepsDeadMembers(t *testing.T) {
	g := newGroup(t)
	g.leader(10 * time.Second)
	hbs := g.brokers()
	info := g.beatUntil(hbs, []bool{true, true, true}, 5*time.Second, func(i protocol.ReplicaSetInfo) bool { return i.MasterID != 0 })
	m := info.MasterID
	s1, s2 := m%3+1, (m+1)%3+1
	alter := func(epoch int32, seq int64, ids ...int64) *protocol.Command {
		return call(t, g.addrs(), protocol.RequestControllerAlterSyncState, protocol.AlterSyncStateSetBody{Cluster: "c", BrokerName: "b",
			MasterID: m, MasterEpoch: info.MasterEpoch, SyncStateSetEpoch: epoch, SyncStateSet: ids, Seq: seq}, 5*time.Second)
	}
	full := decodeInfo(t, alter(info.SyncStateSetEpoch, 10, m, s1, s2))
	beating := []bool{false, false, false}
	beating[m-1] = true
	g.beatUntil(hbs, beating, 5*time.Second, func(i protocol.ReplicaSetInfo) bool {
		return !slices.ContainsFunc(i.Replicas, func(r protocol.ReplicaInfo) bool { return r.BrokerID != m && r.Alive })
	})
	shrunk := decodeInfo(t, alter(full.SyncStateSetEpoch, 11, m, s1))
	if !slices.Equal(shrunk.SyncStateSet, sorted(m, s1)) || shrunk.AlterSeq != 11 {
		t.Fatalf("shrink keeping a member the controller sees dead: %+v", shrunk)
	}
	if resp := alter(shrunk.SyncStateSetEpoch, 12, m, s1, s2); resp.Code != protocol.ResponseControllerBrokerNotAlive {
		t.Fatalf("adding a dead member: code %d %s", resp.Code, resp.Remark)
	}
	if resp := alter(shrunk.SyncStateSetEpoch, math.MaxInt64, m, s1); resp.Code != protocol.ResponseControllerInvalidRequest {
		t.Fatalf("a sequence number far ahead of the clock: code %d %s", resp.Code, resp.Remark)
	}
	resp := alter(full.SyncStateSetEpoch, 9, m)
	if resp.Code != protocol.ResponseControllerFencedSyncStateSet {
		t.Fatalf("a proposal below the applied sequence: code %d %s", resp.Code, resp.Remark)
	}
	after, err := protocol.DecodeReplicaSetInfo(resp.Body)
	if err != nil || !slices.Equal(after.SyncStateSet, shrunk.SyncStateSet) || after.SyncStateSetEpoch != shrunk.SyncStateSetEpoch {
		t.Fatalf("refusal body %+v (%v), want the committed set %v", after, err, shrunk.SyncStateSet)
	}
}
