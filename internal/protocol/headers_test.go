package protocol

import (
	"errors"
	"maps"
	"reflect"
	"testing"
)

type header interface {
	Encode() map[string]string
	Decode(map[string]string) error
}

type headerCase struct {
	name     string
	in       header
	fresh    func() header
	required []string // ext keys Java marks @CFNotNull
	ints     []string // numeric ext keys
}

func headerCases() []headerCase {
	return []headerCase{
		{"send", goSendHeaderPtr(), func() header { return &SendMessageRequestHeader{} },
			[]string{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId", "sysFlag", "bornTimestamp", "flag"},
			[]string{"defaultTopicQueueNums", "queueId", "sysFlag", "bornTimestamp", "flag", "reconsumeTimes", "maxReconsumeTimes"}},
		{"sendResponse", &SendMessageResponseHeader{MsgID: "0A00000100002A9F000000000001E240", QueueID: 3, QueueOffset: 1 << 40, TransactionID: "tx", MsgRegion: "DefaultRegion", TraceOn: true},
			func() header { return &SendMessageResponseHeader{} }, []string{"msgId", "queueId", "queueOffset"}, []string{"queueId", "queueOffset"}},
		{"pull", &PullMessageRequestHeader{ConsumerGroup: "cg", Topic: "T", QueueID: 2, QueueOffset: 100, MaxMsgNums: 32, SysFlag: 3, CommitOffset: 90, SuspendTimeoutMillis: 20000, Subscription: "a || b", SubVersion: 1, ExpressionType: "TAG"},
			func() header { return &PullMessageRequestHeader{} },
			[]string{"consumerGroup", "topic", "queueId", "queueOffset", "maxMsgNums", "sysFlag", "commitOffset", "suspendTimeoutMillis", "subVersion"},
			[]string{"queueId", "queueOffset", "maxMsgNums", "sysFlag", "commitOffset", "suspendTimeoutMillis", "subVersion"}},
		{"pullResponse", &PullMessageResponseHeader{SuggestWhichBrokerID: 1, NextBeginOffset: 7, MinOffset: -1, MaxOffset: 9},
			func() header { return &PullMessageResponseHeader{} },
			[]string{"suggestWhichBrokerId", "nextBeginOffset", "minOffset", "maxOffset"}, []string{"suggestWhichBrokerId", "nextBeginOffset", "minOffset", "maxOffset"}},
		{"queryConsumerOffset", &QueryConsumerOffsetRequestHeader{ConsumerGroup: "cg", Topic: "T", QueueID: 1},
			func() header { return &QueryConsumerOffsetRequestHeader{} }, []string{"consumerGroup", "topic", "queueId"}, []string{"queueId"}},
		{"updateConsumerOffset", &UpdateConsumerOffsetRequestHeader{ConsumerGroup: "cg", Topic: "T", QueueID: 1, CommitOffset: 5},
			func() header { return &UpdateConsumerOffsetRequestHeader{} }, []string{"consumerGroup", "topic", "queueId", "commitOffset"}, []string{"queueId", "commitOffset"}},
		{"searchOffset", &SearchOffsetRequestHeader{Topic: "T", QueueID: 1, Timestamp: 1700000000000},
			func() header { return &SearchOffsetRequestHeader{} }, []string{"topic", "queueId", "timestamp"}, []string{"queueId", "timestamp"}},
		{"topicQueue", &GetMaxOffsetRequestHeader{Topic: "T", QueueID: 4},
			func() header { return &GetMinOffsetRequestHeader{} }, []string{"topic", "queueId"}, []string{"queueId"}},
		{"offsetResponse", &OffsetResponseHeader{Offset: 123},
			func() header { return &QueryConsumerOffsetResponseHeader{} }, []string{"offset"}, []string{"offset"}},
		{"earliest", &GetEarliestMsgStoretimeResponseHeader{Timestamp: -1},
			func() header { return &GetEarliestMsgStoretimeResponseHeader{} }, []string{"timestamp"}, []string{"timestamp"}},
		{"queryMessage", &QueryMessageRequestHeader{Topic: "T", Key: "k", MaxNum: 32, BeginTimestamp: 1, EndTimestamp: 2, UniqueKeyQuery: true},
			func() header { return &QueryMessageRequestHeader{} },
			[]string{"topic", "key", "maxNum", "beginTimestamp", "endTimestamp"}, []string{"maxNum", "beginTimestamp", "endTimestamp"}},
		{"queryMessageResponse", &QueryMessageResponseHeader{IndexLastUpdateTimestamp: 1, IndexLastUpdatePhyoffset: 2},
			func() header { return &QueryMessageResponseHeader{} },
			[]string{"indexLastUpdateTimestamp", "indexLastUpdatePhyoffset"}, []string{"indexLastUpdateTimestamp", "indexLastUpdatePhyoffset"}},
		{"viewMessage", &ViewMessageRequestHeader{Offset: 99}, func() header { return &ViewMessageRequestHeader{} }, []string{"offset"}, []string{"offset"}},
		{"unregisterClient", &UnregisterClientRequestHeader{ClientID: "c@1", ProducerGroup: "pg", ConsumerGroup: "cg"},
			func() header { return &UnregisterClientRequestHeader{} }, []string{"clientID"}, nil},
		{"consumerGroup", &GetConsumerListByGroupRequestHeader{ConsumerGroup: "cg"},
			func() header { return &NotifyConsumerIdsChangedRequestHeader{} }, []string{"consumerGroup"}, nil},
		{"resetOffset", &ResetOffsetRequestHeader{Topic: "T", Group: "g", Timestamp: -1, IsForce: true},
			func() header { return &ResetOffsetRequestHeader{} }, []string{"topic", "group", "timestamp", "isForce"}, []string{"timestamp"}},
		{"consumerStatus", &GetConsumerStatusRequestHeader{Topic: "T", Group: "g", ClientAddr: "1.2.3.4:5"},
			func() header { return &GetConsumerStatusRequestHeader{} }, []string{"topic", "group"}, nil},
		{"runningInfo", &GetConsumerRunningInfoRequestHeader{ConsumerGroup: "cg", ClientID: "c", JstackEnable: true},
			func() header { return &GetConsumerRunningInfoRequestHeader{} }, []string{"consumerGroup", "clientId"}, nil},
		{"consumeDirectly", &ConsumeMessageDirectlyRequestHeader{ConsumerGroup: "cg", ClientID: "c", MsgID: "m", BrokerName: "b"},
			func() header { return &ConsumeMessageDirectlyRequestHeader{} }, []string{"consumerGroup", "msgId"}, nil},
		{"endTransaction", &EndTransactionRequestHeader{ProducerGroup: "pg", TranStateTableOffset: 3, CommitLogOffset: 1 << 33, CommitOrRollback: 8, FromTransactionCheck: true, MsgID: "u", TransactionID: "t"},
			func() header { return &EndTransactionRequestHeader{} },
			[]string{"producerGroup", "tranStateTableOffset", "commitLogOffset", "commitOrRollback", "fromTransactionCheck", "msgId"},
			[]string{"tranStateTableOffset", "commitLogOffset", "commitOrRollback"}},
		{"checkTransaction", &CheckTransactionStateRequestHeader{TranStateTableOffset: 1, CommitLogOffset: 2, MsgID: "u", TransactionID: "u", OffsetMsgID: "o"},
			func() header { return &CheckTransactionStateRequestHeader{} }, []string{"tranStateTableOffset", "commitLogOffset"}, []string{"tranStateTableOffset", "commitLogOffset"}},
		{"sendBack", &ConsumerSendMsgBackRequestHeader{Offset: 5, Group: "cg", DelayLevel: -1, OriginMsgID: "o", OriginTopic: "T", UnitMode: true, MaxReconsumeTimes: 16, HasMaxReconsumeTimes: true},
			func() header { return &ConsumerSendMsgBackRequestHeader{} }, []string{"offset", "group", "delayLevel"}, []string{"offset", "delayLevel", "maxReconsumeTimes"}},
		{"routeInfo", &GetRouteInfoRequestHeader{Topic: "T", AcceptStandardJSONOnly: true},
			func() header { return &GetRouteInfoRequestHeader{} }, []string{"topic"}, nil},
		{"registerBroker", &RegisterBrokerRequestHeader{BrokerName: "broker-a", BrokerAddr: "10.0.0.1:10911", ClusterName: "DefaultCluster", HaServerAddr: "10.0.0.1:10912", BrokerID: 0, Compressed: true, BodyCrc32: 12345},
			func() header { return &RegisterBrokerRequestHeader{} },
			[]string{"brokerName", "brokerAddr", "clusterName", "haServerAddr", "brokerId"}, []string{"brokerId", "bodyCrc32"}},
		{"registerBrokerResponse", &RegisterBrokerResponseHeader{HaServerAddr: "h:1", MasterAddr: "m:2"},
			func() header { return &RegisterBrokerResponseHeader{} }, nil, nil},
		{"brokerIdentity", &UnregisterBrokerRequestHeader{BrokerName: "b", BrokerAddr: "a:1", ClusterName: "c", BrokerID: 1},
			func() header { return &QueryDataVersionRequestHeader{} }, []string{"brokerName", "brokerAddr", "clusterName", "brokerId"}, []string{"brokerId"}},
		{"dataVersionResponse", &QueryDataVersionResponseHeader{Changed: true},
			func() header { return &QueryDataVersionResponseHeader{} }, []string{"changed"}, nil},
		{"deleteTopicNamesrv", &DeleteTopicFromNamesrvRequestHeader{Topic: "T", ClusterName: "c"},
			func() header { return &DeleteTopicFromNamesrvRequestHeader{} }, []string{"topic"}, nil},
		{"brokerName", &WipeWritePermOfBrokerRequestHeader{BrokerName: "b"},
			func() header { return &AddWritePermOfBrokerRequestHeader{} }, []string{"brokerName"}, nil},
		{"writePermCount", &WritePermCountResponseHeader{Key: "wipeTopicCount", Count: 3},
			func() header { return &WritePermCountResponseHeader{Key: "wipeTopicCount"} }, []string{"wipeTopicCount"}, []string{"wipeTopicCount"}},
		{"topicsByCluster", &GetTopicsByClusterRequestHeader{Cluster: "c"},
			func() header { return &GetTopicsByClusterRequestHeader{} }, []string{"cluster"}, nil},
		{"kvPut", &KVConfigHeader{Namespace: "ns", Key: "k", Value: "v"},
			func() header { return &KVConfigHeader{} }, []string{"namespace", "key", "value"}, nil},
		{"kvGetResponse", &GetKVConfigResponseHeader{Value: "v"}, func() header { return &GetKVConfigResponseHeader{} }, nil, nil},
		{"createTopic", &CreateTopicRequestHeader{Topic: "T", DefaultTopic: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6, TopicFilterType: "SINGLE_TAG", TopicSysFlag: 1, Order: true},
			func() header { return &CreateTopicRequestHeader{} },
			[]string{"topic", "defaultTopic", "readQueueNums", "writeQueueNums", "perm", "topicFilterType", "order"},
			[]string{"readQueueNums", "writeQueueNums", "perm", "topicSysFlag"}},
		{"topic", &DeleteTopicRequestHeader{Topic: "T"}, func() header { return &GetTopicStatsInfoRequestHeader{} }, []string{"topic"}, nil},
		{"consumeStats", &GetConsumeStatsRequestHeader{ConsumerGroup: "cg", Topic: "T"},
			func() header { return &GetConsumeStatsRequestHeader{} }, []string{"consumerGroup"}, nil},
		{"deleteGroup", &DeleteSubscriptionGroupRequestHeader{GroupName: "g"},
			func() header { return &DeleteSubscriptionGroupRequestHeader{} }, []string{"groupName"}, nil},
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, tc := range headerCases() {
		ext := tc.in.Encode()
		// Through a real frame in both header encodings, too.
		for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
			cmd := &Command{ExtFields: ext, SerializeType: st}
			frame, err := cmd.Encode()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			dec, err := DecodeFrame(frame[4:])
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			out := tc.fresh()
			if err := out.Decode(dec.ExtFields); err != nil {
				t.Fatalf("%s: decode: %v", tc.name, err)
			}
			if !reflect.DeepEqual(tc.in, out) {
				t.Errorf("%s/%v:\n in %+v\nout %+v", tc.name, st, tc.in, out)
			}
		}
	}
}

func TestHeaderRequiredFields(t *testing.T) {
	for _, tc := range headerCases() {
		for _, key := range tc.required {
			ext := maps.Clone(tc.in.Encode())
			if _, ok := ext[key]; !ok {
				t.Fatalf("%s: Encode does not write required %q", tc.name, key)
			}
			delete(ext, key)
			err := tc.fresh().Decode(ext)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != key || !errors.Is(err, ErrMissingField) {
				t.Errorf("%s without %q: %v", tc.name, key, err)
			}
		}
	}
}

func TestHeaderInvalidIntegers(t *testing.T) {
	for _, tc := range headerCases() {
		for _, key := range tc.ints {
			for _, bad := range []string{"abc", "", "1.5", "99999999999999999999"} {
				ext := maps.Clone(tc.in.Encode())
				ext[key] = bad
				err := tc.fresh().Decode(ext)
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != key || !errors.Is(err, ErrInvalidField) {
					t.Errorf("%s with %s=%q: %v", tc.name, key, bad, err)
				}
			}
		}
	}
}

func TestSendHeaderBothNamings(t *testing.T) {
	h := goSendHeader()
	h.BrokerName = "broker-a"
	var v1, v2 SendMessageRequestHeader
	if err := v1.Decode(h.Encode()); err != nil {
		t.Fatal(err)
	}
	short := h.EncodeV2()
	if !IsSendV2Header(short) || IsSendV2Header(h.Encode()) {
		t.Fatal("IsSendV2Header")
	}
	if err := v2.Decode(short); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v1, h) || !reflect.DeepEqual(v2, h) {
		t.Fatalf("\n in %+v\n v1 %+v\n v2 %+v", h, v1, v2)
	}
	// Exactly what the Go client sends for a batch (code 320): a..m.
	batch := map[string]string{"a": "pg", "b": "T", "c": "TBW102", "d": "4", "e": "0", "f": "0",
		"g": "1700000000000", "h": "0", "i": "", "j": "0", "k": "false", "l": "0", "m": "true"}
	var b SendMessageRequestHeader
	if err := b.Decode(batch); err != nil || !b.Batch || b.Topic != "T" || !b.HasMaxReconsumeTimes {
		t.Fatalf("%+v %v", b, err)
	}
	delete(batch, "e")
	if err := b.Decode(batch); err == nil || err.(*FieldError).Field != "e" {
		t.Fatalf("missing e: %v", err)
	}
}

