package failover

import (
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// TestAllAckSetCarriesOverSwitch: a node with AllAck refuses sends below
// minInSyncReplicas, waits for every slave SyncStateSet names, and keeps
// the set across a SwitchRole (a master restarted in a new epoch never
// starts with a smaller set than it was told).
func TestAllAckSetCarriesOverSwitch(t *testing.T) {
	ln, haLn := listen(t), listen(t)
	o := nodeOptions(t.TempDir(), ln, haLn)
	o.AllAck, o.MinInSync = true, 2
	m := startNode(t, o, Role{Master: true, Epoch: 1})
	mc := dial(t, ln.Addr().String())
	if code, remark, _ := send(t, mc, "alone"); code != protocol.ResponseSystemError || remark != "in-sync replicas not enough" {
		t.Fatalf("master alone: %d %q", code, remark)
	}
	sln := listen(t)
	startNode(t, nodeOptions(t.TempDir(), sln, listen(t)),
		Role{BrokerID: 1, MasterHAAddr: haLn.Addr().String(), MasterAddr: ln.Addr().String()})
	waitFor(t, "slave connected", func() bool { return m.Status().HA.Slaves == 1 })
	m.SyncStateSet([]int64{1}, nil)
	if code, remark, _ := send(t, mc, "both"); code != protocol.ResponseSuccess {
		t.Fatalf("in-sync slave connected: %d %q", code, remark)
	}
	m.SyncStateSet([]int64{1, 2}, nil)
	if code, _, _ := send(t, mc, "two needed"); code != protocol.ResponseFlushSlaveTimeout {
		t.Fatalf("in-sync slave 2 missing: %d", code)
	}
	if err := m.SwitchRole(Role{Master: true, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	mc = dial(t, ln.Addr().String())
	waitFor(t, "slave reconnected", func() bool { return m.Status().HA.Slaves == 1 })
	if code, _, _ := send(t, mc, "after the switch"); code != protocol.ResponseFlushSlaveTimeout {
		t.Fatalf("after the switch, in-sync slave 2 still missing: %d", code)
	}
	m.SyncStateSet([]int64{1}, nil)
	if code, remark, _ := send(t, mc, "shrunk"); code != protocol.ResponseSuccess {
		t.Fatalf("after the committed shrink: %d %q", code, remark)
	}
}
