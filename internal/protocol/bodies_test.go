package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCodeSetNumbersOrStrings(t *testing.T) {
	var sd SubscriptionData
	in := `{"topic":"T","codeSet":[97,"98"," x",-5,"2147483648",null],"tagsSet":["a"]}`
	if err := json.Unmarshal([]byte(in), &sd); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sd.CodeSet, CodeSet{97, 98, -5}) {
		t.Fatalf("%v", sd.CodeSet)
	}
	out, _ := json.Marshal(sd.CodeSet)
	if string(out) != `[97,98,-5]` {
		t.Fatalf("%s", out)
	}
}

func TestHeartbeatFromJava(t *testing.T) {
	in := `{"clientID":"10.0.0.2@DEFAULT","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"cg","messageModel":"BROADCASTING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"SQL92","subString":"a > 1","subVersion":1700000000000,"tagsSet":[],"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}]}`
	hb, err := DecodeHeartbeatData([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	sd := hb.ConsumerDataSet[0].SubscriptionDataSet[0]
	if hb.ClientID != "10.0.0.2@DEFAULT" || sd.ExpressionType != ExpressionTypeSQL92 || sd.SubVersion != 1700000000000 ||
		hb.ConsumerDataSet[0].MessageModel != MessageModelBroadcasting || len(sd.CodeSet) != 0 {
		t.Fatalf("%+v", hb)
	}
}

func TestLockBodies(t *testing.T) {
	in := `{"consumerGroup":"cg","clientId":"10.0.0.1@123","mqSet":[{"topic":"T","brokerName":"broker-a","queueId":0},{"topic":"T","brokerName":"broker-a","queueId":3}]}`
	req, err := DecodeLockBatchRequestBody([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if req.ClientID != "10.0.0.1@123" || len(req.MQSet) != 2 || req.MQSet[1].QueueID != 3 {
		t.Fatalf("%+v", req)
	}
	resp := &LockBatchResponseBody{LockOKMQSet: req.MQSet}
	out, _ := resp.Encode()
	// The Go client decodes into []MessageQueue and compares with ==.
	var view struct {
		MQs []struct {
			Topic      string `json:"topic"`
			BrokerName string `json:"brokerName"`
			QueueID    int    `json:"queueId"`
		} `json:"lockOKMQSet"`
	}
	if err := json.Unmarshal(out, &view); err != nil || len(view.MQs) != 2 || view.MQs[1].QueueID != 3 || view.MQs[0].BrokerName != "broker-a" {
		t.Fatalf("%s %+v %v", out, view, err)
	}
	if empty, _ := (&LockBatchResponseBody{}).Encode(); string(empty) != `{"lockOKMQSet":[]}` {
		t.Fatalf("%s", empty)
	}
	back, err := DecodeLockBatchResponseBody(out)
	if err != nil || !reflect.DeepEqual(back.LockOKMQSet, req.MQSet) {
		t.Fatalf("%+v %v", back, err)
	}
	reqOut, _ := req.Encode()
	if again, _ := DecodeLockBatchRequestBody(reqOut); !reflect.DeepEqual(again, req) {
		t.Fatalf("%+v", again)
	}
}

func TestSmallBodies(t *testing.T) {
	check := func(name string, got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("%s: got %s want %s", name, got, want)
		}
	}
	b, _ := (&GetConsumerListByGroupResponseBody{ConsumerIDList: []string{"a", "b"}}).Encode()
	check("consumer list", b, `{"consumerIdList":["a","b"]}`)
	b, _ = (&GetConsumerListByGroupResponseBody{}).Encode()
	check("empty consumer list", b, `{"consumerIdList":[]}`)
	b, _ = (&KVTable{}).Encode()
	check("kv", b, `{"table":{}}`)
	b, _ = (&KVTable{Table: map[string]string{"k": "v"}}).Encode()
	check("kv", b, `{"table":{"k":"v"}}`)
	b, _ = (&TopicList{}).Encode()
	check("topic list", b, `{"topicList":[]}`)
	b, _ = (&TopicList{TopicList: []string{"a"}, BrokerAddr: "x:1"}).Encode()
	check("topic list", b, `{"topicList":["a"],"brokerAddr":"x:1"}`)

	// The Go admin client decodes TopicList with untagged fields.
	var goView struct {
		TopicList  []string
		BrokerAddr string
	}
	if err := json.Unmarshal(b, &goView); err != nil || goView.TopicList[0] != "a" {
		t.Fatalf("%+v %v", goView, err)
	}
	cc, err := DecodeCheckClientConfigBody([]byte(`{"clientId":"c","group":"g","subscriptionData":{"topic":"T","subString":"a>1","expressionType":"SQL92"}}`))
	if err != nil || cc.SubscriptionData.ExpressionType != "SQL92" {
		t.Fatalf("%+v %v", cc, err)
	}
}

func registerBody() *RegisterBrokerBody {
	return &RegisterBrokerBody{
		TopicConfigSerializeWrapper: TopicConfigSerializeWrapper{
			DataVersion: DataVersion{Counter: 7, Timestamp: 1700000000000},
			TopicConfigTable: map[string]TopicConfig{
				"T":      {TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: TopicFilterSingleTag},
				"TBW102": {TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 7, TopicFilterType: TopicFilterSingleTag},
			},
		},
		FilterServerList: []string{},
	}
}

func TestRegisterBrokerBody(t *testing.T) {
	// Java's RegisterBrokerBody example, as a Java broker sends it.
	in := `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":7,"timestamp":1700000000000},"topicConfigTable":{"T":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":4}}}}`
	b, err := DecodeRegisterBrokerBody([]byte(in), false)
	if err != nil {
		t.Fatal(err)
	}
	w := b.TopicConfigSerializeWrapper
	if w.DataVersion.Counter != 7 || w.TopicConfigTable["T"].Perm != 6 || w.TopicConfigTable["T"].TopicFilterType != "SINGLE_TAG" {
		t.Fatalf("%+v", b)
	}
	want := registerBody()
	enc, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRegisterBrokerBody(enc, false)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("json round trip: %+v %v", got, err)
	}
	z, err := want.EncodeCompressed()
	if err != nil {
		t.Fatal(err)
	}
	got, err = DecodeRegisterBrokerBody(z, true)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("compressed round trip: %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("junk"), z[:len(z)/2]} {
		if _, err := DecodeRegisterBrokerBody(bad, true); err == nil {
			t.Errorf("corrupt compressed body %x accepted", bad)
		}
	}
	if enc, _ := (&RegisterBrokerBody{}).Encode(); string(enc) != `{"topicConfigSerializeWrapper":{"topicConfigTable":{},"dataVersion":{"timestamp":0,"counter":0}},"filterServerList":[]}` {
		t.Fatalf("%s", enc)
	}
}

func TestSubscriptionGroupWrapperGoAdminView(t *testing.T) {
	w := &SubscriptionGroupWrapper{
		SubscriptionGroupTable: map[string]SubscriptionGroupConfig{"g": NewSubscriptionGroupConfig("g")},
		DataVersion:            DataVersion{Timestamp: 5, Counter: 2},
	}
	b, err := w.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The shape rocketmq-client-go/admin decodes (untagged fields).
	var view struct {
		SubscriptionGroupTable map[string]struct {
			GroupName                      string
			ConsumeEnable                  bool
			RetryMaxTimes                  int
			RetryQueueNums                 int
			WhichBrokerWhenConsumeSlowly   int
			NotifyConsumerIdsChangedEnable bool
		}
		DataVersion struct {
			Timestamp int64
			Counter   int32
		}
	}
	if err := json.Unmarshal(b, &view); err != nil {
		t.Fatal(err)
	}
	g := view.SubscriptionGroupTable["g"]
	if g.GroupName != "g" || !g.ConsumeEnable || g.RetryMaxTimes != 16 || g.RetryQueueNums != 1 ||
		g.WhichBrokerWhenConsumeSlowly != 1 || view.DataVersion.Counter != 2 {
		t.Fatalf("%+v", view)
	}
	if e, _ := (&SubscriptionGroupWrapper{}).Encode(); string(e) != `{"subscriptionGroupTable":{},"dataVersion":{"timestamp":0,"counter":0}}` {
		t.Fatalf("%s", e)
	}
}

func TestMessageQueueKeyedTables(t *testing.T) {
	mqA := MessageQueue{Topic: "T", BrokerName: "b", QueueID: 1}
	mqB := MessageQueue{Topic: "T", BrokerName: "b", QueueID: 0}
	ts := &TopicStatsTable{OffsetTable: map[MessageQueue]TopicOffset{
		mqA: {MinOffset: 1, MaxOffset: 9, LastUpdateTimestamp: 7}, mqB: {MaxOffset: 3}}}
	enc := ts.Encode()
	want := `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"minOffset":0,"maxOffset":3,"lastUpdateTimestamp":0},{"brokerName":"b","queueId":1,"topic":"T"}:{"minOffset":1,"maxOffset":9,"lastUpdateTimestamp":7}}}`
	if string(enc) != want {
		t.Fatalf("\n got %s\nwant %s", enc, want)
	}
	gotTS, err := DecodeTopicStatsTable(enc)
	if err != nil || !reflect.DeepEqual(gotTS, ts) {
		t.Fatalf("%+v %v", gotTS, err)
	}
	cs := &ConsumeStats{ConsumeTps: 1.5, OffsetTable: map[MessageQueue]OffsetWrapper{mqA: {BrokerOffset: 9, ConsumerOffset: 4, LastTimestamp: 3}}}
	gotCS, err := DecodeConsumeStats(cs.Encode())
	if err != nil || !reflect.DeepEqual(gotCS, cs) {
		t.Fatalf("%s: %+v %v", cs.Encode(), gotCS, err)
	}
	ro := &ResetOffsetBody{OffsetTable: map[MessageQueue]int64{mqA: 5, mqB: -1}}
	gotRO, err := DecodeResetOffsetBody(ro.Encode())
	if err != nil || !reflect.DeepEqual(gotRO, ro) {
		t.Fatalf("%s: %+v %v", ro.Encode(), gotRO, err)
	}
	empty, err := DecodeResetOffsetBody([]byte(`{"offsetTable":{}}`))
	if err != nil || len(empty.OffsetTable) != 0 {
		t.Fatalf("%+v %v", empty, err)
	}
	for _, bad := range []string{`{"offsetTable":{{"topic":1}:5}}`, `{"offsetTable":{{"topic":"T"}:x}}`, `[`, `{"offsetTable":`} {
		if _, err := DecodeResetOffsetBody([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestDataVersionStateVersion: stateVersion 0 (every 4.x sender) is not
// written, so the 4.x form is unchanged; any other value is written and
// read back in both register forms, and Java 5's form (counter,
// stateVersion, timestamp) decodes.
func TestDataVersionStateVersion(t *testing.T) {
	dv, err := json.Marshal(DataVersion{Timestamp: 1700000000000, Counter: 7})
	if err != nil || string(dv) != `{"timestamp":1700000000000,"counter":7}` {
		t.Fatalf("%s %v", dv, err)
	}
	rb := registerBody()
	rb.TopicConfigSerializeWrapper.DataVersion.StateVersion = -1 << 63
	for _, compressed := range []bool{false, true} {
		enc, err := rb.Encode()
		if compressed {
			enc, err = rb.EncodeCompressed()
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRegisterBrokerBody(enc, compressed)
		if err != nil || got.TopicConfigSerializeWrapper.DataVersion != rb.TopicConfigSerializeWrapper.DataVersion {
			t.Fatalf("compressed=%v: %+v %v", compressed, got, err)
		}
	}
	in := `{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":7,"stateVersion":12,"timestamp":1700000000000},"topicConfigTable":{}}}`
	b, err := DecodeRegisterBrokerBody([]byte(in), false)
	if err != nil || b.TopicConfigSerializeWrapper.DataVersion != (DataVersion{StateVersion: 12, Timestamp: 1700000000000, Counter: 7}) {
		t.Fatalf("%+v %v", b, err)
	}
}
