package main

// Failover tests beyond a controller partition: a master cut from the
// controllers AND its slaves (issue 13), and a cold restart of every
// broker. They check what holds whether a SYNC_MASTER send waits for one
// slave or for the whole in-sync set: no acknowledged message is lost,
// an isolated master acknowledges nothing, a slave is elected, and a
// rejoining old master cuts the bytes it alone wrote (README "Cluster
// with automatic failover", "Epochs and role switching").

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/protocol"
)

// TestFailoverIsolatedMaster: under load, the master is cut from every
// controller and every slave (its inbound HA connections are closed and
// new ones refused). It must acknowledge nothing from then on, a slave is
// elected and takes writes; when the cut heals the old master rejoins as
// a slave, cutting what it wrote alone during the cut (kept in .broken
// copies, its epochs becoming the new master's), and every acknowledged
// message reads back at its offset on the final master.
func TestFailoverIsolatedMaster(t *testing.T) {
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
	if m < 0 {
		t.Fatal("no master routed under load")
	}
	c.cutHA(m, true)
	c.cutController(m, true)
	stopProbe := make(chan struct{})
	pr := c.probe(m, stopProbe)
	nm := c.waitMaster(m, 30*time.Second)
	c.waitAcks(a, 20, 30*time.Second) // writes resume on the new master
	close(stopProbe)
	pr.wg.Wait()
	if len(pr.acked) > 0 {
		t.Fatalf("the isolated old master acknowledged %d sends (offsets %v)", len(pr.acked), pr.acked)
	}
	oldEnd, err := c.logEnd(m)
	if err != nil {
		t.Fatalf("old master's log end: %v", err)
	}
	c.cutController(m, false)
	c.cutHA(m, false)
	info := c.waitInSync(3, 60*time.Second)
	if info.MasterEpoch <= before.MasterEpoch || info.MasterID == before.MasterID || !slices.Contains(info.SyncStateSet, before.MasterID) {
		t.Fatalf("after the cut: %+v (before %+v)", info, before)
	}
	close(stop)
	wg.Wait()
	final := c.waitMaster(-1, 10*time.Second)
	c.check(a, final)
	newEpochs, err := c.epochs(final)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(newEpochs, func(e ha.Entry) bool { return e.Epoch > before.MasterEpoch })
	if i < 0 {
		t.Fatalf("the final master's epochs %v have none above %d", newEpochs, before.MasterEpoch)
	}
	start := newEpochs[i].Start // where the old master's epoch ended in the new history
	t.Logf("master %d isolated, %d elected; old master's log end %d, the new epoch starts at %d; probes to the old master: %v; %d acknowledged and verified; refused by code %v",
		m, nm, oldEnd, start, pr.codes, len(a.acked), a.refused)
	if oldEnd > start {
		c.checkTruncated(m, final)
	} else {
		t.Logf("the old master wrote nothing the new master lacks: no truncation to check")
	}
}

// TestFailoverColdRestart: under load with all three in sync, every
// broker is killed with SIGKILL at once (the controllers keep running).
// Both slaves are started again first, well within the controllers'
// heartbeat timeout so each reports its log before the election (a
// replica that reports nothing cannot be preferred for its log: README
// "Limits"); one of them must be elected and take writes. The old master
// is started last and rejoins as a slave. Every acknowledged message
// reads back at its offset on the final master.
func TestFailoverColdRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover")
	}
	c := newCluster(t, 6*time.Second)
	before := c.waitInSync(3, 30*time.Second)
	a := newAcks()
	stop := make(chan struct{})
	wg := c.load(a, 4, stop)
	time.Sleep(1500 * time.Millisecond)
	m := c.master()
	if m < 0 {
		t.Fatal("no master routed under load")
	}
	c.killAll9()
	acked := c.ackCount(a)
	for i := range c.brokers {
		if i != m {
			c.brokers[i].start(t)
		}
	}
	nm := c.waitMaster(m, 60*time.Second)
	c.waitAcks(a, 20, 30*time.Second)
	c.brokers[m].start(t)
	info := c.waitInSync(3, 60*time.Second)
	if info.MasterEpoch <= before.MasterEpoch || info.MasterID == before.MasterID {
		t.Fatalf("after the cold restart: %+v (before %+v)", info, before)
	}
	close(stop)
	wg.Wait()
	final := c.waitMaster(-1, 10*time.Second)
	c.check(a, final)
	c.checkEpochPrefix(m, final)
	t.Logf("all killed under load (master %d, %d acknowledged); %d elected; %d acknowledged in all and verified on %d; refused by code %v",
		m, acked, nm, len(a.acked), final, a.refused)
}

