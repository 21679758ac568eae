package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// sendHeader is what the Go client sends for a single message to topic
// (Java's SendMessageProcessor), with Go's trailing-separator properties.
func sendHeader(topic string, queueID int32, props string) *protocol.SendMessageRequestHeader {
	return &protocol.SendMessageRequestHeader{
		ProducerGroup: "pg", Topic: topic, DefaultTopic: TopicAutoCreate, DefaultTopicQueueNums: 4,
		QueueID: queueID, BornTimestamp: 1_700_000_000_000, Flag: 7, Properties: props,
	}
}

// produce sends body with header h under code; V2 codes use one-letter
// names.
func produce(t *testing.T, c *remoting.Client, code int16, h *protocol.SendMessageRequestHeader, body []byte) *protocol.Command {
	t.Helper()
	req := protocol.NewRequest(code, nil)
	if code == protocol.SendMessage {
		req.ExtFields = h.Encode()
	} else {
		req.ExtFields = h.EncodeV2()
	}
	req.Body = body
	return call(t, c, req)
}

func mustSendOK(t *testing.T, resp *protocol.Command) protocol.SendMessageResponseHeader {
	t.Helper()
	if resp.Code != protocol.ResponseSuccess {
		t.Fatalf("send: code %d remark %q", resp.Code, resp.Remark)
	}
	var rh protocol.SendMessageResponseHeader
	if err := rh.Decode(resp.ExtFields); err != nil {
		t.Fatalf("send response header: %v (%v)", err, resp.ExtFields)
	}
	return rh
}

// viewByOffset reads one record back with VIEW_MESSAGE_BY_ID.
func viewByOffset(t *testing.T, c *remoting.Client, off int64) message.View {
	t.Helper()
	resp := call(t, c, protocol.NewRequest(protocol.ViewMessageByID, &protocol.ViewMessageRequestHeader{Offset: off}))
	if resp.Code != protocol.ResponseSuccess {
		t.Fatalf("view %d: code %d %q", off, resp.Code, resp.Remark)
	}
	v, err := message.Parse(resp.Body)
	if err != nil || len(v.Raw) != len(resp.Body) {
		t.Fatalf("view %d: %v (%d of %d bytes)", off, err, len(v.Raw), len(resp.Body))
	}
	return v
}

// offsetOfID parses a 32-character offsetMsgId and checks its host.
func offsetOfID(t *testing.T, b *Broker, id string) int64 {
	t.Helper()
	host, off, err := message.ParseOffsetMsgID(id)
	if err != nil || host != b.storeHost || len(id) != 32 {
		t.Fatalf("msgId %q: host %v (want %v), err %v", id, host, b.storeHost, err)
	}
	return off
}

func expectCode(t *testing.T, resp *protocol.Command, code int16) {
	t.Helper()
	if resp.Code != code {
		t.Fatalf("code %d (%s), want %d; remark %q", resp.Code, protocol.ResponseCodeName(resp.Code), code, resp.Remark)
	}
}

