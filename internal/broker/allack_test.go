package broker

import (
	"context"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// TestAllAckSyncMaster: a controller-mode SYNC_MASTER (HAConfig.AllAck)
// refuses a send unwritten with code 1 / "in-sync replicas not enough"
// while its in-sync set is below minInSyncReplicas, acknowledges once
// every in-sync slave has the bytes, and times out (FLUSH_SLAVE_TIMEOUT)
// while one in-sync slave is missing, although another has them.
func TestAllAckSyncMaster(t *testing.T) {
	m, mc := startBroker(t, func(c *Config) {
		c.HA.Role, c.HA.AllAck, c.HA.MinInSync = RoleSyncMaster, true, 2
		c.Store.SyncFlushTimeout = 2 * time.Second // the sends that must succeed get time under CI load
	})
	addTopic(t, m, "AT", 1)
	before := m.store.WrittenOffset()
	resp := produce(t, mc, protocol.SendMessage, sendHeader("AT", 0, ""), []byte("alone"))
	if resp.Code != protocol.ResponseSystemError || resp.Remark != "in-sync replicas not enough" {
		t.Fatalf("master alone: code %d remark %q", resp.Code, resp.Remark)
	}
	if m.store.WrittenOffset() != before {
		t.Fatal("a refused send was written")
	}
	s, _ := startBroker(t, func(c *Config) {
		c.BrokerID = 1
		c.HA = HAConfig{Role: RoleSlave, MasterAddress: m.HAAddr()}
	})
	waitFor(t, "slave connected", func() bool { return m.HAStatus().Slaves == 1 })
	m.SetSyncStateSet([]int64{1}, nil)
	mustSendOK(t, produce(t, mc, protocol.SendMessage, sendHeader("AT", 0, ""), []byte("both")))
	if got, want := s.store.WrittenOffset(), m.store.MaxPhysOffset(); got < want {
		t.Fatalf("acknowledged with the slave at %d of %d", got, want)
	}
	m.SetSyncStateSet([]int64{1}, []int64{1, 2}) // slave 2 joining, not connected
	resp = produce(t, mc, protocol.SendMessage, sendHeader("AT", 0, ""), []byte("two needed"))
	if resp.Code != protocol.ResponseFlushSlaveTimeout {
		t.Fatalf("in-sync slave 2 missing: code %d remark %q", resp.Code, resp.Remark)
	}
	if st := m.HAStatus(); st.Confirmed == 0 || st.Confirmed >= m.store.MaxPhysOffset() {
		t.Fatalf("confirmed %d, log end %d", st.Confirmed, m.store.MaxPhysOffset())
	}
}

// TestNoSendServedBeforeReplication: the remoting server serves only once
// replication is set up, so the first send an all-in-sync SYNC_MASTER can
// serve already obeys minInSyncReplicas (it was acknowledged by the master
// alone while the server started before startHA).
func TestNoSendServedBeforeReplication(t *testing.T) {
	var first *protocol.Command
	testHookServing = func(b *Broker) {
		addTopic(t, b, "AT0", 1)
		c, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{})
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		first = produce(t, c, protocol.SendMessage, sendHeader("AT0", 0, ""), []byte("first"))
	}
	defer func() { testHookServing = nil }()
	startBroker(t, func(c *Config) {
		c.HA.Role, c.HA.AllAck, c.HA.MinInSync = RoleSyncMaster, true, 2
		c.Store.SyncFlushTimeout = 500 * time.Millisecond
	})
	if first == nil || first.Code != protocol.ResponseSystemError || first.Remark != "in-sync replicas not enough" {
		t.Fatalf("first send served: %+v", first)
	}
}