// probed is what sends straight to one broker got.
type probed struct {
	wg    sync.WaitGroup
	acked []int64       // offsets acknowledged
	codes map[int16]int // refusals by code, -1: transport error
}

// probe sends to broker i every 50 ms, bypassing the routes, until stop
// closes.
func (c *cluster) probe(i int, stop <-chan struct{}) *probed {
	p := &probed{codes: map[int16]int{}}
	p.wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			code, off, err := sendOne(c.bAddrs[i], fmt.Sprintf("probe-%d", n))
			switch {
			case err != nil:
				p.codes[-1]++
			case code == protocol.ResponseSuccess:
				p.acked = append(p.acked, off)
			default:
				p.codes[code]++
			}
		}
	})
	return p
}

func (c *cluster) ackCount(a *acks) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

// waitAcks waits until n more sends than now are acknowledged.
func (c *cluster) waitAcks(a *acks, n int, timeout time.Duration) {
	c.t.Helper()
	want := c.ackCount(a) + n
	deadline := time.Now().Add(timeout)
	for c.ackCount(a) < want {
		if time.Now().After(deadline) {
			c.t.Fatalf("writes did not resume: %d acknowledged, want %d", c.ackCount(a), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killAll9 sends SIGKILL to every running broker before waiting for any.
func (c *cluster) killAll9() {
	for _, p := range c.brokers {
		if p.cmd != nil {
			p.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	for _, p := range c.brokers {
		p.kill9() // waits; the signal again is harmless
	}
}

// storeDir is broker i's --store directory.
func (c *cluster) storeDir(i int) string {
	args := c.brokers[i].args
	if j := slices.Index(args, "--store"); j >= 0 && j+1 < len(args) {
		return args[j+1]
	}
	c.t.Fatalf("broker %d has no --store: %v", i, args)
	return ""
}

// logEnd asks broker i for its commit-log max offset
// (GET_BROKER_RUNTIME_INFO commitLogMaxOffset).
func (c *cluster) logEnd(i int) (int64, error) {
	cl, err := client(c.bAddrs[i])
	if err != nil {
		return 0, err
	}
	resp, err := cl.Invoke(c.t.Context(), protocol.NewRequest(protocol.GetBrokerRuntimeInfo, nil))
	if err != nil {
		return 0, err
	}
	if resp.Code != protocol.ResponseSuccess {
		return 0, fmt.Errorf("runtime info: code %d %s", resp.Code, resp.Remark)
	}
	var kv protocol.KVTable
	if err := json.Unmarshal(resp.Body, &kv); err != nil {
		return 0, err
	}
	return strconv.ParseInt(kv.Table["commitLogMaxOffset"], 10, 64)
}

// epochs reads broker i's epoch file through a copy (opening the live
// file would remove a replacement being written).
func (c *cluster) epochs(i int) ([]ha.Entry, error) {
	b, err := os.ReadFile(filepath.Join(c.storeDir(i), broker.EpochFileName))
	if err != nil {
		return nil, err
	}
	cp := filepath.Join(c.t.TempDir(), broker.EpochFileName)
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		return nil, err
	}
	e, err := ha.OpenEpochFile(cp)
	if err != nil {
		return nil, err
	}
	return e.Entries(), nil
}

// checkTruncated asserts that broker old, which wrote bytes the new
// master never had, cut them when it rejoined: its log says so, the cut
// bytes are kept in .broken copies, and its epochs are a prefix of the
// new master's (no epoch of its own past the cut).
func (c *cluster) checkTruncated(old, master int) {
	c.t.Helper()
	if !strings.Contains(c.brokers[old].log.String(), "truncated to the history") {
		c.t.Fatalf("broker %d rejoined without truncating its extra bytes", old)
	}
	kept, _ := filepath.Glob(filepath.Join(c.storeDir(old), "commitlog", "*.broken*"))
	if len(kept) == 0 {
		c.t.Fatalf("broker %d truncated but kept no .broken copy", old)
	}
	oe := c.checkEpochPrefix(old, master)
	c.t.Logf("broker %d truncated; kept %v; epochs %v", old, kept, oe)
}

// checkEpochPrefix asserts that the epochs of broker i, a slave in sync
// with master, are a prefix of the master's: it kept no epoch of its own.
func (c *cluster) checkEpochPrefix(i, master int) []ha.Entry {
	c.t.Helper()
	oe, err := c.epochs(i)
	if err != nil {
		c.t.Fatal(err)
	}
	ne, err := c.epochs(master)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(oe) > len(ne) || !slices.Equal(oe, ne[:len(oe)]) {
		c.t.Fatalf("broker %d's epochs %v are not a prefix of the master's %v", i, oe, ne)
	}
	return oe
}
