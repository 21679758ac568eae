package broker

// Send family (facts §2.2, §5.4): SEND_MESSAGE (10, long header names),
// SEND_MESSAGE_V2 (310, one-letter names) and SEND_BATCH_MESSAGE (320).
// The three codes share one handler: the header decoder accepts both
// naming schemes and, as in Java, the header's batch flag (not the code)
// selects the batch path.
//
// Decisions for this wave:
//   - WAIT: the Java broker drops WAIT from the stored properties but still
//     honours WAIT=false for flush waiting. The engine reads WAIT from the
//     properties it stores, so mqd drops WAIT when it asks to wait (the
//     default, and what Java producers always send) and keeps it, normalised
//     to exactly "false", when it does not. Only non-waiting messages keep
//     the 11 bytes "WAIT\x01false".
//   - DELAY: delay levels arrive with the delay issue. Until then a message
//     with DELAY is stored as a normal message (delivered immediately, the
//     DELAY property kept) and a warning is logged once per process.
//   - Transactions (TRAN_MSG=true or a transaction type in sysFlag) are
//     refused with NO_PERMISSION rather than stored wrongly.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

const (
	remarkNoTransactions = "transactional messages are not supported yet"
	defaultMaxMessage    = 4 << 20 // engine default maxMessageSize
	dlqQueueNums         = 1
	retryQueueNumsOnSend = 1 // %RETRY% topics created by a send without a usable default topic
)

// delayWarned makes the "DELAY not supported yet" warning appear once.
var delayWarned atomic.Bool

func (b *Broker) registerSend() {
	b.server.Handle(protocol.SendMessage, b.handleSend)
	b.server.Handle(protocol.SendMessageV2, b.handleSend)
	b.server.Handle(protocol.SendBatchMessage, b.handleSend)
}

// respond builds a response with code and remark (shared by this
// package's files owned with send.go: query.go, admin.go).
func respond(req *protocol.Command, code int16, remark string) *protocol.Command {
	return protocol.NewResponse(req, code, remark)
}

// extDecoder is implemented by every typed request header.
type extDecoder interface {
	Decode(ext map[string]string) error
}

// decodeExt decodes req's header into h; on failure it returns the
// SYSTEM_ERROR response Java gives for a bad header (facts §1.5).
// bodyResponse answers req with body, or with SYSTEM_ERROR when encoding
// the body failed.
func bodyResponse(req *protocol.Command, body []byte, err error) *protocol.Command {
	if err != nil {
		return respond(req, protocol.ResponseSystemError, err.Error())
	}
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.Body = body
	return resp
}

func decodeExt(req *protocol.Command, h extDecoder) *protocol.Command {
	if err := h.Decode(req.ExtFields); err != nil {
		return respond(req, protocol.ResponseSystemError, err.Error())
	}
	return nil
}

func (b *Broker) handleSend(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.SendMessageRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	t, resp := b.resolveSendTarget(req, &h)
	if resp != nil {
		return resp
	}
	if h.Batch {
		return b.sendBatch(req, conn, &h, t)
	}
	return b.sendOne(req, conn, &h, t)
}

// sendTarget is where a send lands once the topic checks passed.
type sendTarget struct {
	topic   string
	queueID int32
	tc      protocol.TopicConfig
}

// resolveSendTarget is Java's msgCheck: topic name, send permission, topic
// lookup or auto-creation, queue id range; a negative queue id picks a
// random write queue.
func (b *Broker) resolveSendTarget(req *protocol.Command, h *protocol.SendMessageRequestHeader) (sendTarget, *protocol.Command) {
	if err := ValidTopic(h.Topic); err != nil {
		return sendTarget{}, respond(req, protocol.ResponseSystemError, err.Error())
	}
	if NotAllowedToSend(h.Topic) {
		return sendTarget{}, respond(req, protocol.ResponseNoPermission,
			fmt.Sprintf("sending message to topic[%s] is forbidden", h.Topic))
	}
	tc, resp := b.sendTopicConfig(req, h)
	if resp != nil {
		return sendTarget{}, resp
	}
	if b.cfg.BrokerPermission&protocol.PermWrite == 0 && tc.Order {
		return sendTarget{}, respond(req, protocol.ResponseNoPermission,
			fmt.Sprintf("the broker[%s] sending message is forbidden", b.Addr()))
	}
	qid := h.QueueID
	if limit := max(tc.ReadQueueNums, tc.WriteQueueNums); qid >= limit {
		return sendTarget{}, respond(req, protocol.ResponseSystemError,
			fmt.Sprintf("request queueId[%d] is illegal, topic %s has %d queues, producer: %s",
				qid, h.Topic, limit, h.ProducerGroup))
	}
	if qid < 0 {
		qid = randomQueue(tc.WriteQueueNums)
	}
	return sendTarget{topic: h.Topic, queueID: qid, tc: tc}, nil
}

