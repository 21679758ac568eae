package broker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// fakeConsumer is a consumer connection answering the broker→client
// requests the way the Go client does; reset offsets arrive on resets.
type fakeConsumer struct {
	c      *remoting.Client
	resets chan map[protocol.MessageQueue]int64
}

func dialConsumer(t *testing.T, b *Broker, clientID, group, topic string) *fakeConsumer {
	t.Helper()
	f := &fakeConsumer{resets: make(chan map[protocol.MessageQueue]int64, 4)}
	mux := remoting.NewMux()
	mux.Handle(protocol.ResetConsumerClientOffset, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		body, err := protocol.DecodeResetOffsetBody(req.Body)
		if err != nil || req.Ext("group") != group {
			t.Errorf("reset: %v %v", err, req.ExtFields)
			return nil
		}
		f.resets <- body.OffsetTable
		return nil
	})
	mux.Handle(protocol.GetConsumerStatusFromClient, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.Body = (&protocol.ResetOffsetBody{OffsetTable: map[protocol.MessageQueue]int64{
			{Topic: req.Ext("topic"), BrokerName: b.cfg.BrokerName, QueueID: 0}: 42}}).Encode()
		resp.Body = []byte(strings.Replace(string(resp.Body), "offsetTable", "messageQueueTable", 1))
		return resp
	})
	mux.Handle(protocol.GetConsumerRunningInfo, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.Body = []byte(`{"properties":{"clientId":"` + req.Ext("clientId") + `"}}`)
		return resp
	})
	mux.Handle(protocol.ConsumeMessageDirectly, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.Body = []byte(`{"consumeResult":"CR_SUCCESS","remark":"` + strconv.Itoa(len(req.Body)) + "@" + req.Ext("brokerName") + `"}`)
		return resp
	})
	c, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.c = c
	sendHeartbeat(t, c, clientID, group, subSpec{topic: topic, expr: "*"})
	return f
}

func TestConsumeStatsAndResetOffset(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "OpsT", 2)
	for i := 0; i < 3; i++ {
		putMsg(t, b, "OpsT", 0, "")
	}
	putMsg(t, b, "OpsT", 1, "")
	updateOffset(t, c, "opsG", "OpsT", 0, 1)
	updateOffset(t, c, "opsG", "OpsT", 1, 0)

	resp := call(t, c, protocol.NewRequest(protocol.GetConsumeStats, &protocol.GetConsumeStatsRequestHeader{ConsumerGroup: "opsG"}))
	expectCode(t, resp, protocol.ResponseSuccess)
	cs, err := protocol.DecodeConsumeStats(resp.Body)
	if err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	q0 := cs.OffsetTable[protocol.MessageQueue{Topic: "OpsT", BrokerName: b.cfg.BrokerName, QueueID: 0}]
	q1 := cs.OffsetTable[protocol.MessageQueue{Topic: "OpsT", BrokerName: b.cfg.BrokerName, QueueID: 1}]
	if len(cs.OffsetTable) != 2 || q0.BrokerOffset != 3 || q0.ConsumerOffset != 1 || q0.LastTimestamp == 0 ||
		q1.BrokerOffset != 1 || q1.ConsumerOffset != 0 {
		t.Fatalf("consume stats %s", resp.Body)
	}

	// No live consumer: 206, offsets untouched.
	reset := &protocol.ResetOffsetRequestHeader{Topic: "OpsT", Group: "opsG", Timestamp: -1, IsForce: true}
	expectCode(t, call(t, c, protocol.NewRequest(protocol.InvokeBrokerToResetOffset, reset)), protocol.ResponseConsumerNotOnline)
	// Unknown group: refused.
	bad := *reset
	bad.Group = "nobody"
	expectCode(t, call(t, c, protocol.NewRequest(protocol.InvokeBrokerToResetOffset, &bad)), protocol.ResponseSystemError)

	f := dialConsumer(t, b, "cid-1", "opsG", "OpsT")
	resp = call(t, c, protocol.NewRequest(protocol.InvokeBrokerToResetOffset, reset))
	expectCode(t, resp, protocol.ResponseSuccess)
	body, err := protocol.DecodeResetOffsetBody(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-f.resets:
		if got[protocol.MessageQueue{Topic: "OpsT", BrokerName: b.cfg.BrokerName, QueueID: 0}] != 3 || len(got) != 2 {
			t.Fatalf("client got %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RESET_CONSUMER_CLIENT_OFFSET not relayed")
	}
	if len(body.OffsetTable) != 2 {
		t.Fatalf("reset body %s", resp.Body)
	}
	if off, _ := b.offsets.Query("opsG", "OpsT", 0); off != 3 {
		t.Fatalf("committed %d after reset to max", off)
	}
	// Not forced, to time 0 (earlier): moves back to 0; forced not needed.
	reset.IsForce, reset.Timestamp = false, 1
	resp = call(t, c, protocol.NewRequest(protocol.InvokeBrokerToResetOffset, reset))
	expectCode(t, resp, protocol.ResponseSuccess)
	if off, _ := b.offsets.Query("opsG", "OpsT", 0); off != 0 {
		t.Fatalf("committed %d after reset to time 1", off)
	}
}

