package broker

import (
	"encoding/binary"
	"net"
	"strconv"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// stuckSlave connects to a master's HA port as a slave starting at offset
// 0 and then never reads nor acknowledges: its lag grows with every write.
func stuckSlave(t *testing.T, m *Broker) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", m.HAAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hello := make([]byte, 32) // ha/FORMAT.md: magic, version, segment size, offset, flags, trailer
	binary.BigEndian.PutUint32(hello, 0x4D514841)
	binary.BigEndian.PutUint32(hello[4:], 1)
	binary.BigEndian.PutUint64(hello[8:], uint64(m.store.SegmentSize()))
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReplicationLagInRuntimeInfo(t *testing.T) {
	m, _, mc, sc := startPair(t, RoleAsyncMaster, false)
	stuck := stuckSlave(t, m)
	waitFor(t, "two slaves", func() bool { return m.HAStatus().Slaves == 2 })
	for i := 0; i < 5; i++ {
		mustSendOK(t, produce(t, mc, protocol.SendMessage, sendHeader("LagT", 0, ""), []byte("hello")))
	}
	end := m.store.WrittenOffset()
	stuckKey := "haSlaveFallBehind_" + stuck.LocalAddr().String()
	var tb map[string]string
	waitFor(t, "the real slave caught up", func() bool {
		tb = runtimeTable(t, mc)
		return tb["slaveFallBehindMuch"] == "0"
	})
	if tb["haConnectedSlaveNums"] != "2" || tb[stuckKey] != strconv.FormatInt(end, 10) ||
		tb["haPush2SlaveMaxOffset"] != strconv.FormatInt(end, 10) {
		t.Fatalf("master runtime info: slaves %s, %s=%s (want %d), push2SlaveMaxOffset %s", tb["haConnectedSlaveNums"],
			stuckKey, tb[stuckKey], end, tb["haPush2SlaveMaxOffset"])
	}
	if age, err := strconv.ParseInt(tb["haSlaveLastReportMillis_"+stuck.LocalAddr().String()], 10, 64); err != nil || age < 0 {
		t.Fatalf("report age %v %v", age, err)
	}
	waitFor(t, "the slave's view of its lag", func() bool {
		st := runtimeTable(t, sc)
		return st["haMasterConnected"] == "true" && st["haMasterFallBehind"] == "0" &&
			st["haMasterCommitLogMaxOffset"] == strconv.FormatInt(end, 10)
	})
	lags := map[string]int64{}
	for _, x := range m.HASlaves() {
		lags[x.Addr] = x.Lag
	}
	if lags[stuck.LocalAddr().String()] != end || len(lags) != 2 {
		t.Fatalf("HASlaves %v, want the stuck one %d behind", lags, end)
	}
}

func TestSyncMasterAckLatency(t *testing.T) {
	m, _, mc, _ := startPair(t, RoleSyncMaster, false)
	for i := 0; i < 4; i++ {
		mustSendOK(t, produce(t, mc, protocol.SendMessage, sendHeader("AckT", 0, ""), []byte("hello")))
	}
	if n := m.stats.ReplicaAckLatency.Snapshot().Count; n != 4 {
		t.Fatalf("%d slave waits recorded for 4 SYNC_MASTER sends", n)
	}
	tb := runtimeTable(t, mc)
	if p, err := strconv.ParseFloat(tb["haSyncAckLatency99"], 64); err != nil || p <= 0 {
		t.Fatalf("haSyncAckLatency99 %q", tb["haSyncAckLatency99"])
	}
}