// sendTopicConfig returns the topic's config, auto-creating it from the
// header's default topic (facts §17.4) or, for %RETRY% topics, with one
// queue.
func (b *Broker) sendTopicConfig(req *protocol.Command, h *protocol.SendMessageRequestHeader) (protocol.TopicConfig, *protocol.Command) {
	if tc, ok := b.topics.Get(h.Topic); ok {
		return tc, nil
	}
	// A non-positive client default would create a topic without queues.
	tc, ok, err := b.topics.CreateFromDefault(h.Topic, h.DefaultTopic, max(h.DefaultTopicQueueNums, 1))
	if err == nil && !ok && strings.HasPrefix(h.Topic, RetryGroupPrefix) {
		tc, err = b.topics.CreateIfMissing(h.Topic, retryQueueNumsOnSend, protocol.PermRead|protocol.PermWrite)
		ok = err == nil
	}
	if err != nil {
		return tc, respond(req, protocol.ResponseSystemError, "create topic: "+err.Error())
	}
	if !ok {
		return tc, respond(req, protocol.ResponseTopicNotExist,
			fmt.Sprintf("topic[%s] not exist, apply first please!", h.Topic))
	}
	b.log.Info("topic auto-created on send", "topic", h.Topic, "defaultTopic", h.DefaultTopic,
		"queues", tc.WriteQueueNums, "producer", h.ProducerGroup)
	return tc, nil
}

func randomQueue(writeQueues int32) int32 {
	if writeQueues <= 0 {
		return 0
	}
	return rand.Int32N(writeQueues)
}

func (b *Broker) sendOne(req *protocol.Command, conn *remoting.Conn, h *protocol.SendMessageRequestHeader, t sendTarget) *protocol.Command {
	if transactional(h.Properties, h.SysFlag) {
		return respond(req, protocol.ResponseNoPermission, remarkNoTransactions)
	}
	if resp := b.redirectRetry(req, h, &t); resp != nil {
		return resp
	}
	if limit := b.maxMessageSize(); len(req.Body) > limit {
		return respond(req, protocol.ResponseMessageIllegal,
			fmt.Sprintf("message body size %d exceeds maxMessageSize %d", len(req.Body), limit))
	}
	if delayLevel(h.Properties) > 0 && delayWarned.CompareAndSwap(false, true) {
		b.log.Warn("DELAY messages are stored as normal messages (delivered at once) until delay levels are supported",
			"topic", h.Topic, "producer", h.ProducerGroup)
	}
	m := &message.Message{
		Topic: t.topic, QueueID: t.queueID, Flag: h.Flag, SysFlag: sendSysFlag(h.SysFlag, t.tc),
		BornTimestamp: h.BornTimestamp, BornHost: bornHostOf(conn), StoreHost: b.storeHost,
		ReconsumeTimes: h.ReconsumeTimes, Body: req.Body,
		Properties: storedProperties(h.Properties, b.cfg.ClusterName),
	}
	return b.sendResponse(req, b.store.PutMessage(m), t.queueID, false)
}

// redirectRetry applies the direct-send rule of %RETRY%<group> topics
// (facts §14.3): the group must exist, and a message that reached its
// maximum reconsume count goes to %DLQ%<group> instead.
func (b *Broker) redirectRetry(req *protocol.Command, h *protocol.SendMessageRequestHeader, t *sendTarget) *protocol.Command {
	group, ok := strings.CutPrefix(t.topic, RetryGroupPrefix)
	if !ok {
		return nil
	}
	g, ok, err := b.groups.Get(group)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, err.Error())
	}
	if !ok {
		return respond(req, protocol.ResponseSubscriptionGroupNotExist, "subscription group not exist, "+group)
	}
	maxTimes := g.RetryMaxTimes
	if req.Version >= protocol.VersionV3_4_9 && h.HasMaxReconsumeTimes {
		maxTimes = h.MaxReconsumeTimes
	}
	if h.ReconsumeTimes < maxTimes {
		return nil
	}
	dlq := DLQGroupPrefix + group
	tc, err := b.topics.CreateIfMissing(dlq, dlqQueueNums, protocol.PermRead|protocol.PermWrite)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "create topic "+dlq+": "+err.Error())
	}
	*t = sendTarget{topic: dlq, queueID: randomQueue(dlqQueueNums), tc: tc}
	return nil
}

