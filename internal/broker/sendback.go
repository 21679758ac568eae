package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// CONSUMER_SEND_MSG_BACK (36): a consumer failed a message and hands it
// back (Java's SendMessageProcessor.consumerSendMsgBack). It is re-stored in %RETRY%<group> with its reconsume
// count raised, or in %DLQ%<group> once the count reaches the maximum or
// the client asks for it (delayLevel < 0).
//
// The retry record carries the DELAY level Java uses (3 + reconsumeTimes
// when the client sends 0) and waits in SCHEDULE_TOPIC_XXXX for it
// (delay.go), so retries arrive 10 s, 30 s, 1 min, … after the failure.

func (b *Broker) registerSendBack() {
	b.server.Handle(protocol.ConsumerSendMsgBack, b.handleSendBack)
}

func (b *Broker) handleSendBack(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ConsumerSendMsgBackRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	g, resp := b.groupConfig(req, h.Group) // validates the name before anything is created (limits.go)
	switch {
	case resp != nil:
		return resp
	case b.conf().BrokerPermission&protocol.PermWrite == 0:
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
	if b.cfg.ACL.Enable && !ofOriginTopic(&orig, h.OriginTopic) {
		// The ACL check gave SUB on originTopic (acl.Needs); without this a
		// client could copy any topic's message into its own retry topic
		// and consume it there.
		return respond(req, protocol.ResponseNoPermission,
			fmt.Sprintf("the message at offset %d is not of originTopic [%s]", h.Offset, clip(h.OriginTopic)))
	}
	maxTimes := g.RetryMaxTimes
	if h.HasMaxReconsumeTimes {
		maxTimes = h.MaxReconsumeTimes
	}
	m, resp := b.retryMessage(req, &h, &orig, g.RetryQueueNums, maxTimes)
	if resp != nil {
		return resp
	}
	b.routeDelay(m) // delay.go: the retry waits for its level
	// Only PUT_OK is a success (Java's consumerSendMsgBack): after a flush
	// or slave timeout the retry record's durability is unknown, and a
	// consumer told SUCCESS would move past a message it may never see
	// again. On SYSTEM_ERROR the client sends the retry itself (a duplicate
	// at worst, never a loss).
	res := b.store.PutMessage(m)
	if res.Status != engine.PutOK {
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
		return nil, b.createTopicFailed(req, topic, err)
	}
	return &message.Message{
		Topic: topic, QueueID: randomQueue(queues), Flag: orig.Flag,
		SysFlag: orig.SysFlag &^ (message.FlagBornHostV6 | message.FlagStoreHostV6), BornTimestamp: orig.BornTimestamp,
		BornHost: orig.BornHost(), StoreHost: orig.StoreHost(), ReconsumeTimes: orig.ReconsumeTimes + 1,
		Body: append([]byte(nil), orig.Body...), Properties: message.EncodeProperties(props),
	}, nil
}

// ofOriginTopic reports whether the stored message belongs to the topic the
// consumer named: its own topic, or for a message already retried the
// topic it was first sent to (its RETRY_TOPIC property), which is what
// clients send as originTopic.
func ofOriginTopic(orig *message.View, originTopic string) bool {
	if originTopic == "" {
		return false
	}
	topic := orig.TopicString()
	if strings.HasPrefix(topic, RetryGroupPrefix) {
		if first, ok := message.LookupProperty(orig.PropertiesString(), message.PropRetryTopic); ok {
			return first == originTopic || topic == originTopic
		}
	}
	return topic == originTopic
}
