package main

import (
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// failoverRounds: kill -9 rounds of TestFailoverKillLoop (CI runs 2;
// BENCHMARKS.md's distribution was measured with more).
var (
	failoverRounds   = flag.Int("failover-rounds", 2, "kill -9 rounds in TestFailoverKillLoop")
	failoverTimeout  = flag.Duration("failover-timeout", 3*time.Second, "controllerHeartBeatTimeoutMills of TestFailoverKillLoop's brokers")
	failoverInterval = flag.Duration("failover-interval", 300*time.Millisecond, "brokerHeartbeatInterval of the test brokers")
)

func newAcks() *acks { return &acks{acked: map[int64]string{}, refused: map[int16]int{}} }

// inSync asks the controllers for broker-a's in-sync set size and epoch.
func (c *cluster) replicaInfo() (protocol.ReplicaSetInfo, bool) {
	body := protocol.EncodeControllerJSON(protocol.ElectMasterBody{Cluster: "FailoverCluster", BrokerName: "broker-a"})
	for _, addr := range c.ctrlAddr {
		cl, err := client(addr)
		if err != nil {
			continue
		}
		req := protocol.NewRequest(protocol.RequestControllerGetReplicaInfo, nil)
		req.Body = body
		resp, err := cl.Invoke(c.t.Context(), req)
		if err != nil || resp.Code != protocol.ResponseSuccess {
			continue
		}
		if info, err := protocol.DecodeReplicaSetInfo(resp.Body); err == nil {
			return info, true
		}
	}
	return protocol.ReplicaSetInfo{}, false
}

func (c *cluster) waitInSync(n int, timeout time.Duration) protocol.ReplicaSetInfo {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if info, ok := c.replicaInfo(); ok && len(info.SyncStateSet) == n {
			return info
		}
		time.Sleep(100 * time.Millisecond)
	}
	info, _ := c.replicaInfo()
	c.t.Fatalf("in-sync set never reached %d members: %+v", n, info)
	return info
}

// TestFailoverKillLoop: under SYNC_MASTER load from 4 senders that always
// send to the master the nameservers name, the master is killed with
// SIGKILL, a slave is elected and takes writes, the killed broker
// restarts and rejoins as a slave; repeated --failover-rounds times
// (bounded by 4 minutes). Every acknowledged message must read back at
// its offset on the final master. Logs the time from kill to a routed,
// writable new master.
func TestFailoverKillLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover")
	}
	c := newCluster(t, *failoverTimeout)
	c.waitInSync(3, 30*time.Second)
	a := newAcks()
	stop := make(chan struct{})
	wg := c.load(a, 4, stop)
	var times []time.Duration
	deadline := time.Now().Add(4 * time.Minute)
	for r := 0; r < *failoverRounds && time.Now().Before(deadline); r++ {
		time.Sleep(1500 * time.Millisecond)
		m := c.master()
		killed := time.Now()
		c.brokers[m].kill9()
		nm := c.waitMaster(m, 30*time.Second)
		times = append(times, time.Since(killed))
		t.Logf("round %d: master %d killed, %d elected after %v", r, m, nm, times[len(times)-1])
		if times[len(times)-1] > 8*time.Second {
			c.logEvents(killed) // why so slow: role decisions and switches since the kill
		}
		c.brokers[m].start(t)
		c.waitInSync(3, 60*time.Second)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	final := c.waitMaster(-1, 10*time.Second)
	c.check(a, final)
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("%d rounds; %d sends, %d acknowledged and verified on the final master; refused by code: %v; time to failover (sorted): %v",
		len(times), a.n, len(a.acked), a.refused, times)
	if len(a.acked) == 0 {
		t.Fatal("nothing acknowledged")
	}
	cuts := 0
	for _, p := range c.brokers {
		cuts += strings.Count(p.log.String(), "truncated to the history")
	}
	t.Logf("a rejoining old master truncated unreplicated bytes %d times", cuts)
	failoverTimes(times)
}

// logEvents logs the agents', controllers' and role switches' lines
// written since t0.
func (c *cluster) logEvents(t0 time.Time) {
	stamp := t0.UTC().Format("2006-01-02T15:04:05.000")
	for name, ps := range map[string][]*proc{"broker": c.brokers, "controller": c.ctrls} {
		for i, p := range ps {
			for _, line := range strings.Split(p.log.String(), "\n") {
				at, ok := strings.CutPrefix(line, "time=")
				if !ok || len(at) < len(stamp) || at[:len(stamp)] < stamp {
					continue
				}
				if strings.Contains(line, "agent:") || strings.Contains(line, "controller:") || strings.Contains(line, "failover:") ||
					strings.Contains(line, "broker started") || strings.Contains(line, "truncat") {
					c.t.Logf("%s %d: %s", name, i, line)
				}
			}
		}
	}
}

