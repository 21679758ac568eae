package broker

import (
	"testing"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
)

func TestSendBackToRetryThenDLQ(t *testing.T) {
	b, c := startBroker(t, shortDelayLevels)
	rh := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("SB", 0, "TAGS\x01t\x02KEYS\x01k1"), []byte("payload")))
	_, off, err := message.ParseOffsetMsgID(rh.MsgID)
	if err != nil {
		t.Fatal(err)
	}
	back := func(off int64, delay int32) *protocol.Command {
		req := protocol.NewRequest(protocol.ConsumerSendMsgBack, &protocol.ConsumerSendMsgBackRequestHeader{
			Offset: off, Group: "cg-sb", DelayLevel: delay, MaxReconsumeTimes: 2, HasMaxReconsumeTimes: true})
		return call(t, c, req)
	}
	if resp := back(off, 0); resp.Code != protocol.ResponseSuccess {
		t.Fatalf("send back: %d %q", resp.Code, resp.Remark)
	}
	retry := RetryGroupPrefix + "cg-sb"
	awaitCond(t, "retry record delivered", func() bool { return b.store.MaxOffsetInQueue(retry, 0) == 1 })
	r := b.store.GetMessage(retry, 0, 0, 1, nil)
	v, err := message.Parse(r.Messages[0])
	if err != nil || string(v.Body) != "payload" || v.ReconsumeTimes != 1 {
		t.Fatalf("retry record: %v %q reconsume %d", err, v.Body, v.ReconsumeTimes)
	}
	props := message.ParseProperties(v.PropertiesString())
	if props[message.PropRetryTopic] != "SB" || props["ORIGIN_MESSAGE_ID"] != rh.MsgID || props[message.PropDelay] != "3" || props[message.PropTags] != "t" {
		t.Fatalf("retry properties: %v", props)
	}
	retryOff := v.PhysOffset
	r.Release()
	// reconsumeTimes 1 → a second retry; its copy (reconsumeTimes 2) reaches the max and goes to the DLQ
	if resp := back(retryOff, 0); resp.Code != protocol.ResponseSuccess {
		t.Fatal(resp.Code, resp.Remark)
	}
	awaitCond(t, "second retry", func() bool { return b.store.MaxOffsetInQueue(retry, 0) == 2 })
	r = b.store.GetMessage(retry, 0, 1, 1, nil)
	v2, _ := message.Parse(r.Messages[0])
	r.Release()
	if v2.ReconsumeTimes != 2 {
		t.Fatal(v2.ReconsumeTimes)
	}
	if resp := back(v2.PhysOffset, 0); resp.Code != protocol.ResponseSuccess {
		t.Fatal(resp.Code, resp.Remark)
	}
	dlq := DLQGroupPrefix + "cg-sb"
	awaitCond(t, "dead letter", func() bool { return b.store.MaxOffsetInQueue(dlq, 0) == 1 })
	// delayLevel < 0 (orderly consumers giving up) goes straight to the DLQ
	if resp := back(off, -1); resp.Code != protocol.ResponseSuccess {
		t.Fatal(resp.Code)
	}
	awaitCond(t, "dead letter on request", func() bool { return b.store.MaxOffsetInQueue(dlq, 0) == 2 })
	if resp := back(off+1, 0); resp.Code != protocol.ResponseSystemError {
		t.Fatalf("bogus offset: code %d", resp.Code)
	}
	if _, ok := b.topics.Get(dlq); !ok {
		t.Fatal("DLQ topic not created")
	}
}
