package protocol

import (
	"testing"
)

func TestGetConsumerStatusBodyRoundTrip(t *testing.T) {
	mq := MessageQueue{Topic: "T", BrokerName: "b", QueueID: 1}
	in := &GetConsumerStatusBody{MessageQueueTable: map[MessageQueue]int64{},
		ConsumerTable: map[string]map[MessageQueue]int64{"c1": {mq: 7}, "c2": {}}}
	enc := in.Encode()
	want := `{"consumerTable":{"c1":{{"brokerName":"b","queueId":1,"topic":"T"}:7},"c2":{}},"messageQueueTable":{}}`
	if string(enc) != want {
		t.Fatalf("got  %s\nwant %s", enc, want)
	}
	out, err := DecodeGetConsumerStatusBody(enc)
	if err != nil || out.ConsumerTable["c1"][mq] != 7 || len(out.ConsumerTable) != 2 {
		t.Fatalf("%+v %v", out, err)
	}
	if _, err := DecodeGetConsumerStatusBody([]byte(`{"consumerTable":{"c1":{{"brokerName":`)); err == nil {
		t.Fatal("truncated body accepted")
	}
}

func TestConsumeStatsListRoundTrip(t *testing.T) {
	mq := MessageQueue{Topic: "T", BrokerName: "b", QueueID: 0}
	l := &ConsumeStatsList{BrokerAddr: "1.2.3.4:10911", TotalDiff: 3, Groups: []GroupConsumeStats{{Group: "g",
		Stats: []*ConsumeStats{{ConsumeTps: 1.5, OffsetTable: map[MessageQueue]OffsetWrapper{mq: {BrokerOffset: 5, ConsumerOffset: 2}}}}}}}
	out, err := DecodeConsumeStatsList(l.Encode())
	if err != nil || out.BrokerAddr != l.BrokerAddr || out.TotalDiff != 3 || len(out.Groups) != 1 ||
		out.Groups[0].Stats[0].OffsetTable[mq].BrokerOffset != 5 || out.Groups[0].Stats[0].ConsumeTps != 1.5 {
		t.Fatalf("%s -> %+v %v", l.Encode(), out, err)
	}
}
