package broker

// Request-reply (Java's ReplyMessageProcessor, RocketMQ 4.6+):
// SEND_REPLY_MESSAGE (324, long header names) and SEND_REPLY_MESSAGE_V2
// (325, one-letter names) carry a responder's reply, normally to
// <cluster>_REPLY_TOPIC (topics.go creates it). The broker finds the
// requester's connection by the client id in the REPLY_TO_CLIENT property
// (a producer registered by heartbeat, Java's ProducerManager.findChannel)
// and pushes the reply to it with PUSH_REPLY_MESSAGE_TO_CLIENT (326); the
// requester's client matches it to its request by CORRELATION_ID.
//
// Differences from Java 4.9.7 (the first two from the house rule that
// nothing is acknowledged unless stored as promised):
//   - with storeReplyMessageEnable (default true) the reply is stored
//     first and pushed only once stored; a failed store answers the
//     store's code and pushes nothing (Java pushes, then stores, and
//     answers the push result whatever the store did);
//   - the stored properties are normalised as a send's are (CLUSTER, WAIT;
//     send.go storedProperties);
//   - a request message (CORRELATION_ID and REPLY_TO_CLIENT, not a reply)
//     sent on a connection makes that connection the requester's, as a
//     producer heartbeat does: Java finds requesters only by heartbeat,
//     and both the Java and the Go client may send a request before their
//     first heartbeat (1 s after start), so a fast reply found no one.
// The answer is otherwise Java's: 0 when the push was answered SUCCESS
// (msgId and queueOffset of the stored record, or "0"/0 when replies are
// not stored), else 1 SYSTEM_ERROR with Java's remark (no REPLY_TO_CLIENT,
// unknown client id, push failed or timed out).

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Message properties of request-reply (Java's MessageConst).
const (
	propReplyToClient = "REPLY_TO_CLIENT" // PROPERTY_MESSAGE_REPLY_TO_CLIENT: the requester's client id
	propPushReplyTime = "PUSH_REPLY_TIME" // PROPERTY_PUSH_REPLY_TIME: added to the pushed copy
	propCorrelationID = "CORRELATION_ID"  // PROPERTY_CORRELATION_ID: pairs a reply with its request
	propMsgType       = "MSG_TYPE"        // PROPERTY_MESSAGE_TYPE: "reply" on replies
)

// learnRequester records conn as the connection of the requester named by
// a request message's REPLY_TO_CLIENT (send.go calls it for every single
// send; it costs a property scan when the message is no request). One
// entry per connection, dropped when the connection closes.
func (b *Broker) learnRequester(conn *remoting.Conn, props string) {
	id, ok := message.LookupProperty(props, propReplyToClient)
	if !ok || conn == nil {
		return
	}
	if _, ok := message.LookupProperty(props, propCorrelationID); !ok {
		return
	}
	if t, _ := message.LookupProperty(props, propMsgType); t == "reply" {
		return
	}
	b.producers.learn(id, conn)
}

func (b *Broker) registerReply() {
	b.server.Handle(protocol.SendReplyMessage, b.handleReply)
	b.server.Handle(protocol.SendReplyMessageV2, b.handleReply)
}

// handleReply is SEND_REPLY_MESSAGE(_V2) (324/325). Its bounds are the
// send path's: properties length, topic name and auto-creation
// (decodeSend), body size; the client id is only a map key.
func (b *Broker) handleReply(ctx context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.SendMessageRequestHeader
	t, resp := b.decodeSend(req, &h) // send.go
	if resp == nil {
		resp = b.bodyTooLarge(req)
	}
	if resp != nil {
		return resp
	}
	return b.countPut(t.st, req, time.Now(), b.storeAndPushReply(ctx, conn, req, &h, t))
}

// storeAndPushReply stores the reply (storeReplyMessageEnable), then pushes
// it to the requester and answers.
func (b *Broker) storeAndPushReply(ctx context.Context, conn *remoting.Conn, req *protocol.Command,
	h *protocol.SendMessageRequestHeader, t sendTarget) *protocol.Command {
	head := &protocol.SendMessageResponseHeader{MsgID: "0", QueueID: t.queueID,
		MsgRegion: b.cfg.RegionID, TraceOn: b.cfg.TraceOn}
	if b.cfg.StoreReplyMessageEnable {
		m := &message.Message{
			Topic: t.topic, QueueID: t.queueID, Flag: h.Flag, SysFlag: sendSysFlag(h.SysFlag, t.tc),
			BornTimestamp: h.BornTimestamp, BornHost: bornHostOf(conn), StoreHost: b.storeHost,
			ReconsumeTimes: h.ReconsumeTimes, Body: req.Body,
			Properties: storedProperties(h.Properties, b.cfg.ClusterName),
		}
		res := b.store.PutMessageWait(m, producerWaits(h.Properties))
		if res.Status != engine.PutOK {
			return b.sendResponse(req, res, t.queueID, false)
		}
		head.MsgID = message.OffsetMsgID(b.storeHost, res.Offset)
		head.QueueOffset = res.QueueOffset
	}
	if remark := b.pushReply(ctx, conn, req, h); remark != "" {
		return respond(req, protocol.ResponseSystemError, remark)
	}
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.SetHeader(head)
	return resp
}

// pushReply sends the reply to the requester's connection and returns ""
// once the requester answered SUCCESS, else Java's remark.
func (b *Broker) pushReply(ctx context.Context, conn *remoting.Conn, req *protocol.Command,
	h *protocol.SendMessageRequestHeader) string {
	id, ok := message.LookupProperty(h.Properties, propReplyToClient)
	if !ok {
		remark := "reply message properties[" + propReplyToClient + "] is null"
		b.limits.hit(b, "replyWithoutRequester", remark, nil) // rate-bounded log (limits.go)
		return remark
	}
	target := b.producers.FindConn(id)
	if target == nil {
		remark := "push reply message fail, channel of <" + clip(id) + "> not found."
		b.limits.hit(b, "replyRequesterUnknown", remark, nil)
		return remark
	}
	// The push is queued on the requester's connection, where it stays
	// until the requester reads it, also after this handler gave up: a
	// requester that reads nothing would otherwise collect every reply
	// sent to it. Its connection's byte budget bounds what waits there.
	if budget := b.cfg.MaxQueuedBytesPerConnection; budget >= 0 {
		if budget == 0 {
			budget = remoting.DefaultMaxConnBytes
		}
		if queued := target.BufferedBytes(); queued+int64(len(req.Body)) > budget {
			b.limits.hit(b, "maxQueuedBytesPerConnection", fmt.Sprintf(
				"reply to %s not pushed: %d bytes already queued for its connection", clip(id), queued), nil)
			return "push reply message to " + clip(id) + "fail." // sic: Java's remark
		}
	}
	props := message.AppendProperty(message.RemoveProperty(h.Properties, propPushReplyTime),
		propPushReplyTime, strconv.FormatInt(time.Now().UnixMilli(), 10))
	push := protocol.NewRequest(protocol.PushReplyMessageToClient, &protocol.ReplyMessageRequestHeader{
		ProducerGroup: h.ProducerGroup, Topic: h.Topic, DefaultTopic: h.DefaultTopic,
		DefaultTopicQueueNums: h.DefaultTopicQueueNums, QueueID: h.QueueID, SysFlag: h.SysFlag,
		BornTimestamp: h.BornTimestamp, Flag: h.Flag, Properties: props,
		ReconsumeTimes: h.ReconsumeTimes, UnitMode: h.UnitMode,
		BornHost: bornHostOf(conn).String(), StoreHost: b.storeHost.String(),
		StoreTimestamp: time.Now().UnixMilli(),
	})
	push.Body = req.Body
	ctx, cancel := context.WithTimeout(ctx, callClientTimeout) // Java's Broker2Client.callClient: 10 s
	defer cancel()
	r, err := target.Invoke(ctx, push)
	if err == nil && r.Code != protocol.ResponseSuccess {
		err = fmt.Errorf("code %d: %s", r.Code, clip(r.Remark))
	}
	if err != nil {
		b.limits.hit(b, "replyPushFailed", fmt.Sprintf("push reply message to %s failed: %v", clip(id), err), nil)
		return "push reply message to " + clip(id) + "fail." // sic: Java's remark
	}
	return ""
}
