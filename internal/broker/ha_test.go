package broker

import (
	"testing"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// startPair starts a master (role) and a slave replicating from it
// in-process.
func startPair(t *testing.T, role string, slaveRead bool) (m, s *Broker, mc, sc *remoting.Client) {
	t.Helper()
	m, mcl := startBroker(t, func(c *Config) { c.HA.Role, c.HA.SlaveReadEnable = role, slaveRead })
	s, scl := startBroker(t, func(c *Config) {
		c.BrokerID = 1
		// The slave asks for a compressed stream: the broker tests run it;
		// package ha tests both forms.
		c.HA = HAConfig{Role: RoleSlave, MasterAddress: m.HAAddr(), SlaveReadEnable: slaveRead, StreamCompression: "s2"}
	})
	waitFor(t, "slave connected", func() bool { return m.HAStatus().Slaves == 1 })
	return m, s, mcl, scl
}

func TestHAStreamCompressionKey(t *testing.T) {
	var c Config
	if _, err := ApplyProperties(map[string]string{"haStreamCompression": "s2"}, &c); err != nil || !c.haConfigFor().Compress {
		t.Fatalf("s2: %v %+v", err, c.HA)
	}
	if _, err := ApplyProperties(map[string]string{"haStreamCompression": "none"}, &c); err != nil || c.haConfigFor().Compress {
		t.Fatalf("none: %v %+v", err, c.HA)
	}
	if _, err := ApplyProperties(map[string]string{"haStreamCompression": "zstd"}, &c); err == nil {
		t.Fatal("haStreamCompression=zstd accepted")
	}
}

func TestSlaveReplicatesRefusesSendsAndSyncs(t *testing.T) {
	m, s, mc, sc := startPair(t, RoleSyncMaster, false)
	addTopic(t, m, "HT", 2)
	if err := m.groups.Put(protocol.SubscriptionGroupConfig{GroupName: "hg", ConsumeEnable: true, BrokerID: 0, WhichBrokerWhenConsumeSlowly: 1}); err != nil {
		t.Fatal(err)
	}
	// A SYNC_MASTER send is acknowledged once the slave has it.
	for i := 0; i < 20; i++ {
		mustSendOK(t, produce(t, mc, protocol.SendMessage, sendHeader("HT", int32(i%2), ""), []byte("hello")))
		if got, want := s.store.WrittenOffset(), m.store.MaxPhysOffset(); got < want {
			t.Fatalf("send %d acknowledged with the slave at %d of %d", i, got, want)
		}
	}
	if st := m.HAStatus(); st.Slaves != 1 || st.Lag != 0 {
		t.Fatalf("master status %+v", st)
	}

	// The slave refuses sends with SERVICE_NOT_AVAILABLE.
	resp := produce(t, sc, protocol.SendMessage, sendHeader("HT", 0, ""), []byte("to the slave"))
	if resp.Code != protocol.ResponseServiceNotAvailable {
		t.Fatalf("send to slave: %d %q", resp.Code, resp.Remark)
	}
	// Without slaveReadEnable a slave sends pulls back to the master.
	waitFor(t, "slave dispatch", func() bool { return s.store.MaxOffsetInQueue("HT", 0) == 10 })
	sendHeartbeat(t, sc, "c1", "hg", subSpec{topic: "HT", expr: "*"})
	resp = call(t, sc, pullReq("hg", "HT", 0, 0, 32, 0, 0))
	var ph protocol.PullMessageResponseHeader
	if err := ph.Decode(resp.ExtFields); err != nil {
		t.Fatal(err)
	}
	if resp.Code != protocol.ResponsePullRetryImmediately || ph.SuggestWhichBrokerID != 0 {
		t.Fatalf("slave pull: code %d suggest %d", resp.Code, ph.SuggestWhichBrokerID)
	}

	// Metadata sync: topics and groups; a request the master does not
	// answer (consumer and delay offsets, until their handlers exist) is
	// skipped without failing the others.
	s.syncFromMaster(m.Addr())
	if _, ok := s.topics.Get("HT"); !ok {
		t.Fatal("topic not synced")
	}
	if _, ok := s.groups.Lookup("hg"); !ok {
		t.Fatal("group not synced")
	}
	// A GET_ALL_CONSUMER_OFFSET body as the Java master writes it
	// (fastjson: bare integer keys) is merged.
	if err := s.applyMasterOffsets([]byte(`{"offsetTable":{"HT@hg":{1:7,0:3}}}`)); err != nil {
		t.Fatal(err)
	}
	if off, ok := s.offsets.Query("hg", "HT", 1); !ok || off != 7 {
		t.Fatalf("offset not synced: %d %v", off, ok)
	}
	// Topics the master no longer has are removed from the slave.
	if _, err := m.topics.Delete("HT"); err != nil {
		t.Fatal(err)
	}
	s.syncFromMaster(m.Addr())
	if _, ok := s.topics.Get("HT"); ok {
		t.Fatal("deleted topic still on the slave")
	}
}

func TestSlaveReadEnableServesPullsAndSuggests(t *testing.T) {
	m, s, mc, sc := startPair(t, RoleAsyncMaster, true)
	addTopic(t, m, "HR", 1)
	addTopic(t, s, "HR", 1) // as the metadata sync would
	for i := 0; i < 5; i++ {
		mustSendOK(t, produce(t, mc, protocol.SendMessage, sendHeader("HR", 0, ""), []byte("hello")))
	}
	waitFor(t, "slave dispatch", func() bool { return s.store.MaxOffsetInQueue("HR", 0) == 5 })
	sendHeartbeat(t, sc, "c1", "g", subSpec{topic: "HR", expr: "*"})
	resp := call(t, sc, pullReq("g", "HR", 0, 0, 32, 0, 0))
	if resp.Code != protocol.ResponseSuccess || len(bodyTags(t, resp.Body)) != 5 {
		t.Fatalf("slave pull: %d %q", resp.Code, resp.Remark)
	}
	// suggestWhichBrokerId: the group's brokerId when not slow, its
	// whichBrokerWhenConsumeSlowly when slow.
	if got := m.suggestBroker("g", false); got != 0 {
		t.Fatal(got)
	}
	if got := m.suggestBroker("g", true); got != 1 {
		t.Fatal(got)
	}
	m.cfg.HA.SlaveReadEnable = false
	if got := m.suggestBroker("g", true); got != 0 {
		t.Fatal(got)
	}
}
