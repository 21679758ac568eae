package broker

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func createTopicReq(topic string, queues int32) *protocol.Command {
	return protocol.NewRequest(protocol.UpdateAndCreateTopic, &protocol.CreateTopicRequestHeader{
		Topic: topic, DefaultTopic: "defaultTopic", ReadQueueNums: queues, WriteQueueNums: queues,
		Perm: 6, TopicFilterType: protocol.TopicFilterSingleTag,
	})
}

func allTopicConfig(t *testing.T, c *remoting.Client) protocol.TopicConfigSerializeWrapper {
	t.Helper()
	resp := call(t, c, protocol.NewRequest(protocol.GetAllTopicConfig, nil))
	expectCode(t, resp, protocol.ResponseSuccess)
	var w protocol.TopicConfigSerializeWrapper
	if err := json.Unmarshal(resp.Body, &w); err != nil {
		t.Fatalf("GET_ALL_TOPIC_CONFIG body: %v", err)
	}
	return w
}

func topicStats(t *testing.T, c *remoting.Client, topic string) *protocol.Command {
	t.Helper()
	return call(t, c, protocol.NewRequest(protocol.GetTopicStatsInfo, &protocol.TopicRequestHeader{Topic: topic}))
}

func TestTopicCreateListStatsDelete(t *testing.T) {
	b, c := startBroker(t, nil)
	expectCode(t, call(t, c, createTopicReq("AdminT", 3)), protocol.ResponseSuccess)
	w := allTopicConfig(t, c)
	if tc := w.TopicConfigTable["AdminT"]; tc.WriteQueueNums != 3 || tc.ReadQueueNums != 3 || tc.Perm != 6 {
		t.Fatalf("listed %+v", tc)
	}
	if _, ok := w.TopicConfigTable[TopicAutoCreate]; !ok || w.DataVersion.Counter == 0 {
		t.Fatalf("table %v version %+v", w.TopicConfigTable, w.DataVersion)
	}
	for range 2 {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("AdminT", 1, ""), []byte("s")))
	}
	awaitCond(t, "dispatch", func() bool { return b.store.MaxOffsetInQueue("AdminT", 1) == 2 })

	resp := topicStats(t, c, "AdminT")
	expectCode(t, resp, protocol.ResponseSuccess)
	st, err := protocol.DecodeTopicStatsTable(resp.Body)
	if err != nil || len(st.OffsetTable) != 3 {
		t.Fatalf("stats %v %v", st, err)
	}
	q1 := st.OffsetTable[protocol.MessageQueue{Topic: "AdminT", BrokerName: "broker-a", QueueID: 1}]
	q0 := st.OffsetTable[protocol.MessageQueue{Topic: "AdminT", BrokerName: "broker-a", QueueID: 0}]
	if q1.MaxOffset != 2 || q1.MinOffset != 0 || q1.LastUpdateTimestamp <= 0 || q0 != (protocol.TopicOffset{}) {
		t.Fatalf("queue 1 %+v queue 0 %+v", q1, q0)
	}
	expectCode(t, topicStats(t, c, "Unknown"), protocol.ResponseTopicNotExist)

	// Updating replaces the config.
	expectCode(t, call(t, c, createTopicReq("AdminT", 5)), protocol.ResponseSuccess)
	if tc, _ := b.topics.Get("AdminT"); tc.WriteQueueNums != 5 {
		t.Fatalf("updated %+v", tc)
	}
	expectCode(t, call(t, c, protocol.NewRequest(protocol.DeleteTopicInBroker, &protocol.TopicRequestHeader{Topic: "AdminT"})),
		protocol.ResponseSuccess)
	if _, ok := allTopicConfig(t, c).TopicConfigTable["AdminT"]; ok {
		t.Fatal("deleted topic still listed")
	}
	if n := b.store.MaxOffsetInQueue("AdminT", 1); n != 0 {
		t.Fatalf("consume queue survived the delete: max offset %d", n)
	}
	expectCode(t, topicStats(t, c, "AdminT"), protocol.ResponseTopicNotExist)
}