// TestAllAckConsumeVisibility (review finding 7): an all-in-sync master
// builds consume-queue entries only up to its confirm offset (every
// in-sync slave has the bytes), as Java's allAckInSyncStateSet does: a
// send stored while an in-sync slave is missing is not consumable until
// the set holds it; a lone all-in-sync master (minInSyncReplicas 1) and
// the slave dispatch as before.
func TestAllAckConsumeVisibility(t *testing.T) {
	m, mc := startBroker(t, func(c *Config) {
		c.HA.Role, c.HA.AllAck, c.HA.MinInSync = RoleSyncMaster, true, 1
		c.Store.SyncFlushTimeout = 300 * time.Millisecond
	})
	addTopic(t, m, "AV", 1)
	mustSendOK(t, produce(t, mc, protocol.SendMessage, sendHeader("AV", 0, ""), []byte("lone")))
	waitFor(t, "a lone master's entry", func() bool { return m.store.MaxOffsetInQueue("AV", 0) == 1 })
	s, _ := startBroker(t, func(c *Config) {
		c.BrokerID = 1
		c.HA = HAConfig{Role: RoleSlave, MasterAddress: m.HAAddr()}
	})
	waitFor(t, "slave connected", func() bool { return m.HAStatus().Slaves == 1 })
	m.SetSyncStateSet([]int64{1}, []int64{1, 2}) // slave 2 joining, not connected
	resp := produce(t, mc, protocol.SendMessage, sendHeader("AV", 0, ""), []byte("two needed"))
	if resp.Code != protocol.ResponseFlushSlaveTimeout {
		t.Fatalf("in-sync slave 2 missing: code %d remark %q", resp.Code, resp.Remark)
	}
	waitFor(t, "the slave's entry", func() bool { return s.store.MaxOffsetInQueue("AV", 0) == 2 })
	time.Sleep(300 * time.Millisecond) // several dispatcher rounds
	if got := m.store.MaxOffsetInQueue("AV", 0); got != 1 {
		t.Fatalf("master's queue ends at %d with the send not on slave 2, want 1", got)
	}
	m.SetSyncStateSet([]int64{1}, nil) // the joining slave given up: slave 1 alone has it
	waitFor(t, "the entry once the in-sync set holds it", func() bool { return m.store.MaxOffsetInQueue("AV", 0) == 2 })
}

// TestSendBackNotDurableIsAnError: CONSUMER_SEND_MSG_BACK answers SUCCESS
// only for PUT_OK, as Java does; a retry record whose slave wait timed out
// is SYSTEM_ERROR with the status, so the consumer sends the retry itself
// instead of moving past a message whose copy may be lost.
func TestSendBackNotDurableIsAnError(t *testing.T) {
	m, mc := startBroker(t, func(c *Config) {
		c.HA.Role, c.HA.AllAck, c.HA.MinInSync = RoleSyncMaster, true, 2
		c.Store.SyncFlushTimeout = 2 * time.Second // the sends that must succeed get time under CI load
	})
	addTopic(t, m, "SBD", 1)
	startBroker(t, func(c *Config) {
		c.BrokerID = 1
		c.HA = HAConfig{Role: RoleSlave, MasterAddress: m.HAAddr()}
	})
	waitFor(t, "slave connected", func() bool { return m.HAStatus().Slaves == 1 })
	m.SetSyncStateSet([]int64{1}, nil)
	rh := mustSendOK(t, produce(t, mc, protocol.SendMessage, sendHeader("SBD", 0, ""), []byte("orig")))
	_, off, err := message.ParseOffsetMsgID(rh.MsgID)
	if err != nil {
		t.Fatal(err)
	}
	if resp := call(t, mc, sendBackReq("cg-sbd", off)); resp.Code != protocol.ResponseSuccess {
		t.Fatalf("send back with the in-sync set holding it: %d %q", resp.Code, resp.Remark)
	}
	m.SetSyncStateSet([]int64{1}, []int64{1, 2}) // slave 2 joining, not connected
	resp := call(t, mc, sendBackReq("cg-sbd", off))
	if resp.Code != protocol.ResponseSystemError || resp.Remark != "FLUSH_SLAVE_TIMEOUT" {
		t.Fatalf("send back with an in-sync slave missing: code %d remark %q", resp.Code, resp.Remark)
	}
}
