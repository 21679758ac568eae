package protocol

import (
	"bytes"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// Frames recorded on the wire from the Apache RocketMQ 4.9.7 Java client
// (compat/java CaptureJavaFrames: a recording proxy between the client and
// mqd). They are input, never rewritten: regenerate them with
// `mvn -q -B -f compat/java/pom.xml test -Pmixed -Dtest=CaptureJavaFrames`
// (REGISTER_BROKER comes from an Apache RocketMQ 4.9.7 broker).

// javaFrame reads testdata/name as one frame and checks the fields every
// Java 4.9.7 request shares: JSON header, language JAVA, version 407.
func javaFrame(t *testing.T, name string, code int16) *Command {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(raw)
	c, err := ReadFrame(r, 0)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if r.Len() != 0 {
		t.Fatalf("%s: %d bytes after the frame", name, r.Len())
	}
	if c.Code != code || c.Language != LanguageJava || c.Version != 407 || c.SerializeType != SerializeJSON || c.IsResponse() {
		t.Fatalf("%s: code %d lang %s version %d serialize %v flag %d", name, c.Code, c.Language, c.Version, c.SerializeType, c.Flag)
	}
	// Re-encoding what we decoded must decode to the same command.
	again, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadFrame(bytes.NewReader(again), 0)
	if err != nil || !sameCommand(c, back) {
		t.Fatalf("%s: re-encoded frame differs: %+v %v", name, back, err)
	}
	return c
}

func TestGoldenJavaSendV2(t *testing.T) {
	c := javaFrame(t, "java_send_v2_request.frame", SendMessageV2)
	var h SendMessageRequestHeader
	if err := h.Decode(c.ExtFields); err != nil {
		t.Fatal(err)
	}
	want := SendMessageRequestHeader{
		ProducerGroup: "javapg", Topic: "JavaGolden", DefaultTopic: "TBW102", DefaultTopicQueueNums: 4,
		QueueID: 2, SysFlag: 0, BornTimestamp: 1796399474990, Flag: 0,
		Properties:     "p\x01v\x02KEYS\x01k1\x02UNIQ_KEY\x01FD000000000000000000000000000002115B30946E0912D9F92D0000\x02WAIT\x01true\x02TAGS\x01TagA",
		ReconsumeTimes: 0, UnitMode: false, Batch: false, BrokerName: "mqd-a",
		// The Java client sends no maxReconsumeTimes ("l") on a plain send.
		HasMaxReconsumeTimes: false,
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("\n got %+v\nwant %+v", h, want)
	}
	if string(c.Body) != "hello java" {
		t.Fatalf("body %q", c.Body)
	}
}

func TestGoldenJavaHeartbeat(t *testing.T) {
	c := javaFrame(t, "java_heartbeat_request.frame", HeartBeat)
	hb, err := DecodeHeartbeatData(c.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := &HeartbeatData{
		ClientID: "192.0.2.2@golden",
		// One client instance holds the producer, so its inner producer
		// group is listed too.
		ProducerDataSet: []ProducerData{{GroupName: "CLIENT_INNER_PRODUCER"}, {GroupName: "javapg"}},
		ConsumerDataSet: []ConsumerData{{
			GroupName: "javacg", ConsumeType: ConsumeTypePassively, MessageModel: MessageModelClustering,
			ConsumeFromWhere: ConsumeFromFirstOffset,
			SubscriptionDataSet: []SubscriptionData{
				// Java's String.hashCode of "TagA" and "TagB".
				{Topic: "JavaGolden", SubString: "TagA || TagB", TagsSet: []string{"TagA", "TagB"},
					CodeSet: CodeSet{2598919, 2598920}, SubVersion: 1796399475030, ExpressionType: ExpressionTypeTag},
				// The retry subscription every clustering push consumer adds.
				{Topic: "%RETRY%javacg", SubString: "*", TagsSet: []string{}, CodeSet: CodeSet{},
					SubVersion: 1796399475032, ExpressionType: ExpressionTypeTag},
			},
		}},
	}
	if !reflect.DeepEqual(hb, want) {
		t.Fatalf("\n got %+v\nwant %+v", hb, want)
	}
	out, err := hb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := DecodeHeartbeatData(out)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("re-decode: %+v %v", again, err)
	}
}

func TestGoldenJavaPull(t *testing.T) {
	c := javaFrame(t, "java_pull_request.frame", PullMessage)
	var h PullMessageRequestHeader
	if err := h.Decode(c.ExtFields); err != nil {
		t.Fatal(err)
	}
	// sysFlag 2 = FLAG_SUSPEND only: no commit-offset flag (offset 0 known
	// nowhere yet) and no subscription in the header, so the broker uses the
	// heartbeat's.
	want := PullMessageRequestHeader{
		ConsumerGroup: "javacg", Topic: "JavaGolden", QueueID: 3, QueueOffset: 0, MaxMsgNums: 32,
		SysFlag: 2, CommitOffset: 0, SuspendTimeoutMillis: 15000, SubVersion: 1796399475488, ExpressionType: "TAG",
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("\n got %+v\nwant %+v", h, want)
	}
	if c.ExtFields["bname"] != "mqd-a" {
		t.Fatalf("4.9.x pull header carries the broker name as bname: %q", c.ExtFields["bname"])
	}
}

// javaRegister decodes a REGISTER_BROKER frame recorded from the Apache
// RocketMQ 4.9.7 broker and checks its header and body CRC.
func javaRegister(t *testing.T, name string, compressed bool) *RegisterBrokerBody {
	t.Helper()
	c := javaFrame(t, name, RegisterBroker)
	var h RegisterBrokerRequestHeader
	if err := h.Decode(c.ExtFields); err != nil {
		t.Fatal(err)
	}
	want := RegisterBrokerRequestHeader{BrokerName: "java-golden", BrokerAddr: "127.0.0.1:33481",
		ClusterName: "DefaultCluster", HaServerAddr: "192.0.2.2:33482", BrokerID: 0, Compressed: compressed,
		BodyCrc32: h.BodyCrc32}
	if h != want {
		t.Fatalf("\n got %+v\nwant %+v", h, want)
	}
	// UtilAll.crc32: CRC32-IEEE of the body, sign bit cleared.
	if crc := int32(crc32.ChecksumIEEE(c.Body) & 0x7FFFFFFF); h.BodyCrc32 == 0 || crc != h.BodyCrc32 {
		t.Fatalf("bodyCrc32 %d, body's is %d", h.BodyCrc32, crc)
	}
	b, err := DecodeRegisterBrokerBody(c.Body, h.Compressed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The topics a fresh 4.9.7 broker (autoCreateTopicEnable=true) registers.
var javaBrokerTopics = []string{"BenchmarkTest", "DefaultCluster", "DefaultCluster_REPLY_TOPIC", "OFFSET_MOVED_EVENT",
	"SCHEDULE_TOPIC_XXXX", "SELF_TEST_TOPIC", "TBW102", "java-golden"}

func TestGoldenJavaRegisterBroker(t *testing.T) {
	b := javaRegister(t, "java_register_broker_request.frame", false)
	w := b.TopicConfigSerializeWrapper
	if got := slices.Sorted(maps.Keys(w.TopicConfigTable)); !slices.Equal(got, javaBrokerTopics) {
		t.Fatalf("topics %v", got)
	}
	if tc := w.TopicConfigTable["TBW102"]; tc != (TopicConfig{TopicName: "TBW102", ReadQueueNums: 8, WriteQueueNums: 8,
		Perm: 7, TopicFilterType: "SINGLE_TAG"}) {
		t.Fatalf("TBW102 %+v", tc)
	}
	if tc := w.TopicConfigTable["SCHEDULE_TOPIC_XXXX"]; tc.ReadQueueNums != 18 || tc.Perm != 6 {
		t.Fatalf("SCHEDULE_TOPIC_XXXX %+v", tc)
	}
	if w.DataVersion.Timestamp != 1796400207948 || w.DataVersion.Counter != 0 || len(b.FilterServerList) != 0 {
		t.Fatalf("version %+v filter servers %v", w.DataVersion, b.FilterServerList)
	}
}

// compressedRegister=true: the zlib form of the same table, after a
// brokerPermission update bumped the data version.
func TestGoldenJavaRegisterBrokerCompressed(t *testing.T) {
	plain := javaRegister(t, "java_register_broker_request.frame", false)
	b := javaRegister(t, "java_register_broker_compressed_request.frame", true)
	w := b.TopicConfigSerializeWrapper
	if got := slices.Sorted(maps.Keys(w.TopicConfigTable)); !slices.Equal(got, javaBrokerTopics) {
		t.Fatalf("topics %v", got)
	}
	for name, tc := range plain.TopicConfigSerializeWrapper.TopicConfigTable {
		c := w.TopicConfigTable[name]
		if c.TopicName != tc.TopicName || c.ReadQueueNums != tc.ReadQueueNums || c.WriteQueueNums != tc.WriteQueueNums ||
			c.Perm != tc.Perm || c.TopicFilterType != tc.TopicFilterType {
			t.Errorf("%s: compressed %+v, plain %+v", name, c, tc)
		}
	}
	if w.DataVersion.Counter <= plain.TopicConfigSerializeWrapper.DataVersion.Counter {
		t.Fatalf("data version %+v not after %+v", w.DataVersion, plain.TopicConfigSerializeWrapper.DataVersion)
	}
}