func TestMaxReconsumeTimesPresence(t *testing.T) {
	var h ConsumerSendMsgBackRequestHeader
	if err := h.Decode(map[string]string{"offset": "1", "group": "g", "delayLevel": "0"}); err != nil || h.HasMaxReconsumeTimes {
		t.Fatalf("%+v %v", h, err)
	}
	var s SendMessageRequestHeader
	ext := goSendHeaderPtr().Encode()
	delete(ext, "maxReconsumeTimes")
	if err := s.Decode(ext); err != nil || s.HasMaxReconsumeTimes {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestKVConfigDecodeFor(t *testing.T) {
	var h KVConfigHeader
	if err := h.DecodeFor(GetKVListByNamespace, map[string]string{"namespace": "ns"}); err != nil {
		t.Fatal(err)
	}
	if err := h.DecodeFor(GetKVConfig, map[string]string{"namespace": "ns"}); err == nil {
		t.Fatal("GET_KV_CONFIG without key accepted")
	}
	if err := h.DecodeFor(DeleteKVConfig, map[string]string{"namespace": "ns", "key": "k"}); err != nil {
		t.Fatal(err)
	}
}

func TestBooleanParsingFollowsJava(t *testing.T) {
	var h ResetOffsetRequestHeader
	ext := map[string]string{"topic": "T", "group": "g", "timestamp": "1", "isForce": "TRUE"}
	if err := h.Decode(ext); err != nil || !h.IsForce {
		t.Fatalf("%+v %v", h, err)
	}
	ext["isForce"] = "yes"
	if err := h.Decode(ext); err != nil || h.IsForce {
		t.Fatalf("%+v %v", h, err)
	}
}