func (b *Broker) sendBatch(req *protocol.Command, conn *remoting.Conn, h *protocol.SendMessageRequestHeader, t sendTarget) *protocol.Command {
	illegal := func(format string, args ...any) *protocol.Command {
		return respond(req, protocol.ResponseMessageIllegal, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.HasPrefix(h.Topic, RetryGroupPrefix):
		return illegal("batch request does not support retry group %s", h.Topic)
	case len(req.Body) > b.maxMessageSize():
		return illegal("batch body size %d exceeds maxMessageSize %d", len(req.Body), b.maxMessageSize())
	case transactional(h.Properties, h.SysFlag):
		return illegal("batch messages cannot be transactional")
	case delayLevel(h.Properties) > 0:
		return illegal("batch messages cannot have a delay level")
	}
	entries, err := decodeBatch(req.Body)
	if err != nil {
		return illegal("%v", err)
	}
	batchProps := storedProperties(h.Properties, b.cfg.ClusterName)
	born, sysFlag := bornHostOf(conn), sendSysFlag(h.SysFlag, t.tc)
	ms := make([]*message.Message, len(entries))
	for i, e := range entries {
		if transactional(e.props, 0) || delayLevel(e.props) > 0 {
			return illegal("batch message %d: delay levels and transactions are not allowed in batches", i)
		}
		ms[i] = &message.Message{
			Topic: t.topic, QueueID: t.queueID, Flag: e.flag, SysFlag: sysFlag,
			BornTimestamp: h.BornTimestamp, BornHost: born, StoreHost: b.storeHost,
			ReconsumeTimes: h.ReconsumeTimes, Body: e.body,
			Properties: joinProperties(e.props, batchProps),
		}
	}
	return b.sendResponse(req, b.store.PutMessages(ms), t.queueID, true)
}

// sendResponse maps the put result to the response (facts §2.2, §3.1).
func (b *Broker) sendResponse(req *protocol.Command, res engine.PutResult, queueID int32, batch bool) *protocol.Command {
	remark := ""
	if res.Err != nil {
		remark = res.Err.Error()
	} else if res.Status != engine.PutOK {
		remark = res.Status.String()
	}
	resp := respond(req, putStatusCode(res.Status), remark)
	if !res.Status.Stored() {
		return resp
	}
	var id string
	if batch {
		ids := make([]string, len(res.Offsets))
		for i, off := range res.Offsets {
			ids[i] = message.OffsetMsgID(b.storeHost, off)
		}
		id = strings.Join(ids, ",")
	} else {
		id = message.OffsetMsgID(b.storeHost, res.Offset)
	}
	resp.SetHeader(&protocol.SendMessageResponseHeader{
		MsgID: id, QueueID: queueID, QueueOffset: res.QueueOffset,
		MsgRegion: b.cfg.RegionID, TraceOn: b.cfg.TraceOn,
	})
	return resp
}

// putStatusCode is Java's putMessageResult → response code mapping.
func putStatusCode(s engine.PutStatus) int16 {
	switch s {
	case engine.PutOK:
		return protocol.ResponseSuccess
	case engine.FlushDiskTimeout:
		return protocol.ResponseFlushDiskTimeout
	case engine.FlushSlaveTimeout:
		return protocol.ResponseFlushSlaveTimeout
	case engine.SlaveNotAvailable:
		return protocol.ResponseSlaveNotAvailable
	case engine.ServiceNotAvailable:
		return protocol.ResponseServiceNotAvailable
	case engine.MessageIllegal, engine.PropertiesSizeExceeded:
		return protocol.ResponseMessageIllegal
	default: // CreateMappedFileFailed, OSPageCacheBusy, UnknownError
		return protocol.ResponseSystemError
	}
}

func (b *Broker) maxMessageSize() int {
	if n := b.cfg.Store.MaxMessageSize; n > 0 {
		return n
	}
	return defaultMaxMessage
}

// sendSysFlag is the producer's sysFlag plus MULTI_TAGS for MULTI_TAG
// topics; unknown bits are preserved, the IPv6 host bits are recomputed by
// the record encoder.
func sendSysFlag(sysFlag int32, tc protocol.TopicConfig) int32 {
	if tc.TopicFilterType == protocol.TopicFilterMultiTag {
		sysFlag |= protocol.MsgSysFlagMultiTags
	}
	return sysFlag
}

// bornHostOf is the producer's address as the broker sees it (the TCP
// peer), with IPv4-mapped IPv6 addresses unmapped.
func bornHostOf(conn *remoting.Conn) netip.AddrPort {
	if conn != nil {
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			ap := a.AddrPort()
			if ap.Addr().IsValid() {
				return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
			}
		}
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
}

// transactional reports a prepared transactional message: TRAN_MSG parses
// as true (Java Boolean.parseBoolean) or sysFlag carries a transaction type.
func transactional(props string, sysFlag int32) bool {
	v, _ := message.LookupProperty(props, message.PropTranMsg)
	return strings.EqualFold(v, "true") || sysFlag&protocol.MsgSysFlagTransactionMask != 0
}

// delayLevel is the DELAY property as a number (0 when absent or invalid).
func delayLevel(props string) int {
	v, ok := message.LookupProperty(props, message.PropDelay)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// storedProperties is the properties string to persist: the producer's
// entries in their order, without entries Java's parser ignores (empty key
// or value), without CLUSTER (re-added with the broker's cluster, last) and
// without WAIT unless it says not to wait, in which case it is kept as
// exactly WAIT=false for the engine (see the file comment).
func storedProperties(props, cluster string) string {
	var sb strings.Builder
	sb.Grow(len(props) + len(message.PropCluster) + len(cluster) + 2)
	for rest := props; rest != ""; {
		chunk := rest
		if i := strings.IndexByte(rest, message.PropertySep); i >= 0 {
			chunk, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		k, v, ok := strings.Cut(chunk, string(message.NameValueSep))
		if !ok || k == "" || v == "" || k == message.PropCluster {
			continue
		}
		if k == message.PropWait {
			if strings.EqualFold(v, "true") {
				continue
			}
			chunk = message.PropWait + string(message.NameValueSep) + "false"
		}
		sb.WriteString(chunk)
		sb.WriteByte(message.PropertySep)
	}
	sb.WriteString(message.PropCluster)
	sb.WriteByte(message.NameValueSep)
	sb.WriteString(cluster)
	return sb.String()
}

// joinProperties appends the batch-level properties to an entry's own, with
// a separator unless the entry's string already ends with one (facts §5.4).
func joinProperties(entry, batch string) string {
	if entry == "" || entry[len(entry)-1] == message.PropertySep {
		return entry + batch
	}
	return entry + string(message.PropertySep) + batch
}

// batchEntry is one message of a SEND_BATCH_MESSAGE body. body aliases
// the request body.
type batchEntry struct {
	flag  int32
	body  []byte
	props string
}

// batchEntryFixed is TOTALSIZE, MAGICCODE, BODYCRC, FLAG, BODYLEN, PROPLEN.
const batchEntryFixed = 4 + 4 + 4 + 4 + 4 + 2

var errBatchFormat = errors.New("malformed batch body")

// decodeBatch splits a batch body (facts §5.4) into its entries. It checks
// that every length stays inside the body and that each TOTALSIZE matches
// its fields; it never panics.
func decodeBatch(body []byte) ([]batchEntry, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty", errBatchFormat)
	}
	var out []batchEntry
	for p := 0; p < len(body); {
		e, n, err := decodeBatchEntry(body[p:])
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d at byte %d: %v", errBatchFormat, len(out), p, err)
		}
		out = append(out, e)
		p += n
	}
	return out, nil
}

func decodeBatchEntry(b []byte) (batchEntry, int, error) {
	if len(b) < batchEntryFixed {
		return batchEntry{}, 0, fmt.Errorf("%d bytes left, an entry needs at least %d", len(b), batchEntryFixed)
	}
	be := binary.BigEndian
	total := int64(int32(be.Uint32(b)))
	bodyLen := int64(int32(be.Uint32(b[16:])))
	if bodyLen < 0 || 20+bodyLen+2 > int64(len(b)) {
		return batchEntry{}, 0, fmt.Errorf("body length %d overruns the batch", bodyLen)
	}
	p := 20 + int(bodyLen)
	propLen := int(be.Uint16(b[p:]))
	end := p + 2 + propLen
	if end > len(b) {
		return batchEntry{}, 0, fmt.Errorf("properties length %d overruns the batch", propLen)
	}
	if total != int64(end) {
		return batchEntry{}, 0, fmt.Errorf("total size %d, fields add up to %d", total, end)
	}
	e := batchEntry{flag: int32(be.Uint32(b[12:])), body: b[20:p], props: string(b[p+2 : end])}
	return e, end, nil
}