func TestConsumerStatusRunningInfoDirect(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "OpsS", 1)
	resp := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("OpsS", 0, ""), []byte("hello")))
	dialConsumer(t, b, "cid-9", "opsS", "OpsS")

	r := call(t, c, protocol.NewRequest(protocol.InvokeBrokerToGetConsumerStatus,
		&protocol.GetConsumerStatusRequestHeader{Topic: "OpsS", Group: "opsS"}))
	expectCode(t, r, protocol.ResponseSuccess)
	st, err := protocol.DecodeGetConsumerStatusBody(r.Body)
	if err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	if st.ConsumerTable["cid-9"][protocol.MessageQueue{Topic: "OpsS", BrokerName: b.cfg.BrokerName}] != 42 {
		t.Fatalf("consumer status %s", r.Body)
	}
	expectCode(t, call(t, c, protocol.NewRequest(protocol.InvokeBrokerToGetConsumerStatus,
		&protocol.GetConsumerStatusRequestHeader{Topic: "OpsS", Group: "nobody"})), protocol.ResponseSystemError)

	r = call(t, c, protocol.NewRequest(protocol.GetConsumerRunningInfo,
		&protocol.GetConsumerRunningInfoRequestHeader{ConsumerGroup: "opsS", ClientID: "cid-9"}))
	expectCode(t, r, protocol.ResponseSuccess)
	if !strings.Contains(string(r.Body), `"clientId":"cid-9"`) {
		t.Fatalf("running info %s", r.Body)
	}
	r = call(t, c, protocol.NewRequest(protocol.GetConsumerRunningInfo,
		&protocol.GetConsumerRunningInfoRequestHeader{ConsumerGroup: "opsS", ClientID: "gone"}))
	if r.Code != protocol.ResponseSystemError || !strings.Contains(r.Remark, "not online") {
		t.Fatalf("offline client: %d %q", r.Code, r.Remark)
	}

	r = call(t, c, protocol.NewRequest(protocol.ConsumeMessageDirectly,
		&protocol.ConsumeMessageDirectlyRequestHeader{ConsumerGroup: "opsS", ClientID: "cid-9", MsgID: resp.MsgID}))
	expectCode(t, r, protocol.ResponseSuccess)
	if !strings.Contains(string(r.Body), "@"+b.cfg.BrokerName) || strings.Contains(string(r.Body), `"remark":"0@`) {
		t.Fatalf("consume directly %s", r.Body)
	}
	r = call(t, c, protocol.NewRequest(protocol.ConsumeMessageDirectly,
		&protocol.ConsumeMessageDirectlyRequestHeader{ConsumerGroup: "opsS", ClientID: "cid-9", MsgID: "zz"}))
	expectCode(t, r, protocol.ResponseSystemError)
}

