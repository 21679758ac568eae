package broker

// Replication figures for GET_BROKER_RUNTIME_INFO and the metrics
// exporter. A 4.9.7 broker's runtime info has no replication keys (Java
// computes DefaultMessageStore.slaveFallBehindMuch but only logs it), so
// these are mqd's, named after what Java has: slaveFallBehindMuch, and
// per slave the ackOffset/diff of Java 5's HAConnection runtime info.

import (
	"fmt"
	"strconv"
	"time"
)

// HASlave is one connected slave as its master sees it.
type HASlave struct {
	Addr      string        // the slave's HA connection address
	Acked     int64         // the commit-log offset it acknowledged
	Lag       int64         // bytes written on the master it has not acknowledged
	ReportAge time.Duration // since its last acknowledgement
}

// HASlaves reports a master's connected slaves (none on a slave).
func (b *Broker) HASlaves() []HASlave {
	if b.ha.server == nil {
		return nil
	}
	end, now := b.store.WrittenOffset(), time.Now()
	var out []HASlave
	for _, s := range b.ha.server.Slaves() {
		out = append(out, HASlave{Addr: s.Addr, Acked: s.Acked, Lag: max(end-s.Acked, 0), ReportAge: now.Sub(s.LastReport)})
	}
	return out
}

// haRuntimeInfo adds the replication keys to t.
func (b *Broker) haRuntimeInfo(t map[string]string) {
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	st := b.HAStatus()
	t["brokerRole"] = st.Role
	switch {
	case b.ha.server != nil:
		t["haConnectedSlaveNums"] = strconv.Itoa(st.Slaves)
		t["haPush2SlaveMaxOffset"] = i64(st.Acked)
		t["slaveFallBehindMuch"] = i64(st.Lag) // written − highest acknowledged offset
		for _, s := range b.HASlaves() {
			t["haSlaveAckOffset_"+s.Addr] = i64(s.Acked)
			t["haSlaveFallBehind_"+s.Addr] = i64(s.Lag)
			t["haSlaveLastReportMillis_"+s.Addr] = i64(s.ReportAge.Milliseconds())
		}
		lat := &b.stats.ReplicaAckLatency
		t["haSyncAckLatency99"] = fmt.Sprintf("%.2f", quantileMillis(lat, 0.99))
		t["haSyncAckLatency999"] = fmt.Sprintf("%.2f", quantileMillis(lat, 0.999))
	case b.ha.client != nil:
		t["haMasterConnected"] = strconv.FormatBool(st.Connected)
		t["haMasterAddress"] = b.masterHAAddr()
		t["haMasterCommitLogMaxOffset"] = i64(st.MasterEnd)
		t["haMasterFallBehind"] = i64(st.Lag) // the master's end − this slave's end
	}
}