// failoverTimes prints the distribution for BENCHMARKS.md.
func failoverTimes(times []time.Duration) {
	if len(times) == 0 {
		return
	}
	q := func(p float64) time.Duration { return times[min(len(times)-1, int(p*float64(len(times))))] }
	fmt.Printf("failover: n=%d min=%v p50=%v p90=%v max=%v\n", len(times), times[0], q(0.5), q(0.9), times[len(times)-1])
}

// TestFailoverPartitionedMaster cuts the master off from every
// controller (not from its slaves): a slave is elected, and once it has
// switched the old master can no longer collect the acknowledgement of
// its whole in-sync set (allAckInSyncStateSet), so it refuses writes
// (they time out) although it is not fenced; while cut it goes on
// registering as brokerId 0 every second, but the nameservers never route
// brokerId 0 to it again (its master epoch, the stateVersion, is older);
// when the cut heals it rejoins as a slave of the new master. Every
// acknowledged message reads back on the final master.
func TestFailoverPartitionedMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover")
	}
	c := newCluster(t, 3*time.Second)
	before := c.waitInSync(3, 30*time.Second)
	a := newAcks()
	stop := make(chan struct{})
	wg := c.load(a, 4, stop)
	time.Sleep(1500 * time.Millisecond)
	m := c.master()
	c.cutController(m, true)
	nm := c.waitMaster(m, 30*time.Second)
	cutAt := time.Now()
	polled, pollStop := c.pollNotRoutedAsMaster(m)
	// the new master has switched (it took the probe): the old one lacks
	// its acknowledgement, so the send is stored but times out waiting
	// for the whole in-sync set (FLUSH_SLAVE_TIMEOUT), which is this
	// mechanism and not a fence (a fenced master refuses the send
	// unwritten, SERVICE_NOT_AVAILABLE) nor a refused connection; the
	// client waits past the broker's syncFlushTimeout (5 s)
	if code, _, err := sendWithin(c.bAddrs[m], "to the old master", 8*time.Second); err != nil || code != protocol.ResponseFlushSlaveTimeout {
		t.Fatalf("send to the partitioned old master: code %d err %v, want FLUSH_SLAVE_TIMEOUT (%d)", code, err, protocol.ResponseFlushSlaveTimeout)
	}
	time.Sleep(time.Until(cutAt.Add(5 * time.Second))) // ≥ 5 of the old master's registrations
	close(pollStop)
	if p := <-polled; p.err != "" || p.polls < 100 {
		t.Fatalf("routes during the cut (%d polls): %s", p.polls, p.err)
	}
	c.cutController(m, false)
	info := c.waitInSync(3, 60*time.Second)
	if info.MasterEpoch <= before.MasterEpoch || !slices.Contains(info.SyncStateSet, before.MasterID) {
		t.Fatalf("after the partition: %+v (before %+v)", info, before)
	}
	close(stop)
	wg.Wait()
	c.check(a, nm)
	t.Logf("master %d partitioned, %d elected; %d acknowledged and verified; refused by code %v", m, nm, len(a.acked), a.refused)
}

