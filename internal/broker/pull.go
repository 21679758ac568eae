package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// PULL_MESSAGE (11), Java's PullMessageProcessor and Java's PullMessageProcessor: checks,
// subscription lookup, the store read, the status → code mapping, the
// piggy-backed offset commit and long polling (pullhold.go). The response
// body is the records back to back, sent straight from the store's memory
// (BodyParts) and released once written.

func (b *Broker) registerPull() {
	b.server.Handle(protocol.PullMessage, counted(&b.stats.Pull, b.handlePull)) // admin_load.go
}

// handlePull answers through conn (now or, when parked, later).
func (b *Broker) handlePull(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	b.servePull(conn, req, true)
	return nil
}

// pullRequest is a decoded pull that passed the checks.
type pullRequest struct {
	h      protocol.PullMessageRequestHeader
	filter *msgFilter
}

// servePull executes a pull once and replies, or parks it. first is false
// for the re-execution of a parked pull: it neither commits nor parks.
func (b *Broker) servePull(conn *remoting.Conn, req *protocol.Command, first bool) {
	p, errResp := b.checkPull(conn, req)
	if errResp != nil {
		b.reply(conn, errResp, nil)
		return
	}
	h := &p.h
	res := b.store.GetMessage(h.Topic, h.QueueID, h.QueueOffset, int(max(h.MaxMsgNums, 0)), p.filter.messageFilter())
	if first && h.SysFlag&protocol.PullFlagCommitOffset != 0 && b.cfg.BrokerID == 0 {
		b.offsets.Commit(h.ConsumerGroup, h.Topic, h.QueueID, h.CommitOffset)
	}
	code := pullCode(res.Status, h.QueueOffset)
	code, suggest := b.slavePullCode(code, b.suggestBroker(h.ConsumerGroup, res.SuggestSlave)) // ha.go
	if code == protocol.ResponsePullNotFound && first && h.SysFlag&protocol.PullFlagSuspend != 0 {
		maxSeen := res.MaxOffset
		if b.pulls.park(conn, req, h.Topic, h.QueueID, h.QueueOffset, p.filter, b.holdTime(h), maxSeen,
			func() int64 { return b.store.MaxOffsetInQueue(h.Topic, h.QueueID) }) {
			res.Release()
			return
		}
	}
	remark := ""
	if res.Err != nil { // StoreReadError: say why the queue cannot be read
		remark = res.Err.Error()
	}
	resp := protocol.NewResponse(req, code, remark)
	b.countPull(h, code, res) // admin_stats.go
	resp.SetHeader(&protocol.PullMessageResponseHeader{
		SuggestWhichBrokerID: suggest, NextBeginOffset: res.NextBeginOffset, MinOffset: res.MinOffset, MaxOffset: res.MaxOffset,
	})
	if code != protocol.ResponseSuccess {
		res.Release()
		b.reply(conn, resp, nil)
		return
	}
	resp.BodyParts = res.Messages
	b.reply(conn, resp, res)
}

// reply sends resp; res (if any) is released once the bytes are written
// or dropped.
func (b *Broker) reply(conn *remoting.Conn, resp *protocol.Command, res *engine.GetResult) {
	var done func(error)
	if res != nil {
		done = func(error) { res.Release() }
	}
	if err := conn.ReplyThen(resp, done); err != nil {
		b.log.Debug("broker: pull response dropped", "remote", conn.RemoteAddrString(), "err", err)
	}
}

// holdTime is how long a pull may be parked: its suspend timeout with
// long polling, shortPollingTimeMills without; capped at maxHold.
func (b *Broker) holdTime(h *protocol.PullMessageRequestHeader) time.Duration {
	ms := h.SuspendTimeoutMillis
	if c := b.conf(); !c.LongPollingEnable {
		ms = c.ShortPollingTimeMills
	}
	if ms <= 0 {
		return 0
	}
	if ms >= maxHold.Milliseconds() {
		return maxHold
	}
	return time.Duration(ms) * time.Millisecond
}

// pullCode maps a store status to the response code (Java's PullMessageProcessor).
func pullCode(s engine.GetStatus, offset int64) int16 {
	switch s {
	case engine.Found:
		return protocol.ResponseSuccess
	case engine.NoMatchedMessage, engine.MessageWasRemoving:
		return protocol.ResponsePullRetryImmediately
	case engine.OffsetOverflowOne, engine.OffsetFoundNull:
		return protocol.ResponsePullNotFound
	case engine.NoMessageInQueue, engine.NoMatchedLogicQueue:
		if offset == 0 {
			return protocol.ResponsePullNotFound
		}
		return protocol.ResponsePullOffsetMoved
	case engine.OffsetTooSmall, engine.OffsetOverflowBadly:
		return protocol.ResponsePullOffsetMoved
	}
	return protocol.ResponseSystemError
}