func TestProducersWhoConsumesCloneAllOffsets(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "OpsW", 2)
	expectCode(t, call(t, c, heartbeatReq(t, "", "opsPG")), protocol.ResponseSuccess)
	r := call(t, c, protocol.NewRequest(protocol.GetProducerConnectionList, &protocol.ProducerGroupHeader{ProducerGroup: "opsPG"}))
	expectCode(t, r, protocol.ResponseSuccess)
	var pc protocol.ProducerConnection
	if err := json.Unmarshal(r.Body, &pc); err != nil || len(pc.ConnectionSet) != 1 || pc.ConnectionSet[0].ClientID != "c1" {
		t.Fatalf("producer connection %s %v", r.Body, err)
	}
	expectCode(t, call(t, c, protocol.NewRequest(protocol.GetProducerConnectionList,
		&protocol.ProducerGroupHeader{ProducerGroup: "none"})), protocol.ResponseSystemError)

	updateOffset(t, c, "offG", "OpsW", 1, 7)
	dialConsumer(t, b, "cid-2", "liveG", "OpsW")
	r = call(t, c, protocol.NewRequest(protocol.QueryTopicConsumeByWho, &protocol.TopicRequestHeader{Topic: "OpsW"}))
	expectCode(t, r, protocol.ResponseSuccess)
	if string(r.Body) != `{"groupList":["liveG","offG"]}` {
		t.Fatalf("consume by who %s", r.Body)
	}
	r = call(t, c, protocol.NewRequest(protocol.QueryTopicConsumeByWho, &protocol.TopicRequestHeader{Topic: "Nobody"}))
	if string(r.Body) != `{"groupList":[]}` {
		t.Fatalf("consume by who for an unconsumed topic %s (Java answers [], never null)", r.Body)
	}

	expectCode(t, call(t, c, protocol.NewRequest(protocol.CloneGroupOffset,
		&protocol.CloneGroupOffsetRequestHeader{SrcGroup: "offG", DestGroup: "copyG"})), protocol.ResponseSuccess)
	if off, ok := b.offsets.Query("copyG", "OpsW", 1); !ok || off != 7 {
		t.Fatalf("cloned offset %d %v", off, ok)
	}
	r = call(t, c, protocol.NewRequest(protocol.GetAllConsumerOffset, nil))
	expectCode(t, r, protocol.ResponseSuccess)
	var all offsetFile
	if err := json.Unmarshal(r.Body, &all); err != nil || all.OffsetTable["OpsW@copyG"][1] != 7 {
		t.Fatalf("all offsets %s %v", r.Body, err)
	}

	// Deleting the group, then the topic, removes their offsets.
	expectCode(t, call(t, c, protocol.NewRequest(protocol.DeleteSubscriptionGroup,
		&protocol.DeleteSubscriptionGroupRequestHeader{GroupName: "copyG"})), protocol.ResponseSuccess)
	if _, ok := b.offsets.Query("copyG", "OpsW", 1); ok {
		t.Fatal("offsets of a deleted group survive")
	}
	expectCode(t, call(t, c, protocol.NewRequest(protocol.DeleteTopicInBroker, &protocol.TopicRequestHeader{Topic: "OpsW"})),
		protocol.ResponseSuccess)
	if g := b.offsets.Groups("OpsW"); len(g) != 0 {
		t.Fatalf("offsets of a deleted topic survive: %v", g)
	}
}

func TestBrokerConfigGetUpdate(t *testing.T) {
	b, c := startBroker(t, nil)
	r := call(t, c, protocol.NewRequest(protocol.GetBrokerConfig, nil))
	expectCode(t, r, protocol.ResponseSuccess)
	props, err := ParseProperties(strings.NewReader(string(r.Body)))
	if err != nil || props["brokerName"] != b.cfg.BrokerName || props["flushDiskType"] != "SYNC_FLUSH" ||
		!strings.Contains(r.Ext("version"), "counter") {
		t.Fatalf("config %q %v", r.Body, err)
	}
	upd := func(body string) *protocol.Command {
		req := protocol.NewRequest(protocol.UpdateBrokerConfig, nil)
		req.Body = []byte(body)
		return call(t, c, req)
	}
	expectCode(t, upd("maxMessageSize=1024\n"), protocol.ResponseSuccess)
	expectCode(t, upd("noSuchKey=1\n"), protocol.ResponseSystemError)
	expectCode(t, upd("maxMessageSize=abc\n"), protocol.ResponseSystemError)
	expectCode(t, upd("storePathRootDir=/tmp\n"), protocol.ResponseNoPermission)
	data, err := os.ReadFile(filepath.Join(b.cfg.Store.Dir, "config", overrideFileName))
	if err != nil || string(data) != "maxMessageSize=1024\n" {
		t.Fatalf("override file %q %v", data, err)
	}
	b2, _ := restartBroker(t, b)
	if b2.cfg.Store.MaxMessageSize != 1024 {
		t.Fatalf("maxMessageSize %d after restart", b2.cfg.Store.MaxMessageSize)
	}
}

func TestRuntimeInfoTraffic(t *testing.T) {
	b, c := startBroker(t, nil)
	for i := 0; i < 5; i++ {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("OpsR", 0, ""), []byte("12345")))
	}
	b.stats.tick(time.Now(), 0)
	sendHeartbeat(t, c, "rc", "rg", subSpec{topic: "OpsR", expr: "*"})
	r := call(t, c, pullReq("rg", "OpsR", 0, 0, 32, 0, 0))
	expectCode(t, r, protocol.ResponseSuccess)
	b.stats.tick(time.Now(), 0)
	r = call(t, c, protocol.NewRequest(protocol.GetBrokerRuntimeInfo, nil))
	var kv protocol.KVTable
	if err := json.Unmarshal(r.Body, &kv); err != nil {
		t.Fatal(err)
	}
	tb := kv.Table
	if tb["msgPutTotalTodayNow"] != "5" || tb["msgGetTotalTodayNow"] != "5" || tb["putMessageSizeTotal"] != "25" ||
		!strings.HasPrefix(tb["getTransferedTps"], "5.00 ") || tb["commitLogDiskRatio"] == "" ||
		tb["earliestMessageTimeStamp"] == "-1" || len(strings.Fields(tb["putTps"])) != 3 {
		t.Fatalf("runtime info %v", tb)
	}
	if got := b.stats.Topics()["OpsR"].PutMsgs.Load(); got != 5 {
		t.Fatalf("topic put count %d", got)
	}
}

