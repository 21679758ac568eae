package controller

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// liveness is the leader's heartbeat table (Java's
// DefaultBrokerHeartbeatManager). It is local to the leader and emptied
// whenever leadership changes: a new leader knows nobody's liveness, so it
// elects nobody until replicas heartbeat to it, and it seeds every
// replica as alive, from its own start, for the heartbeat timeout the
// replica registered with (Config.SeedTimeout if none): a live master is
// not elected away before it heartbeats to the new leader, and a dead one
// is replaced as soon as its fencing lease has surely run out.
type liveness struct {
	mu    sync.Mutex
	sets  map[string]map[int64]Live
	ready atomic.Bool // leader and caught up with the log (Barrier done)
}

func newLiveness() *liveness { return &liveness{sets: map[string]map[int64]Live{}} }

func (l *liveness) reset() {
	l.mu.Lock()
	l.sets = map[string]map[int64]Live{}
	l.mu.Unlock()
}

// seed marks every replica of sets alive as of now, for the heartbeat
// timeout it registered with (def if it sent none).
func (l *liveness) seed(sets []BrokerSet, now time.Time, def time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, bs := range sets {
		m := map[int64]Live{}
		for _, r := range bs.Replicas {
			timeout := def
			if r.TimeoutMs > 0 {
				timeout = time.Duration(r.TimeoutMs) * time.Millisecond
			}
			m[r.ID] = Live{Last: now, Timeout: timeout, Seeded: true}
		}
		l.sets[setKey(bs.Cluster, bs.Name)] = m
	}
}

func (l *liveness) beat(cluster, name string, id int64, v Live) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := setKey(cluster, name)
	m := l.sets[k]
	if m == nil {
		m = map[int64]Live{}
		l.sets[k] = m
	}
	m[id] = v
}

// snapshot returns a copy of one set's table.
func (l *liveness) snapshot(cluster, name string) map[int64]Live {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int64]Live{}
	for id, v := range l.sets[setKey(cluster, name)] {
		out[id] = v
	}
	return out
}

// leaderLoop follows leadership: on gaining it, the table is emptied and
// the node serves only after a barrier (every earlier entry applied), so
// its answers and decisions see all committed state.
func (n *Node) leaderLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.raft.LeaderCh():
			n.live.ready.Store(false)
			n.live.reset()
			if !leader {
				n.log.Info("controller: lost leadership", "id", n.self.ID)
				continue
			}
			if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
				n.log.Warn("controller: barrier after election failed", "err", err)
				continue
			}
			n.live.seed(n.fsm.all(), time.Now(), n.cfg.SeedTimeout)
			n.live.ready.Store(true)
			n.log.Info("controller: leader", "id", n.self.ID)
		}
	}
}

// scanLoop is the leader's failure detector: every ScanInterval (or when
// kicked by a registration) it applies the election rule to every set.
func (n *Node) scanLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.kick:
		}
		if n.IsLeader() && n.live.ready.Load() {
			n.scan(time.Now())
		}
	}
}

func (n *Node) kickScan() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Node) scan(now time.Time) {
	for _, bs := range n.fsm.all() {
		n.scanSet(bs, now)
	}
}

// scanSet decides and proposes an election for one broker set, holding
// electMu (Node) against heartbeat answers; bs is read again under it.
func (n *Node) scanSet(old BrokerSet, now time.Time) {
	n.electMu.Lock()
	defer n.electMu.Unlock()
	bs, ok := n.fsm.get(old.Cluster, old.Name)
	if !ok {
		return
	}
	if t := time.Now(); t.After(now) {
		now = t // a heartbeat counted while we waited for electMu is not in the past
	}
	op, ok := Decide(bs, n.live.snapshot(bs.Cluster, bs.Name), now, n.cfg.Unclean)
	if !ok {
		return
	}
	res, err := n.Propose(op)
	switch {
	case err != nil:
		n.log.Warn("controller: election not committed", "broker", bs.Name, "err", err)
	case res.Code != 0:
		n.log.Warn("controller: election refused", "broker", bs.Name, "code", res.Code, "remark", res.Remark)
	default:
		n.log.Info("controller: elected", "broker", bs.Name, "master", res.Set.MasterID,
			"epoch", res.Set.MasterEpoch, "unclean", op.Unclean, "previous", bs.MasterID)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func splitFields(s string, sep byte) []string { return strings.Split(s, string(sep)) }