func TestSendV1AndV2StoreIdenticalRecords(t *testing.T) {
	b, c := startBroker(t, nil)
	props := "TAGS\x01tagA\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01ABC\x02WAIT\x01true\x02CLUSTER\x01forged\x02"
	body := []byte("hello mqd")
	var views []message.View
	for i, code := range []int16{protocol.SendMessage, protocol.SendMessageV2} {
		rh := mustSendOK(t, produce(t, c, code, sendHeader("SendT", 1, props), body))
		if rh.QueueID != 1 || rh.QueueOffset != int64(i) || rh.MsgRegion != "DefaultRegion" || !rh.TraceOn {
			t.Fatalf("code %d: response %+v", code, rh)
		}
		v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID))
		if v.PhysOffset != offsetOfID(t, b, rh.MsgID) || v.QueueOffset != rh.QueueOffset {
			t.Fatalf("record at %d / queue offset %d, response %+v", v.PhysOffset, v.QueueOffset, rh)
		}
		views = append(views, v)
	}
	want := "TAGS\x01tagA\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01ABC\x02CLUSTER\x01DefaultCluster"
	clientAddr := c.LocalAddr().(*net.TCPAddr).AddrPort()
	for _, v := range views {
		switch {
		case v.TopicString() != "SendT" || !bytes.Equal(v.Body, body) || v.QueueID != 1 || v.Flag != 7:
			t.Fatalf("record %q/%q queue %d flag %d", v.Topic, v.Body, v.QueueID, v.Flag)
		case v.PropertiesString() != want:
			t.Fatalf("properties %q, want %q", v.Properties, want)
		case v.BornHost() != clientAddr || v.StoreHost() != b.storeHost:
			t.Fatalf("born %v (client %v) store %v (broker %v)", v.BornHost(), clientAddr, v.StoreHost(), b.storeHost)
		case v.BornTimestamp != 1_700_000_000_000 || !v.CheckBodyCRC() || v.SysFlag != 0:
			t.Fatalf("born ts %d crc ok %v sysFlag %d", v.BornTimestamp, v.CheckBodyCRC(), v.SysFlag)
		}
	}
	// Everything but what the store assigns is identical.
	a, z := views[0], views[1]
	if a.StoreTimestamp > z.StoreTimestamp || !bytes.Equal(a.Raw[72:], z.Raw[72:]) || !bytes.Equal(a.Raw[:20], z.Raw[:20]) ||
		!bytes.Equal(a.Raw[36:56], z.Raw[36:56]) || !bytes.Equal(a.Raw[64:72], z.Raw[64:72]) {
		t.Fatalf("records differ:\n%x\n%x", a.Raw, z.Raw)
	}
	// The Go client decodes the record and derives the same ids.
	ms := primitive.DecodeMessage(a.Raw)
	if len(ms) != 1 || ms[0].Topic != "SendT" || ms[0].GetTags() != "tagA" || ms[0].StoreHost != b.Addr() ||
		ms[0].OffsetMsgId != a.OffsetMsgID() || ms[0].MsgId != "ABC" {
		t.Fatalf("Go client decode: %+v", ms)
	}
}

func TestSendWaitFalseKeptForTheEngine(t *testing.T) {
	b, c := startBroker(t, nil)
	var ids []string
	for _, wait := range []string{"false", "FALSE", "no"} {
		rh := mustSendOK(t, produce(t, c, protocol.SendMessageV2, sendHeader("WaitT", 0, "WAIT\x01"+wait+"\x02a\x01b"), []byte("x")))
		ids = append(ids, rh.MsgID)
	}
	// Not waited for, so not yet readable under SYNC_FLUSH: the next
	// waiting send's flush makes them durable.
	mustSendOK(t, produce(t, c, protocol.SendMessageV2, sendHeader("WaitT", 0, "WAIT\x01true"), []byte("x")))
	for _, id := range ids {
		v := viewByOffset(t, c, offsetOfID(t, b, id))
		if got := v.PropertiesString(); got != "WAIT\x01false\x02a\x01b\x02CLUSTER\x01DefaultCluster" {
			t.Fatalf("stored as %q", got)
		}
	}
}

func TestSendMultiTagTopicAndNegativeQueue(t *testing.T) {
	b, c := startBroker(t, nil)
	if err := b.topics.Put(protocol.TopicConfig{TopicName: "Multi", ReadQueueNums: 3, WriteQueueNums: 3, Perm: 6,
		TopicFilterType: protocol.TopicFilterMultiTag}); err != nil {
		t.Fatal(err)
	}
	seen := map[int32]bool{}
	for range 30 {
		rh := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("Multi", -1, ""), []byte("m")))
		if rh.QueueID < 0 || rh.QueueID >= 3 {
			t.Fatalf("random queue %d", rh.QueueID)
		}
		seen[rh.QueueID] = true
		v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID))
		if v.SysFlag != int32(message.FlagMultiTags) || v.QueueID != rh.QueueID {
			t.Fatalf("sysFlag %d queue %d", v.SysFlag, v.QueueID)
		}
	}
	if len(seen) < 2 {
		t.Fatalf("30 sends with queueId -1 all went to %v", seen)
	}
}

func TestSendAutoCreatesFromTBW102(t *testing.T) {
	b, c := startBroker(t, nil)
	h := sendHeader("AutoT", 3, "")
	h.DefaultTopicQueueNums = 4
	mustSendOK(t, produce(t, c, protocol.SendMessage, h, []byte("a")))
	tc, ok := b.topics.Get("AutoT")
	if !ok || tc.ReadQueueNums != 4 || tc.WriteQueueNums != 4 || tc.Perm != 6 || tc.TopicFilterType != "SINGLE_TAG" {
		t.Fatalf("auto-created %+v %v", tc, ok)
	}
	// More queues than TBW102's 8 are capped.
	h = sendHeader("AutoBig", 0, "")
	h.DefaultTopicQueueNums = 100
	mustSendOK(t, produce(t, c, protocol.SendMessage, h, []byte("a")))
	if tc, _ := b.topics.Get("AutoBig"); tc.WriteQueueNums != 8 {
		t.Fatalf("capped at %d queues, want 8", tc.WriteQueueNums)
	}
}