// TestFailoverControllerLoss: with one controller killed the quorum
// survives and a killed master is still replaced; with two killed no
// election can happen and the master KEEPS acknowledging writes, since
// every in-sync slave still acknowledges them (allAckInSyncStateSet: no
// lease to run out, controller/doc.go); when a quorum is back nothing has
// changed: same master, same epoch, same in-sync set.
func TestFailoverControllerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover")
	}
	c := newCluster(t, 3*time.Second)
	c.waitInSync(3, 30*time.Second)
	c.ctrls[0].kill9()
	m := c.master()
	c.brokers[m].kill9()
	nm := c.waitMaster(m, 30*time.Second)
	c.brokers[m].start(t)
	info := c.waitInSync(3, 60*time.Second)
	code, off, err := sendOne(c.bAddrs[nm], "before quorum loss")
	if err != nil || code != protocol.ResponseSuccess {
		t.Fatalf("send: %d %v", code, err)
	}
	c.ctrls[1].kill9()
	lost := time.Now()
	acked := map[int64]string{}
	for i := 0; time.Since(lost) < 5*time.Second; i++ { // well past the heartbeat timeout (3 s)
		body := fmt.Sprintf("no quorum %d", i)
		code, off, err := sendOne(c.bAddrs[nm], body)
		if err != nil || code != protocol.ResponseSuccess {
			t.Fatalf("%v after the quorum was lost: a send was refused: %d %v", time.Since(lost), code, err)
		}
		acked[off] = body
		time.Sleep(50 * time.Millisecond)
	}
	if body, err := readAt(c.bAddrs[nm], off); err != nil || body != "before quorum loss" {
		t.Fatalf("read without quorum: %q %v", body, err)
	}
	if m2 := c.master(); m2 != nm {
		t.Fatalf("routes moved to %d without a quorum (master %d)", m2, nm)
	}
	c.ctrls[1].start(t)
	if after := c.waitInSync(3, 30*time.Second); after.MasterEpoch != info.MasterEpoch || after.MasterID != info.MasterID ||
		after.SyncStateSetEpoch != info.SyncStateSetEpoch {
		t.Fatalf("quorum loss changed the broker set: %+v, was %+v", after, info)
	}
	if code, _, err := sendOne(c.bAddrs[nm], "quorum back"); err != nil || code != protocol.ResponseSuccess {
		t.Fatalf("send with the quorum back: %d %v", code, err)
	}
	for off, body := range acked {
		if got, err := readAt(c.bAddrs[nm], off); err != nil || got != body {
			t.Fatalf("message acknowledged without quorum at %d: %q %v", off, got, err)
		}
	}
	t.Logf("%d sends acknowledged without a controller quorum", len(acked))
}

// TestFailoverControllerLossSlaveKilled: with the controller quorum lost
// no in-sync change can be committed, so when an in-sync slave is killed
// the master does not acknowledge with the smaller set: sends fail (time
// out). With the quorum back the set shrinks (or the slave returns) and
// writes resume in the same epoch.
func TestFailoverControllerLossSlaveKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover")
	}
	c := newCluster(t, 3*time.Second)
	info := c.waitInSync(3, 30*time.Second)
	m := c.master()
	c.ctrls[0].kill9()
	c.ctrls[1].kill9()
	if code, _, err := sendOne(c.bAddrs[m], "quorum lost, all in sync"); err != nil || code != protocol.ResponseSuccess {
		t.Fatalf("send with every in-sync slave alive: %d %v", code, err)
	}
	s := (m + 1) % 3
	c.brokers[s].kill9()
	for i := range 2 {
		if code, _, err := sendOne(c.bAddrs[m], fmt.Sprintf("one in-sync slave dead %d", i)); err == nil && code == protocol.ResponseSuccess {
			t.Fatal("a send was acknowledged without every in-sync slave, no quorum to shrink the set")
		} else {
			t.Logf("send %d: code %d err %v", i, code, err)
		}
	}
	c.ctrls[0].start(t)
	c.ctrls[1].start(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _, err := sendOne(c.bAddrs[m], "quorum back")
		if err == nil && code == protocol.ResponseSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume: %d %v", code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if after, _ := c.replicaInfo(); after.MasterEpoch != info.MasterEpoch || after.MasterID != info.MasterID {
		t.Fatalf("the master changed: %+v, was %+v", after, info)
	}
}

// pollResult is what pollNotRoutedAsMaster saw.
type pollResult struct {
	polls int
	err   string // the first route naming the old master, if any
}

// pollNotRoutedAsMaster polls every nameserver's routes every 20 ms until
// stop is closed and reports whether any of them routed brokerId 0 of
// broker-a to broker old (the cluster info is what routes are built
// from).
func (c *cluster) pollNotRoutedAsMaster(old int) (<-chan pollResult, chan struct{}) {
	out, stop := make(chan pollResult, 1), make(chan struct{})
	go func() {
		var r pollResult
		defer func() { out <- r }()
		for {
			for i, ns := range c.ns {
				addrs := ns.ClusterInfo().BrokerAddrTable["broker-a"].BrokerAddrs
				if a := addrs[protocol.MasterID]; a == c.bAddrs[old] && r.err == "" {
					r.err = fmt.Sprintf("nameserver %d routes brokerId 0 to the old master %s (poll %d): %v", i, a, r.polls, addrs)
				}
			}
			r.polls++
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out, stop
}