func TestTopicAdminRejections(t *testing.T) {
	_, c := startBroker(t, nil)
	for _, topic := range []string{TopicAutoCreate, TopicSchedule, "rmq_sys_x", "DefaultCluster", "broker-a", "bad name", ""} {
		expectCode(t, call(t, c, createTopicReq(topic, 4)), protocol.ResponseSystemError)
		req := protocol.NewRequest(protocol.DeleteTopicInBroker, &protocol.TopicRequestHeader{Topic: topic})
		expectCode(t, call(t, c, req), protocol.ResponseSystemError)
	}
	bad := createTopicReq("BadQ", -1)
	expectCode(t, call(t, c, bad), protocol.ResponseSystemError)
	bad = createTopicReq("BadF", 4)
	bad.SetExt("topicFilterType", "NONE")
	expectCode(t, call(t, c, bad), protocol.ResponseSystemError)
	expectCode(t, call(t, c, protocol.NewRequest(protocol.UpdateAndCreateTopic, nil)), protocol.ResponseSystemError)
}

func TestSubscriptionGroupAdmin(t *testing.T) {
	b, c := startBroker(t, nil)
	req := protocol.NewRequest(protocol.UpdateAndCreateSubscriptionGroup, nil)
	req.Body = []byte(`{"groupName":"g1","retryMaxTimes":3,"consumeBroadcastEnable":false}`)
	expectCode(t, call(t, c, req), protocol.ResponseSuccess)
	g, ok, _ := b.groups.Get("g1")
	if !ok || g.RetryMaxTimes != 3 || g.ConsumeBroadcastEnable || !g.ConsumeEnable || g.RetryQueueNums != 1 {
		t.Fatalf("group %+v", g)
	}

	resp := call(t, c, protocol.NewRequest(protocol.GetAllSubscriptionGroupConfig, nil))
	expectCode(t, resp, protocol.ResponseSuccess)
	var w admin.SubscriptionGroupWrapper // the Go admin client's decoder
	if _, err := w.Decode(resp.Body, &w); err != nil || w.SubscriptionGroupTable["g1"].RetryMaxTimes != 3 {
		t.Fatalf("Go admin decode: %v %+v", err, w.SubscriptionGroupTable)
	}

	del := protocol.NewRequest(protocol.DeleteSubscriptionGroup, &protocol.DeleteSubscriptionGroupRequestHeader{GroupName: "g1"})
	expectCode(t, call(t, c, del), protocol.ResponseSuccess)
	if _, ok := b.groups.Snapshot().SubscriptionGroupTable["g1"]; ok {
		t.Fatal("group not deleted")
	}
	for _, body := range []string{`{"retryMaxTimes":3}`, `not json`, ``} {
		req := protocol.NewRequest(protocol.UpdateAndCreateSubscriptionGroup, nil)
		req.Body = []byte(body)
		expectCode(t, call(t, c, req), protocol.ResponseSystemError)
	}
}

func TestBrokerRuntimeInfo(t *testing.T) {
	b, c := startBroker(t, nil)
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("RtT", 0, ""), []byte("x")))
	resp := call(t, c, protocol.NewRequest(protocol.GetBrokerRuntimeInfo, nil))
	expectCode(t, resp, protocol.ResponseSuccess)
	var kv protocol.KVTable
	if err := json.Unmarshal(resp.Body, &kv); err != nil {
		t.Fatal(err)
	}
	maxOff, err := strconv.ParseInt(kv.Table["commitLogMaxOffset"], 10, 64)
	if err != nil || maxOff <= 0 || maxOff > b.store.MaxPhysOffset() || kv.Table["brokerVersion"] != "407" ||
		kv.Table["dispatchBehindBytes"] == "" {
		t.Fatalf("runtime info %v", kv.Table)
	}
}