func TestSendTopicNotExistWithoutAutoCreate(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.AutoCreateTopicEnable = false })
	expectCode(t, produce(t, c, protocol.SendMessage, sendHeader("NoSuch", 0, ""), []byte("a")), protocol.ResponseTopicNotExist)
	if _, ok := b.topics.Get("NoSuch"); ok {
		t.Fatal("topic created")
	}
}

func TestSendRejections(t *testing.T) {
	_, c := startBroker(t, func(cfg *Config) { cfg.Store.MaxMessageSize = 1024 })
	cases := []struct {
		name  string
		h     *protocol.SendMessageRequestHeader
		body  []byte
		code  int16
		batch bool
	}{
		{"system topic", sendHeader(TopicSchedule, 0, ""), nil, protocol.ResponseNoPermission, false},
		{"self test topic", sendHeader(TopicSelfTest, 0, ""), nil, protocol.ResponseNoPermission, false},
		{"invalid name", sendHeader("bad topic!", 0, ""), nil, protocol.ResponseSystemError, false},
		{"too long name", sendHeader(strings.Repeat("t", 128), 0, ""), nil, protocol.ResponseSystemError, false},
		{"queue out of range", sendHeader("RejT", 8, ""), nil, protocol.ResponseSystemError, false},
		{"oversize body", sendHeader("RejT", 0, ""), make([]byte, 1025), protocol.ResponseMessageIllegal, false},
		{"properties too long", sendHeader("RejT", 0, "k\x01"+strings.Repeat("v", 33000)), nil, protocol.ResponseMessageIllegal, false},
		{"batch delay", sendHeader("RejT", 0, "DELAY\x013"), batchBody(t, 2), protocol.ResponseMessageIllegal, true},
		{"batch transaction", sendHeader("RejT", 0, "TRAN_MSG\x01true"), batchBody(t, 2), protocol.ResponseMessageIllegal, true},
		{"batch garbage", sendHeader("RejT", 0, ""), []byte{0, 0, 0, 30, 1, 2, 3}, protocol.ResponseMessageIllegal, true},
		{"batch empty", sendHeader("RejT", 0, ""), nil, protocol.ResponseMessageIllegal, true},
		{"batch retry topic", sendHeader("%RETRY%g", 0, ""), batchBody(t, 1), protocol.ResponseMessageIllegal, true},
	}
	for _, tc := range cases {
		code := protocol.SendMessage
		if tc.batch {
			tc.h.Batch, code = true, protocol.SendBatchMessage
		}
		resp := produce(t, c, code, tc.h, tc.body)
		if resp.Code != tc.code || resp.Remark == "" {
			t.Errorf("%s: code %d remark %q, want %d", tc.name, resp.Code, resp.Remark, tc.code)
		}
	}
	// A header without required fields.
	req := protocol.NewRequest(protocol.SendMessage, nil)
	req.SetExt("topic", "RejT")
	expectCode(t, call(t, c, req), protocol.ResponseSystemError)
}

func TestSendDelayStoredInScheduleTopic(t *testing.T) {
	b, c := startBroker(t, nil)
	rh := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("DelayT", 0, "DELAY\x013\x02"), []byte("d")))
	v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID))
	want := "DELAY\x013\x02CLUSTER\x01DefaultCluster\x02REAL_TOPIC\x01DelayT\x02REAL_QID\x010"
	if v.TopicString() != "SCHEDULE_TOPIC_XXXX" || v.QueueID != 2 || v.PropertiesString() != want {
		t.Fatalf("stored %q/%d %q", v.Topic, v.QueueID, v.Properties)
	}
	if rh.QueueID != 0 || rh.QueueOffset != 0 {
		t.Fatalf("response queue %d offset %d", rh.QueueID, rh.QueueOffset)
	}
}

// goMessage is a message as the Go client builds batch entries from.
func goMessage(i int) *primitive.Message {
	m := primitive.NewMessage("BatchT", []byte("body-"+strconv.Itoa(i)))
	m.WithTag("t" + strconv.Itoa(i))
	m.WithKeys([]string{"key-" + strconv.Itoa(i)})
	m.Flag = int32(i)
	return m
}

