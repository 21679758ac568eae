package broker

// Query family (Java's QueryMessageProcessor): QUERY_MESSAGE (12), VIEW_MESSAGE_BY_ID (33)
// and the per-queue offset lookups SEARCH_OFFSET_BY_TIMESTAMP (29),
// GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32).
// The Go client ignores the code of 29/30 and parses `offset`, so every
// answer to them carries it, errors included.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// uniqueKeyQueryMaxNum is Java's defaultQueryMaxNum, used for unique-key
// queries whatever maxNum the client sent.
const uniqueKeyQueryMaxNum = 32

func (b *Broker) registerQuery() {
	b.server.Handle(protocol.QueryMessage, counted(&b.stats.Query, b.handleQueryMessage))   // admin_load.go
	b.server.Handle(protocol.ViewMessageByID, counted(&b.stats.Query, b.handleViewMessage)) // admin_load.go
	b.server.Handle(protocol.SearchOffsetByTimestamp, b.handleSearchOffset)
	b.server.Handle(protocol.GetMaxOffset, b.handleMaxOffset)
	b.server.Handle(protocol.GetMinOffset, b.handleMinOffset)
	b.server.Handle(protocol.GetEarliestMsgStoretime, b.handleEarliestStoreTime)
}

func (b *Broker) handleQueryMessage(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.QueryMessageRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	maxNum := int(h.MaxNum)
	if h.UniqueKeyQuery {
		maxNum = uniqueKeyQueryMaxNum
	}
	// Java bounds a query by count only (maxMsgsNumBatch, 64): up to 64
	// records of maxMessageSize in one reply. The reply's records are
	// also bounded by maxQueryReplyBytes (at least one record); the rest
	// are never read. The client sees fewer records, as with a smaller
	// maxNum.
	res, err := b.store.QueryMessageWithin(h.Topic, h.Key, maxNum, b.conf().MaxQueryReplyBytes,
		h.BeginTimestamp, h.EndTimestamp)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "query message: "+err.Error())
	}
	if res.Truncated {
		b.limits.hit(b, "maxQueryReplyBytes", fmt.Sprintf("query of topic %s key %s: reply cut at %d records (maxQueryReplyBytes %d)",
			clip(h.Topic), clip(h.Key), len(res.Records), b.conf().MaxQueryReplyBytes), req)
	}
	code, remark := protocol.ResponseSuccess, ""
	if len(res.Records) == 0 {
		code, remark = protocol.ResponseQueryNotFound, "can not find message, maybe time range not correct"
	}
	resp := respond(req, code, remark)
	resp.SetHeader(&protocol.QueryMessageResponseHeader{
		IndexLastUpdateTimestamp: res.IndexLastUpdateTime,
		IndexLastUpdatePhyoffset: res.IndexLastUpdatePhys,
	})
	resp.BodyParts = res.Records // each a copy owned by the response
	return resp
}

func (b *Broker) handleViewMessage(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ViewMessageRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	rec, err := b.store.ReadMessage(h.Offset)
	if err != nil {
		return respond(req, protocol.ResponseSystemError,
			"can not find message by the offset, "+strconv.FormatInt(h.Offset, 10)+": "+err.Error())
	}
	if b.aclGate != nil { // the request named no topic: check the record's (acl.go)
		v, err := message.Parse(rec)
		if err != nil {
			return respond(req, protocol.ResponseSystemError, "stored message unreadable: "+err.Error())
		}
		if resp := b.aclFound(conn, req, v.TopicString()); resp != nil {
			return resp
		}
	}
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.Body = rec
	return resp
}

// offsetResponse answers with code, remark and the `offset` ext field.
func offsetResponse(req *protocol.Command, code int16, remark string, offset int64) *protocol.Command {
	resp := respond(req, code, remark)
	resp.SetHeader(&protocol.OffsetResponseHeader{Offset: offset})
	return resp
}

func (b *Broker) handleSearchOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.SearchOffsetRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return offsetResponse(req, protocol.ResponseSystemError, err.Error(), 0)
	}
	off, err := b.store.OffsetInQueueByTime(h.Topic, h.QueueID, h.Timestamp)
	if err != nil {
		return offsetResponse(req, protocol.ResponseSystemError, "search offset by timestamp: "+err.Error(), 0)
	}
	return offsetResponse(req, protocol.ResponseSuccess, "", off)
}

func (b *Broker) handleMaxOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetMaxOffsetRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return offsetResponse(req, protocol.ResponseSystemError, err.Error(), 0)
	}
	return offsetResponse(req, protocol.ResponseSuccess, "", b.store.MaxOffsetInQueue(h.Topic, h.QueueID))
}

func (b *Broker) handleMinOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetMinOffsetRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return offsetResponse(req, protocol.ResponseSystemError, err.Error(), 0)
	}
	return offsetResponse(req, protocol.ResponseSuccess, "", b.store.MinOffsetInQueue(h.Topic, h.QueueID))
}

func (b *Broker) handleEarliestStoreTime(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetEarliestMsgStoretimeRequestHeader
	ts, code, remark := int64(-1), protocol.ResponseSuccess, ""
	if err := h.Decode(req.ExtFields); err != nil {
		code, remark = protocol.ResponseSystemError, err.Error()
	} else {
		ts = b.store.EarliestMessageTime(h.Topic, h.QueueID)
	}
	resp := respond(req, code, remark)
	resp.SetHeader(&protocol.GetEarliestMsgStoretimeResponseHeader{Timestamp: ts})
	return resp
}