// checkPull decodes the header and runs Java's checks in Java's order;
// it returns the error response of the first one that fails.
func (b *Broker) checkPull(conn *remoting.Conn, req *protocol.Command) (*pullRequest, *protocol.Command) {
	p := &pullRequest{}
	h := &p.h
	fail := func(code int16, format string, args ...any) (*pullRequest, *protocol.Command) {
		return nil, protocol.NewResponse(req, code, fmt.Sprintf(format, args...))
	}
	if err := h.Decode(req.ExtFields); err != nil {
		return fail(protocol.ResponseSystemError, "%v", err)
	}
	if b.conf().BrokerPermission&protocol.PermRead == 0 {
		return fail(protocol.ResponseNoPermission, "the broker[%s] pulling message is forbidden", b.Addr())
	}
	group, resp := b.groupConfig(req, h.ConsumerGroup) // validated before it is auto-created (limits.go)
	if resp != nil {
		return nil, resp
	}
	if !group.ConsumeEnable {
		return fail(protocol.ResponseNoPermission, "subscription group no permission, %s", h.ConsumerGroup)
	}
	tc, ok := b.topics.Get(h.Topic)
	if !ok {
		return fail(protocol.ResponseTopicNotExist, "topic[%s] not exist, apply first please!", h.Topic)
	}
	if tc.Perm&protocol.PermRead == 0 {
		return fail(protocol.ResponseNoPermission, "the topic[%s] pulling message is forbidden", h.Topic)
	}
	if h.QueueID < 0 || h.QueueID >= tc.ReadQueueNums {
		return fail(protocol.ResponseSystemError, "queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d] consumer:[%s]",
			h.QueueID, h.Topic, tc.ReadQueueNums, conn.RemoteAddrString())
	}
	sub, errResp := b.pullSubscription(req, h, group.ConsumeBroadcastEnable)
	if errResp != nil {
		return nil, errResp
	}
	if errResp := b.checkSQLPull(req, sub, h.ConsumerGroup); errResp != nil { // filter.go
		return nil, errResp
	}
	p.filter = sub.filter
	return p, nil
}

// pullSubscription returns the subscription to filter with: the request's
// own when the SUBSCRIPTION bit is set, else the group's from its
// heartbeats (Go push consumers pull without the bit).
func (b *Broker) pullSubscription(req *protocol.Command, h *protocol.PullMessageRequestHeader,
	broadcastOK bool) (*subscription, *protocol.Command) {
	if h.SysFlag&protocol.PullFlagSubscription != 0 {
		sd := protocol.SubscriptionData{Topic: h.Topic, SubString: h.Subscription, SubVersion: h.SubVersion,
			ExpressionType: h.ExpressionType, ClassFilterMode: h.SysFlag&protocol.PullFlagClassFilter != 0}
		if !isTagType(h.ExpressionType) && h.Subscription == "" {
			return nil, protocol.NewResponse(req, protocol.ResponseSubscriptionParseFailed,
				"parse the consumer's subscription failed: expression can't be empty for "+h.ExpressionType)
		}
		sub := newSubscription(sd)
		if errResp := b.headerSQLFailed(req, sub, h.ConsumerGroup); errResp != nil { // filter.go
			return nil, errResp
		}
		return sub, nil
	}
	sub, model, ok := b.consumers.subscription(h.ConsumerGroup, h.Topic)
	switch {
	case !ok:
		return nil, protocol.NewResponse(req, protocol.ResponseSubscriptionNotExist,
			"the consumer's group info not exist, group: "+h.ConsumerGroup)
	case !broadcastOK && model == protocol.MessageModelBroadcasting:
		return nil, protocol.NewResponse(req, protocol.ResponseNoPermission,
			"the consumer group["+h.ConsumerGroup+"] can not consume by broadcast way")
	case sub == nil:
		return nil, protocol.NewResponse(req, protocol.ResponseSubscriptionNotExist,
			"the consumer's subscription not exist, group: "+h.ConsumerGroup+", topic: "+h.Topic)
	case sub.data.SubVersion < h.SubVersion:
		return nil, protocol.NewResponse(req, protocol.ResponseSubscriptionNotLatest,
			"the consumer's subscription not latest")
	}
	return sub, nil
}
