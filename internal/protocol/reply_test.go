package protocol

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The Java 4.9.7 client's reply (MessageUtil.createReplyMessage sent with
// DefaultMQProducer.send) is SEND_REPLY_MESSAGE_V2 with the V2 send header.
func TestGoldenJavaSendReplyV2(t *testing.T) {
	c := javaFrame(t, "java_send_reply_v2_request.frame", SendReplyMessageV2)
	var h SendMessageRequestHeader
	if err := h.Decode(c.ExtFields); err != nil {
		t.Fatal(err)
	}
	props := h.Properties
	h.Properties = ""
	want := SendMessageRequestHeader{ProducerGroup: "javareplier", Topic: "DefaultCluster_REPLY_TOPIC",
		DefaultTopic: "TBW102", DefaultTopicQueueNums: 4, QueueID: 0, BornTimestamp: 1796410128915, BrokerName: "mqd-a"}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("\n got %+v\nwant %+v", h, want)
	}
	for _, kv := range []string{"MSG_TYPE\x01reply", "REPLY_TO_CLIENT\x01192.0.2.2@golden-rq", "TTL\x0110000",
		"CORRELATION_ID\x014e5ba580-b469-449d-bcc2-f533ace688e3"} {
		if !strings.Contains(props, kv) {
			t.Errorf("properties %q lack %q", props, kv)
		}
	}
	if string(c.Body) != "re:ping" {
		t.Fatalf("body %q", c.Body)
	}
}

// The Java client answered mqd's PUSH_REPLY_MESSAGE_TO_CLIENT with SUCCESS
// (ClientRemotingProcessor.receiveReplyMessage answers 1 when it cannot
// take the push).
func TestGoldenJavaPushReplyResponse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "java_push_reply_response.frame"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ReadFrame(bytes.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsResponse() || c.Code != ResponseSuccess || c.Language != LanguageJava || len(c.Body) != 0 {
		t.Fatalf("%+v", c)
	}
}

// pushReplySample is a PUSH_REPLY_MESSAGE_TO_CLIENT as mqd sends it.
func pushReplySample() *Command {
	c := NewRequest(PushReplyMessageToClient, &ReplyMessageRequestHeader{
		ProducerGroup: "javareplier", Topic: "DefaultCluster_REPLY_TOPIC", DefaultTopic: "TBW102",
		DefaultTopicQueueNums: 4, QueueID: 0, SysFlag: 0, BornTimestamp: 1796410128915, Flag: 0,
		Properties:     "MSG_TYPE\x01reply\x02REPLY_TO_CLIENT\x01192.0.2.2@golden-rq\x02CORRELATION_ID\x01c1\x02PUSH_REPLY_TIME\x011796410128999",
		ReconsumeTimes: 0, UnitMode: false, BornHost: "127.0.0.1:40000", StoreHost: "127.0.0.1:10911",
		StoreTimestamp: 1796410129000,
	})
	c.Opaque = 5
	c.Body = []byte("re:ping")
	return c
}

// The push's bytes (Java's field names, long form; the Java client's
// answer to this frame is java_push_reply_response.frame).
func TestGoldenPushReply(t *testing.T) {
	frame, err := pushReplySample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "push_reply_request.frame", frame)
	back, err := ReadFrame(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatal(err)
	}
	var h ReplyMessageRequestHeader
	if err := h.Decode(back.ExtFields); err != nil {
		t.Fatal(err)
	}
	var want ReplyMessageRequestHeader
	_ = want.Decode(pushReplySample().ExtFields)
	if h != want || h.StoreHost != "127.0.0.1:10911" {
		t.Fatalf("round trip %+v", h)
	}
}

func TestReplyHeaderRequired(t *testing.T) {
	full := pushReplySample().ExtFields
	for _, k := range []string{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
		"sysFlag", "bornTimestamp", "flag", "bornHost", "storeHost", "storeTimestamp"} {
		ext := map[string]string{}
		for kk, v := range full {
			if kk != k {
				ext[kk] = v
			}
		}
		var h ReplyMessageRequestHeader
		if err := h.Decode(ext); err == nil {
			t.Errorf("decoded without %s", k)
		}
	}
	bad := map[string]string{}
	for k, v := range full {
		bad[k] = v
	}
	bad["queueId"] = "99999999999"
	var h ReplyMessageRequestHeader
	if err := h.Decode(bad); err == nil {
		t.Error("queueId beyond int32 accepted")
	}
}

// FuzzReplyHeader feeds arbitrary JSON headers to the decoders of the
// request-reply codes (the reply send header of 324/325 and the push
// header of 326): no panic, allocation bounded by the input, and an
// accepted header encodes to one that decodes to the same value.
func FuzzReplyHeader(f *testing.F) {
	for _, h := range headerSeeds(SerializeJSON) {
		f.Add(h)
	}
	if frame, err := pushReplySample().Encode(); err == nil {
		f.Add(frame[8:])
	}
	f.Add([]byte(`{"code":326,"extFields":{"queueId":"-1","storeTimestamp":"9223372036854775807","unitMode":"TRUE"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeJSONHeader(data, false)
		if err != nil {
			return
		}
		var r ReplyMessageRequestHeader
		checkAllocBound(t, "reply header", len(data), func() { err = r.Decode(c.ExtFields) })
		if err == nil {
			var back ReplyMessageRequestHeader
			if err := back.Decode(r.Encode()); err != nil || back != r {
				t.Fatalf("push header round trip: %+v -> %+v (%v)", r, back, err)
			}
		}
		var s SendMessageRequestHeader
		checkAllocBound(t, "reply send header", len(data), func() { err = s.Decode(c.ExtFields) })
		if err == nil {
			for _, enc := range []map[string]string{s.Encode(), s.EncodeV2()} {
				var back SendMessageRequestHeader
				if err := back.Decode(enc); err != nil || !reflect.DeepEqual(back, s) {
					t.Fatalf("send header round trip: %+v -> %+v (%v)", s, back, err)
				}
			}
		}
	})
}