// batchBody is a batch body of n entries encoded by the Go client itself.
func batchBody(t *testing.T, n int) []byte {
	t.Helper()
	ms := make([]*primitive.Message, n)
	for i := range ms {
		ms[i] = goMessage(i)
	}
	return producer.MarshalMessageBatch(ms...)
}

func TestSendBatch(t *testing.T) {
	b, c := startBroker(t, nil)
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("BatchT", 2, ""), []byte("first")))
	h := sendHeader("BatchT", 2, "batchProp\x01bv")
	h.Batch = true
	rh := mustSendOK(t, produce(t, c, protocol.SendBatchMessage, h, batchBody(t, 3)))
	ids := strings.Split(rh.MsgID, ",")
	if len(ids) != 3 || rh.QueueID != 2 || rh.QueueOffset != 1 {
		t.Fatalf("batch response %+v", rh)
	}
	for i, id := range ids {
		v := viewByOffset(t, c, offsetOfID(t, b, id))
		props := message.ParseProperties(v.PropertiesString())
		want := map[string]string{"TAGS": "t" + strconv.Itoa(i), "KEYS": "key-" + strconv.Itoa(i),
			"batchProp": "bv", "CLUSTER": "DefaultCluster"}
		if v.QueueOffset != int64(1+i) || v.QueueID != 2 || string(v.Body) != "body-"+strconv.Itoa(i) ||
			v.Flag != int32(i) || fmt.Sprint(props) != fmt.Sprint(want) || !v.CheckBodyCRC() {
			t.Fatalf("entry %d: queue offset %d flag %d body %q props %q", i, v.QueueOffset, v.Flag, v.Body, v.Properties)
		}
		if !strings.HasSuffix(v.PropertiesString(), "\x02batchProp\x01bv\x02CLUSTER\x01DefaultCluster") ||
			strings.Contains(v.PropertiesString(), "\x02\x02") {
			t.Fatalf("entry %d properties %q", i, v.Properties)
		}
	}
}

func TestJoinProperties(t *testing.T) {
	for _, tc := range [][3]string{
		{"", "C\x01d", "C\x01d"},
		{"a\x01b", "C\x01d", "a\x01b\x02C\x01d"},
		{"a\x01b\x02", "C\x01d", "a\x01b\x02C\x01d"},
	} {
		if got := joinProperties(tc[0], tc[1]); got != tc[2] {
			t.Errorf("joinProperties(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestStoredProperties(t *testing.T) {
	for _, tc := range [][2]string{
		{"", "CLUSTER\x01c"},
		{"a\x01b", "a\x01b\x02CLUSTER\x01c"},
		{"a\x01b\x02\x02=\x01\x02\x01v\x02k\x01\x02CLUSTER\x01x\x02WAIT\x01True", "a\x01b\x02CLUSTER\x01c"},
		{"k\x01v\x01w\x02", "k\x01v\x01w\x02CLUSTER\x01c"}, // Java keeps values holding \x01
	} {
		if got := storedProperties(tc[0], "c"); got != tc[1] {
			t.Errorf("storedProperties(%q) = %q, want %q", tc[0], got, tc[1])
		}
	}
}

func TestSendRetryTopicAndDLQ(t *testing.T) {
	b, c := startBroker(t, nil)
	h := sendHeader("%RETRY%cg", 0, "")
	h.ReconsumeTimes, h.MaxReconsumeTimes, h.HasMaxReconsumeTimes = 2, 16, true
	rh := mustSendOK(t, produce(t, c, protocol.SendMessageV2, h, []byte("r")))
	if v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID)); v.TopicString() != "%RETRY%cg" || v.ReconsumeTimes != 2 {
		t.Fatalf("retry send stored in %q reconsume %d", v.Topic, v.ReconsumeTimes)
	}
	h.ReconsumeTimes = 16
	rh = mustSendOK(t, produce(t, c, protocol.SendMessageV2, h, []byte("r")))
	if v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID)); v.TopicString() != "%DLQ%cg" {
		t.Fatalf("exhausted retry stored in %q", v.Topic)
	}
	if tc, ok := b.topics.Get("%DLQ%cg"); !ok || tc.WriteQueueNums != 1 {
		t.Fatalf("DLQ topic %+v", tc)
	}
	b2, c2 := startBroker(t, func(cfg *Config) { cfg.AutoCreateSubscriptionGroup = false })
	expectCode(t, produce(t, c2, protocol.SendMessage, sendHeader("%RETRY%nog", 0, ""), nil), protocol.ResponseSubscriptionGroupNotExist)
	_ = b2
}