func TestCountingAllocatesNothing(t *testing.T) {
	s := newStats(time.Now())
	s.countPut(s.Topic("T"), 1, 10)
	s.countGet("g", "T", 1, 10)
	if n := testing.AllocsPerRun(1000, func() {
		s.countPut(s.Topic("T"), 1, 10)
		s.countGet("g", "T", 2, 20)
		s.SendLatency.Observe(time.Millisecond)
	}); n != 0 {
		t.Fatalf("counting allocates %v times per message", n)
	}
	if s.Topic("T").PutMsgs.Load() != 1002 || s.Group("g", "T").GetMsgs.Load() != 2003 { // AllocsPerRun calls once more to warm up
		t.Fatalf("counts %d %d", s.Topic("T").PutMsgs.Load(), s.Group("g", "T").GetMsgs.Load())
	}
}

func TestHistoryWindows(t *testing.T) {
	var h history
	for tick := int64(1); tick <= 7200; tick++ {
		h.sample(tick, tick*2, tick) // 2 messages per request, 2 per second
	}
	for name, w := range map[string]StatsWindow{"minute": h.minute(), "hour": h.hour(), "day": h.day()} {
		if w.TPS != 2 || w.Avgpt != 2 {
			t.Errorf("%s %+v", name, w)
		}
	}
	if h.minute().Sum != 120 || h.hour().Sum != 7200 || h.day().Sum != 7200 {
		t.Fatalf("sums %+v %+v %+v", h.minute(), h.hour(), h.day())
	}
}

func TestViewBrokerStatsData(t *testing.T) {
	b, c := startBroker(t, nil)
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("OpsV", 0, ""), []byte("x")))
	view := func(name, key string) *protocol.Command {
		return call(t, c, protocol.NewRequest(protocol.ViewBrokerStatsData,
			&protocol.ViewBrokerStatsDataRequestHeader{StatsName: name, StatsKey: key}))
	}
	r := view(protocol.StatsTopicPutNums, "OpsV")
	expectCode(t, r, protocol.ResponseSuccess)
	var d brokerStatsData
	if err := json.Unmarshal(r.Body, &d); err != nil || !strings.Contains(string(r.Body), `"statsMinute":{"sum":`) {
		t.Fatalf("%s %v", r.Body, err)
	}
	expectCode(t, view(protocol.StatsTopicPutNums, "nope"), protocol.ResponseSystemError)
	expectCode(t, view(protocol.StatsGroupGetNums, "OpsV@nobody"), protocol.ResponseSystemError)
	_ = b
}

func TestCleanUnusedTopicAndExpiredCQ(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "OpsKeep", 1)
	addTopic(t, b, "OpsGone", 1)
	putMsg(t, b, "OpsKeep", 0, "")
	putMsg(t, b, "OpsGone", 0, "")
	putMsg(t, b, TopicSchedule, 0, "") // a system topic's queue without a config must survive
	if _, err := b.topics.Delete("OpsGone"); err != nil {
		t.Fatal(err)
	}
	r := call(t, c, protocol.NewRequest(protocol.CleanUnusedTopic, nil))
	expectCode(t, r, protocol.ResponseSuccess)
	if r.Remark != "1 unused topics cleaned" || b.store.MaxOffsetInQueue("OpsGone", 0) > 0 ||
		b.store.MaxOffsetInQueue("OpsKeep", 0) != 1 || b.store.MaxOffsetInQueue(TopicSchedule, 0) != 1 {
		t.Fatalf("%q; queues %v", r.Remark, b.store.QueueTopics())
	}
	expectCode(t, call(t, c, protocol.NewRequest(protocol.CleanExpiredConsumeQueue, nil)), protocol.ResponseSuccess)
	if b.store.MaxOffsetInQueue("OpsKeep", 0) != 1 {
		t.Fatal("live consume queue cleaned")
	}
}
