package broker

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// CONSUMER_SEND_MSG_BACK (36): a consumer failed a message and hands it
// back (facts §14.3). It is re-stored in %RETRY%<group> with its reconsume
// count raised, or in %DLQ%<group> once the count reaches the maximum or
// the client asks for it (delayLevel < 0).
//
// Delay levels are not built yet: the retry record carries the DELAY level
// Java would use (3 + reconsumeTimes when the client sends 0) but is
// delivered at once, so a consumer that keeps failing reaches the DLQ after
// maxReconsumeTimes quick retries instead of over hours. That keeps every
// message: the Go client treats any reply to this request as success, so
// not storing the message would lose it.

func (b *Broker) registerSendBack() {
	b.server.Handle(protocol.ConsumerSendMsgBack, b.handleSendBack)
}

func (b *Broker) handleSendBack(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ConsumerSendMsgBackRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	g, ok, err := b.groups.Get(h.Group)
	switch {
	case err != nil:
		return respond(req, protocol.ResponseSystemError, err.Error())
	case !ok:
		return respond(req, protocol.ResponseSubscriptionGroupNotExist, "subscription group not exist, "+h.Group)
	case b.cfg.BrokerPermission&protocol.PermWrite == 0:
		return respond(req, protocol.ResponseNoPermission, "the broker["+b.Addr()+"] sending message is forbidden")
	case g.RetryQueueNums <= 0:
		return respond(req, protocol.ResponseSuccess, "")
	}
	rec, err := b.store.ReadMessage(h.Offset)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, fmt.Sprintf("look message by offset failed, %d", h.Offset))
	}
	orig, err := message.Parse(rec)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "stored message unreadable: "+err.Error())
	}
	maxTimes := g.RetryMaxTimes
	if h.HasMaxReconsumeTimes {
		maxTimes = h.MaxReconsumeTimes
	}
	m, resp := b.retryMessage(req, &h, &orig, g.RetryQueueNums, maxTimes)
	if resp != nil {
		return resp
	}
	res := b.store.PutMessage(m)
	if !res.Status.Stored() {
		return respond(req, protocol.ResponseSystemError, res.Status.String())
	}
	return respond(req, protocol.ResponseSuccess, "")
}

// retryMessage builds the record to store: the original's body, flag,
// sysFlag, born and store hosts, with RETRY_TOPIC, ORIGIN_MESSAGE_ID and
// DELAY set and the reconsume count raised, addressed to the retry topic or
// the dead-letter topic.
func (b *Broker) retryMessage(req *protocol.Command, h *protocol.ConsumerSendMsgBackRequestHeader,
	orig *message.View, retryQueues, maxTimes int32) (*message.Message, *protocol.Command) {
	props := message.ParseProperties(orig.PropertiesString())
	if props[message.PropRetryTopic] == "" {
		props[message.PropRetryTopic] = orig.TopicString()
	}
	if props["ORIGIN_MESSAGE_ID"] == "" {
		props["ORIGIN_MESSAGE_ID"] = orig.OffsetMsgID()
	}
	props[message.PropWait] = "false"
	topic, queues := RetryGroupPrefix+h.Group, retryQueues
	if orig.ReconsumeTimes >= maxTimes || h.DelayLevel < 0 {
		topic, queues = DLQGroupPrefix+h.Group, dlqQueueNums
		delete(props, message.PropDelay)
	} else {
		level := h.DelayLevel
		if level == 0 {
			level = 3 + orig.ReconsumeTimes
		}
		props[message.PropDelay] = strconv.Itoa(int(level))
	}
	if _, err := b.topics.CreateIfMissing(topic, queues, protocol.PermRead|protocol.PermWrite); err != nil {
		return nil, respond(req, protocol.ResponseSystemError, "create topic "+topic+": "+err.Error())
	}
	return &message.Message{
		Topic: topic, QueueID: randomQueue(queues), Flag: orig.Flag,
		SysFlag: orig.SysFlag &^ (message.FlagBornHostV6 | message.FlagStoreHostV6), BornTimestamp: orig.BornTimestamp,
		BornHost: orig.BornHost(), StoreHost: orig.StoreHost(), ReconsumeTimes: orig.ReconsumeTimes + 1,
		Body: append([]byte(nil), orig.Body...), Properties: message.EncodeProperties(props),
	}, nil
}
