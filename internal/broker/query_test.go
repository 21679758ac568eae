package broker

import (
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// awaitCond polls cond for up to 5 s (dispatch to consume queues and the
// index is asynchronous).
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func queryByKey(t *testing.T, c *remoting.Client, topic, key string, unique bool) *protocol.Command {
	t.Helper()
	h := &protocol.QueryMessageRequestHeader{Topic: topic, Key: key, MaxNum: 64, BeginTimestamp: 0,
		EndTimestamp: time.Now().Add(time.Hour).UnixMilli(), UniqueKeyQuery: unique}
	return call(t, c, protocol.NewRequest(protocol.QueryMessage, h))
}

func TestQueryMessageByKeyAndUniqueKey(t *testing.T) {
	b, c := startBroker(t, nil)
	for i := range 3 {
		props := "KEYS\x01order-" + strconv.Itoa(i%2) + " common\x02UNIQ_KEY\x01U" + strconv.Itoa(i) + "\x02"
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("QueryT", 0, props), []byte("q"+strconv.Itoa(i))))
	}
	awaitCond(t, "index", func() bool {
		return len(primitive.DecodeMessage(queryByKey(t, c, "QueryT", "common", false).Body)) == 3
	})

	resp := queryByKey(t, c, "QueryT", "common", false)
	ms := primitive.DecodeMessage(resp.Body)
	if len(ms) != 3 || string(ms[0].Body) != "q0" || string(ms[2].Body) != "q2" {
		t.Fatalf("query common: %d messages", len(ms))
	}
	var rh protocol.QueryMessageResponseHeader
	if err := rh.Decode(resp.ExtFields); err != nil || rh.IndexLastUpdateTimestamp <= 0 || rh.IndexLastUpdatePhyoffset < ms[2].CommitLogOffset {
		t.Fatalf("response header %+v %v", rh, err)
	}
	if ms := primitive.DecodeMessage(queryByKey(t, c, "QueryT", "order-0", false).Body); len(ms) != 2 {
		t.Fatalf("order-0: %d messages", len(ms))
	}
	resp = queryByKey(t, c, "QueryT", "U1", true)
	ms = primitive.DecodeMessage(resp.Body)
	if resp.Code != protocol.ResponseSuccess || len(ms) != 1 || ms[0].MsgId != "U1" || ms[0].StoreHost != b.Addr() {
		t.Fatalf("unique key: code %d, %d messages", resp.Code, len(ms))
	}
	for _, miss := range [][2]string{{"QueryT", "nope"}, {"OtherTopic", "common"}} {
		resp := queryByKey(t, c, miss[0], miss[1], false)
		expectCode(t, resp, protocol.ResponseQueryNotFound)
		if resp.Ext("indexLastUpdateTimestamp") == "" || len(resp.Body) != 0 {
			t.Fatalf("not found: ext %v body %d", resp.ExtFields, len(resp.Body))
		}
	}
}

func TestViewMessageNotFound(t *testing.T) {
	_, c := startBroker(t, nil)
	for _, off := range []int64{0, 12345, -1} {
		resp := call(t, c, protocol.NewRequest(protocol.ViewMessageByID, &protocol.ViewMessageRequestHeader{Offset: off}))
		expectCode(t, resp, protocol.ResponseSystemError)
	}
	expectCode(t, call(t, c, protocol.NewRequest(protocol.ViewMessageByID, nil)), protocol.ResponseSystemError)
}

// queueOffset asks code about (topic, queue) and returns the `offset` or
// `timestamp` field, which must always be present.
func queueOffset(t *testing.T, c *remoting.Client, code int16, topic string, queue int32) int64 {
	t.Helper()
	var req *protocol.Command
	key := "offset"
	switch code {
	case protocol.SearchOffsetByTimestamp:
		req = protocol.NewRequest(code, &protocol.SearchOffsetRequestHeader{Topic: topic, QueueID: queue, Timestamp: time.Now().UnixMilli()})
	case protocol.GetEarliestMsgStoretime:
		key = "timestamp"
		fallthrough
	default:
		req = protocol.NewRequest(code, &protocol.TopicQueueRequestHeader{Topic: topic, QueueID: queue})
	}
	resp := call(t, c, req)
	expectCode(t, resp, protocol.ResponseSuccess)
	v, err := strconv.ParseInt(resp.Ext(key), 10, 64)
	if err != nil {
		t.Fatalf("code %d: %s = %q", code, key, resp.Ext(key))
	}
	return v
}

func TestQueueOffsetsEmptyAndFilled(t *testing.T) {
	_, c := startBroker(t, nil)
	for _, code := range []int16{protocol.GetMaxOffset, protocol.GetMinOffset, protocol.SearchOffsetByTimestamp} {
		if v := queueOffset(t, c, code, "OffT", 0); v != 0 {
			t.Fatalf("empty queue, code %d: %d", code, v)
		}
	}
	if v := queueOffset(t, c, protocol.GetEarliestMsgStoretime, "OffT", 0); v != -1 {
		t.Fatalf("empty queue earliest store time %d", v)
	}
	before := time.Now().UnixMilli()
	for i := range 5 {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("OffT", 1, ""), []byte{byte(i)}))
	}
	awaitCond(t, "consume queue", func() bool { return queueOffset(t, c, protocol.GetMaxOffset, "OffT", 1) == 5 })
	if v := queueOffset(t, c, protocol.GetMinOffset, "OffT", 1); v != 0 {
		t.Fatalf("min offset %d", v)
	}
	if v := queueOffset(t, c, protocol.GetEarliestMsgStoretime, "OffT", 1); v < before-1000 || v > time.Now().UnixMilli() {
		t.Fatalf("earliest store time %d, sent after %d", v, before)
	}
	if v := queueOffset(t, c, protocol.SearchOffsetByTimestamp, "OffT", 1); v < 0 || v > 4 {
		t.Fatalf("offset by now %d", v)
	}
	// Other queues of the topic stay empty.
	if v := queueOffset(t, c, protocol.GetMaxOffset, "OffT", 0); v != 0 {
		t.Fatalf("queue 0 max %d", v)
	}
	// A bad header still carries offset.
	resp := call(t, c, protocol.NewRequest(protocol.GetMaxOffset, nil))
	if resp.Code != protocol.ResponseSystemError || resp.Ext("offset") != "0" {
		t.Fatalf("bad header: code %d ext %v", resp.Code, resp.ExtFields)
	}
}

// One QUERY_MESSAGE reply holds at most maxQueryReplyBytes of records
// (at least one): 5 matching records of ~10 KiB, a 25 KiB budget: 2.
func TestQueryReplyBytesBounded(t *testing.T) {
	_, c := startBroker(t, func(cfg *Config) { cfg.MaxQueryReplyBytes = 25 << 10 })
	body := make([]byte, 10<<10)
	for i := range 5 {
		props := "KEYS\x01big\x02UNIQ_KEY\x01B" + strconv.Itoa(i) + "\x02"
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("QueryBig", 0, props), body))
	}
	awaitCond(t, "index", func() bool {
		return len(primitive.DecodeMessage(queryByKey(t, c, "QueryBig", "B4", true).Body)) == 1
	})
	resp := queryByKey(t, c, "QueryBig", "big", false)
	if ms := primitive.DecodeMessage(resp.Body); resp.Code != protocol.ResponseSuccess || len(ms) != 2 || len(resp.Body) > 25<<10 {
		t.Fatalf("code %d, %d messages, %d bytes", resp.Code, len(ms), len(resp.Body))
	}
}