func TestDecodeBatchGoEncoding(t *testing.T) {
	// The facts sheet's example entry (body "xy", TAGS=a), verified against
	// the Go client.
	ex := []byte{0, 0, 0, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'x', 'y', 0, 7, 'T', 'A', 'G', 'S', 1, 'a', 2}
	es, err := decodeBatch(ex)
	if err != nil || len(es) != 1 || string(es[0].body) != "xy" || es[0].props != "TAGS\x01a\x02" {
		t.Fatalf("%+v %v", es, err)
	}
	es, err = decodeBatch(batchBody(t, 5))
	if err != nil || len(es) != 5 || es[4].flag != 4 || string(es[4].body) != "body-4" {
		t.Fatalf("%+v %v", es, err)
	}
}

// TestDecodeBatchMutations is a quick deterministic fuzz: random mutations
// of a valid batch must decode or fail, never panic, and decoded entries
// must stay inside the input.
func TestDecodeBatchMutations(t *testing.T) {
	valid := batchBody(t, 4)
	r := rand.New(rand.NewPCG(1, 2))
	for range 50_000 {
		in := append([]byte(nil), valid[:r.IntN(len(valid)+1)]...)
		for range r.IntN(4) {
			if len(in) > 0 {
				in[r.IntN(len(in))] = byte(r.Uint32())
			}
		}
		if r.IntN(4) == 0 && len(in) >= 20 {
			binary.BigEndian.PutUint32(in[16:], r.Uint32()) // hostile body length
		}
		checkDecodeBatch(t, in)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte{})
	f.Add(producer.MarshalMessageBatch(goMessage(1), goMessage(2)))
	f.Add([]byte{0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeBatch(t, in) })
}

func checkDecodeBatch(t *testing.T, in []byte) {
	es, err := decodeBatch(in)
	if err != nil {
		return
	}
	n := 0
	for _, e := range es {
		n += batchEntryFixed + len(e.body) + len(e.props)
	}
	if n != len(in) {
		t.Fatalf("entries cover %d of %d bytes", n, len(in))
	}
}

// The send flags' meaning, key by key (FuzzSendFlags' reference): the
// first chunk with a non-empty value of a key counts (LookupProperty).
func lookupTransactional(props string, sysFlag int32) bool {
	v, _ := message.LookupProperty(props, message.PropTranMsg)
	return strings.EqualFold(v, "true") || sysFlag&protocol.MsgSysFlagTransactionMask != 0
}

func lookupWaits(props string) bool {
	v, ok := message.LookupProperty(props, message.PropWait)
	return !ok || v == "" || strings.EqualFold(v, "true")
}

func lookupTimer(props string) bool {
	for _, k := range []string{propTimerDeliver, propTimerSec, propTimerMs} {
		if _, ok := message.LookupProperty(props, k); ok {
			return true
		}
	}
	return false
}

// FuzzSendFlags: the flags noted in one pass (scanSendFlags, and the pass
// that builds the stored properties) say what the key-by-key lookups say.
func FuzzSendFlags(f *testing.F) {
	f.Add("TRAN_MSG\x01true\x02WAIT\x01false\x02DELAY\x013", int32(0))
	f.Add("WAIT\x01\x02WAIT\x01TRUE\x02WAIT\x01no\x02TIMER_DELAY_SEC\x015", int32(4))
	f.Add("TRAN_MSG\x01x\x02TRAN_MSG\x01true\x02\x01DELAY\x02DELAY\x01", int32(8))
	f.Add("k\x01v\x01TIMER_DELIVER_MS\x02TIMER_DELAY_MS\x01\x01", int32(0))
	f.Fuzz(func(t *testing.T, props string, sysFlag int32) {
		_, built := appendStoredProperties(nil, props, "c")
		for _, fl := range []sendFlags{scanSendFlags(props), built} {
			if got, want := fl.transactional(sysFlag), lookupTransactional(props, sysFlag); got != want {
				t.Fatalf("%q: transactional %v, lookups say %v", props, got, want)
			}
			if got, want := !fl.noWait, lookupWaits(props); got != want {
				t.Fatalf("%q: waits %v, lookups say %v", props, got, want)
			}
			if got, want := fl.timer, lookupTimer(props); got != want {
				t.Fatalf("%q: timer %v, lookups say %v", props, got, want)
			}
			if _, set := message.LookupProperty(props, message.PropDelay); fl.delay != set {
				t.Fatalf("%q: delay %v, lookup says %v", props, fl.delay, set)
			}
		}
	})
}
