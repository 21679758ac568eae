package protocol

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file\n got %q\nwant %q", name, got, want)
	}
}

// goSendHeader is a single-message send header with the values the Go
// client v2.1.2 puts in it (Java's SendMessageProcessor).
func goSendHeader() SendMessageRequestHeader {
	return SendMessageRequestHeader{
		ProducerGroup: "pg", Topic: "TopicTest", DefaultTopic: "TBW102", DefaultTopicQueueNums: 4,
		QueueID: 1, SysFlag: 0, BornTimestamp: 1700000000000, Flag: 0,
		Properties:     "TAGS\x01TagA\x02UNIQ_KEY\x01C00002026B6F000000006911cfd80001\x02",
		ReconsumeTimes: 0, UnitMode: false, MaxReconsumeTimes: 0, HasMaxReconsumeTimes: true, Batch: false,
	}
}

func goSendHeaderPtr() *SendMessageRequestHeader { h := goSendHeader(); return &h }

// factsRoute is an example TopicRouteData as a Java nameserver writes it.
func factsRoute() *TopicRouteData {
	return &TopicRouteData{
		QueueDatas: []QueueData{{BrokerName: "broker-a", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
		BrokerDatas: []BrokerData{{Cluster: "DefaultCluster", BrokerName: "broker-a",
			BrokerAddrs: map[int64]string{0: "10.0.0.1:10911"}}},
	}
}

const factsRouteJSON = `{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"topicSynFlag":0,"writeQueueNums":4}]}`

func TestGoldenRoute(t *testing.T) {
	got := factsRoute().AppendJSON(nil)
	if string(got) != factsRouteJSON {
		t.Fatalf("route JSON differs from Java's TopicRouteData\n got %s\nwant %s", got, factsRouteJSON)
	}
	golden(t, "route.json", got)
}

func TestGoldenClusterInfo(t *testing.T) {
	ci := &ClusterInfo{
		BrokerAddrTable: map[string]BrokerData{"broker-a": {Cluster: "DefaultCluster", BrokerName: "broker-a",
			BrokerAddrs: map[int64]string{0: "10.0.0.1:10911"}}},
		ClusterAddrTable: map[string][]string{"DefaultCluster": {"broker-a"}},
	}
	got := ci.AppendJSON(nil)
	const facts = `{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}`
	if string(got) != facts {
		t.Fatalf("cluster info\n got %s\nwant %s", got, facts)
	}
	golden(t, "cluster_info.json", got)
}

func TestGoldenHeartbeatFromGoClient(t *testing.T) {
	// heartbeat_go.json is input: the Go client's verified output (Java's HeartbeatData), never rewritten.
	in, err := os.ReadFile(filepath.Join("testdata", "heartbeat_go.json"))
	if err != nil {
		t.Fatal(err)
	}
	hb, err := DecodeHeartbeatData(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &HeartbeatData{
		ClientID:        "10.0.0.1@123",
		ProducerDataSet: []ProducerData{{GroupName: "pg"}},
		ConsumerDataSet: []ConsumerData{{
			GroupName: "cg", ConsumeType: ConsumeTypePassively, MessageModel: MessageModelClustering,
			ConsumeFromWhere: ConsumeFromLastOffset,
			SubscriptionDataSet: []SubscriptionData{{Topic: "T", SubString: "a || b", TagsSet: []string{"a", "b"},
				CodeSet: CodeSet{97, 98}, SubVersion: 1, ExpressionType: ExpressionTypeTag}},
		}},
	}
	if !reflect.DeepEqual(hb, want) {
		t.Fatalf("\n got %+v\nwant %+v", hb, want)
	}
	out, err := hb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "heartbeat.json", out)
	again, err := DecodeHeartbeatData(out)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("re-decode: %+v %v", again, err)
	}
}

func pullResponse(st SerializeType) *Command {
	req := &Command{Opaque: 7, SerializeType: st}
	resp := NewResponse(req, ResponseSuccess, "")
	resp.SetHeader(&PullMessageResponseHeader{SuggestWhichBrokerID: 0, NextBeginOffset: 33, MinOffset: 0, MaxOffset: 33})
	resp.Body = []byte("raw-commitlog-records")
	return resp
}

func TestGoldenPullResponseFrames(t *testing.T) {
	for name, st := range map[string]SerializeType{"pull_response.frame": SerializeJSON, "pull_response_binary.frame": SerializeRocketMQ} {
		c := pullResponse(st)
		frame, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, frame)
		got, err := ReadFrame(bytes.NewReader(frame), 0)
		if err != nil || !sameCommand(c, got) {
			t.Fatalf("%s: %+v %v", name, got, err)
		}
		var h PullMessageResponseHeader
		if err := h.Decode(got.ExtFields); err != nil || h.NextBeginOffset != 33 {
			t.Fatalf("%s: %+v %v", name, h, err)
		}
	}
}

func TestGoldenSendRequestAsGoClient(t *testing.T) {
	h := goSendHeader()
	c := &Command{Code: SendMessage, Language: LanguageGo, Version: VersionGoClient, Opaque: 1,
		ExtFields: h.Encode(), Body: []byte("hello")}
	frame, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "send_request_go.frame", frame)
	prefix := `{"code":10,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{`
	if !bytes.HasPrefix(frame[8:], []byte(prefix)) {
		t.Fatalf("header does not look like the Go client's: %s", frame[8:])
	}
	got, err := ReadFrame(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatal(err)
	}
	var back SendMessageRequestHeader
	if err := back.Decode(got.ExtFields); err != nil || !reflect.DeepEqual(back, h) || string(got.Body) != "hello" {
		t.Fatalf("%+v %v", back, err)
	}
}

func TestGoldenBatchRequestAsGoClient(t *testing.T) {
	h := goSendHeader()
	h.Batch, h.Properties = true, ""
	// One batch entry exactly as Java's MessageDecoder.encodeMessages shows it (body "xy", TAGS=a).
	entry, _ := hex.DecodeString("0000001f000000000000000000000000000000027879000754414753016102")
	c := &Command{Code: SendBatchMessage, Language: LanguageGo, Version: VersionGoClient, Opaque: 2,
		ExtFields: h.EncodeV2(), Body: entry}
	frame, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "send_batch_request_go.frame", frame)
	got, err := ReadFrame(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatal(err)
	}
	var back SendMessageRequestHeader
	if err := back.Decode(got.ExtFields); err != nil || !back.Batch || len(got.Body) != 31 {
		t.Fatalf("%+v %v", back, err)
	}
}
