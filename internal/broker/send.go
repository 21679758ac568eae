package broker

// Send family (Java's SendMessageProcessor and MessageDecoder.encodeMessages): SEND_MESSAGE (10, long header names),
// SEND_MESSAGE_V2 (310, one-letter names) and SEND_BATCH_MESSAGE (320).
// The three codes share one handler: the header decoder accepts both
// naming schemes and, as in Java, the header's batch flag (not the code)
// selects the batch path.
//
// Decisions for this wave:
//   - WAIT: the Java broker drops WAIT from the stored properties but still
//     honours WAIT=false for flush waiting. mqd passes the producer's wait
//     to the engine explicitly (producerWaits, engine.PutMessageAsync); it
//     drops WAIT when it asks to wait (the default, and what Java producers
//     always send) and keeps it, normalised to exactly "false", when it
//     does not. Only non-waiting messages keep the 11 bytes "WAIT\x01false".
//   - DELAY: a message with DELAY > 0 goes to SCHEDULE_TOPIC_XXXX until due
//     (delay.go, package schedule); one with a 5.x timer property to
//     rmq_sys_wheel_timer (timer.go, package timer).
//   - Transactions (TRAN_MSG=true or a transaction type in sysFlag) are
//     stored as half messages (txn.go); batches cannot be transactional.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

const (
	defaultMaxMessage    = 4 << 20 // engine default maxMessageSize
	dlqQueueNums         = 1
	retryQueueNumsOnSend = 1 // %RETRY% topics created by a send without a usable default topic
)

// registerSend registers the send family as recycled handlers (remoting's
// HandleRecycled): handleSend keeps neither its request nor its response
// once it returns, so their Commands and maps are reused (issue 14).
//
// A single send that will not wait on its handler (sendInline) runs on its
// connection's read loop (remoting's HandleInline): it answers at once
// (WAIT=false, refusals) or defers its answer to the flush loop (putOne:
// once written under ASYNC_FLUSH, durable under SYNC_FLUSH), so no
// goroutine switch is paid per message.
func (b *Broker) registerSend() {
	b.server.HandleInline(protocol.SendMessage, b.handleSend, b.sendInline)
	b.server.HandleInline(protocol.SendMessageV2, b.handleSend, b.sendInline)
	b.server.HandleInline(protocol.SendBatchMessage, b.handleSend, b.sendInline)
}

// sendInline reports whether handleSend answers req without waiting, so
// that it may run on the read loop: a typed single send (a send with
// AccessKey, or one the decoder could not type, goes to a handler
// goroutine), not oneway, to a topic that exists and is neither a retry
// topic nor a transaction's (creating a topic, a group or the DLQ writes
// and syncs a journal), whose put either does not wait (WAIT=false) or
// is deferred (putOne) with room
// that sends elsewhere cannot take meanwhile: on the connection, room
// beyond what its running handlers (at most remoting.DefaultMaxInflight)
// could take; across the broker, where other connections' sends race for
// it, half of the bound. A send that still finds none waits on the read
// loop as a handler would: at most syncFlushTimeout, twice on a
// SYNC_MASTER (its write or fdatasync, then its slave). An append also
// waits on the read loop when the next segment is not prepared yet
// (commitlog's roll; every writer waits then).
func (b *Broker) sendInline(conn *remoting.Conn, req *protocol.Command) bool {
	h, typed := req.SendHeader()
	if !typed || h.Batch || req.IsOneway() || strings.HasPrefix(h.Topic, RetryGroupPrefix) {
		return false
	}
	f := scanSendFlags(h.Properties)
	if f.transactional(h.SysFlag) {
		return false
	}
	if _, ok := b.sendTopic(h.Topic); !ok {
		return false
	}
	wait := !f.noWait
	if !b.store.PutWaits(wait) {
		return true
	}
	if !b.store.DefersPut(wait) {
		return false // its put would block the read loop
	}
	return conn.Deferred() < maxDeferredSends-remoting.DefaultMaxInflight && b.deferred.Load() < maxDeferredSendsTotal/2
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
// SYSTEM_ERROR response Java gives for a bad header (Java's NettyRemotingAbstract).
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

// handleSend counts itself in Stats.Send (as counted does for other
// codes) with one clock read once its header is decoded and one where it
// is answered (countSend; for a deferred send, sendDone.PutDone), shared
// with the latency statistics (issue 14: five clock reads per send were
// 3.5% of the broker's CPU at 100k msg/s). A send refused while decoding
// is not timed.
func (b *Broker) handleSend(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	b.stats.Send.InProgress.Add(1)
	defer b.stats.Send.InProgress.Add(-1)
	var h protocol.SendMessageRequestHeader
	t, resp := b.decodeSend(req, &h)
	if resp != nil {
		return resp
	}
	began := time.Now() // after decoding, as the latency statistics always were
	if h.Batch {
		return b.countSend(t.st, len(req.Body), began, b.sendBatch(req, conn, &h, t))
	}
	b.learnRequester(conn, h.Properties)      // reply.go: a request's sender receives its reply
	resp = b.sendOne(req, conn, &h, t, began) // nil: deferred
	return b.countSend(t.st, len(req.Body), began, resp)
}

// countSend counts an answered send to st's topic: its put statistics (admin_stats.go)
// and Stats.Send's longest run (admin_load.go). A nil (deferred) answer
// is counted when it is given.
func (b *Broker) countSend(st *topicEntry, bodyLen int, began time.Time, resp *protocol.Command) *protocol.Command {
	if resp == nil {
		return nil
	}
	elapsed := time.Since(began)
	b.observePut(st, bodyLen, elapsed, resp)
	atomicMax(&b.stats.Send.MaxMillis, elapsed.Milliseconds())
	return resp
}

// decodeSend decodes a send-family header (also of the reply sends,
// reply.go) into h, bounds its properties and resolves its target.
func (b *Broker) decodeSend(req *protocol.Command, h *protocol.SendMessageRequestHeader) (sendTarget, *protocol.Command) {
	// Decoded directly, not through decodeExt's interface, so the
	// caller's h stays on the stack.
	if err := h.DecodeRequest(req); err != nil {
		return sendTarget{}, respond(req, protocol.ResponseSystemError, err.Error())
	}
	if len(h.Properties) > maxPropertiesLength {
		return sendTarget{}, b.refuse(req, "propertiesLength", protocol.ResponseMessageIllegal,
			fmt.Sprintf("message properties length %d exceeds %d", len(h.Properties), maxPropertiesLength))
	}
	return b.resolveSendTarget(req, h)
}

// bodyTooLarge answers a single message whose body exceeds maxMessageSize
// (nil when it fits).
func (b *Broker) bodyTooLarge(req *protocol.Command) *protocol.Command {
	if limit := b.maxMessageSize(); len(req.Body) > limit {
		return respond(req, protocol.ResponseMessageIllegal,
			fmt.Sprintf("message body size %d exceeds maxMessageSize %d", len(req.Body), limit))
	}
	return nil
}

// sendTarget is where a send lands once the topic checks passed: st is
// the topic's entry (sendtopics.go), nil once a retry is redirected
// to its DLQ (redirectRetry).
type sendTarget struct {
	topic   string
	queueID int32
	tc      protocol.TopicConfig
	st      *topicEntry
}

// resolveSendTarget is Java's msgCheck: topic name, send permission, topic
// lookup or auto-creation, queue id range; a negative queue id picks a
// random write queue.
func (b *Broker) resolveSendTarget(req *protocol.Command, h *protocol.SendMessageRequestHeader) (sendTarget, *protocol.Command) {
	if err := ValidTopic(h.Topic); err != nil {
		return sendTarget{}, b.refuse(req, "topicName", protocol.ResponseSystemError, err.Error())
	}
	if NotAllowedToSend(h.Topic) {
		return sendTarget{}, respond(req, protocol.ResponseNoPermission,
			fmt.Sprintf("sending message to topic[%s] is forbidden", h.Topic))
	}
	st, resp := b.sendTopicConfig(req, h)
	if resp != nil {
		return sendTarget{}, resp
	}
	tc := st.tc
	if b.conf().BrokerPermission&protocol.PermWrite == 0 && tc.Order {
		return sendTarget{}, respond(req, protocol.ResponseNoPermission,
			fmt.Sprintf("the broker[%s] sending message is forbidden", b.Addr()))
	}
	qid := h.QueueID
	if limit := max(tc.ReadQueueNums, tc.WriteQueueNums); qid >= limit {
		return sendTarget{}, respond(req, protocol.ResponseSystemError,
			fmt.Sprintf("request queueId[%d] is illegal, topic %s has %d queues, producer: %s",
				qid, h.Topic, limit, clip(h.ProducerGroup)))
	}
	if qid < 0 {
		qid = randomQueue(tc.WriteQueueNums)
	}
	return sendTarget{topic: st.name, queueID: qid, tc: tc, st: st}, nil
}

// sendTopicConfig returns the topic's entry, auto-creating the topic
// from the header's default topic (Java's TopicConfigManager (TBW102)) or,
// for %RETRY% topics, with one queue.
func (b *Broker) sendTopicConfig(req *protocol.Command, h *protocol.SendMessageRequestHeader) (*topicEntry, *protocol.Command) {
	if st, ok := b.sendTopic(h.Topic); ok {
		return st, nil
	}
	if group, ok := strings.CutPrefix(h.Topic, RetryGroupPrefix); ok {
		// the group must exist (or be auto-created) before its retry topic
		// is: redirectRetry refuses the send otherwise, too late to undo
		// the persisted topic
		if _, resp := b.groupConfig(req, group); resp != nil {
			return nil, resp
		}
	}
	// A non-positive client default would create a topic without queues.
	tc, ok, err := b.topics.CreateFromDefault(h.Topic, h.DefaultTopic, max(h.DefaultTopicQueueNums, 1))
	if err == nil && !ok && strings.HasPrefix(h.Topic, RetryGroupPrefix) {
		tc, err = b.topics.CreateIfMissing(h.Topic, retryQueueNumsOnSend, protocol.PermRead|protocol.PermWrite)
		ok = err == nil
	}
	if err != nil {
		return nil, b.createTopicFailed(req, h.Topic, err)
	}
	st, found := b.sendTopic(h.Topic)
	if !ok || !found { // not creatable, or deleted again meanwhile
		return nil, respond(req, protocol.ResponseTopicNotExist,
			fmt.Sprintf("topic[%s] not exist, apply first please!", h.Topic))
	}
	b.log.Info("topic auto-created on send", "topic", h.Topic, "defaultTopic", h.DefaultTopic,
		"queues", tc.WriteQueueNums, "producer", clip(h.ProducerGroup))
	return st, nil
}

func randomQueue(writeQueues int32) int32 {
	if writeQueues <= 0 {
		return 0
	}
	return rand.Int32N(writeQueues)
}

// sendOne stores one message. It returns nil when the response is
// deferred to the message's durability (sendDone).
func (b *Broker) sendOne(req *protocol.Command, conn *remoting.Conn, h *protocol.SendMessageRequestHeader,
	t sendTarget, began time.Time) *protocol.Command {
	counted := t.st // handleSend counts under its topic; a retry's DLQ redirect changes t
	if resp := b.redirectRetry(req, h, &t); resp != nil {
		return resp
	}
	if resp := b.bodyTooLarge(req); resp != nil {
		return resp
	}
	sc := sendScratchPool.Get().(*sendScratch)
	defer sc.put()
	props, f := sc.storedProperties(h.Properties, b.cfg.ClusterName)
	m := &sc.m
	*m = message.Message{
		Topic: t.topic, QueueID: t.queueID, Flag: h.Flag, SysFlag: sendSysFlag(h.SysFlag, t.tc),
		BornTimestamp: h.BornTimestamp, BornHost: bornHostOf(conn), StoreHost: b.storeHost,
		ReconsumeTimes: h.ReconsumeTimes, Body: req.Body, Properties: props,
	}
	if f.transactional(h.SysFlag) {
		if delayLevel(h.Properties) > 0 || f.timer {
			// Java schedules a committed transactional message; mqd's
			// commit path does not yet, so it refuses rather than
			// deliver early.
			return respond(req, protocol.ResponseMessageIllegal,
				"transactional messages with a delay level or timer are not supported yet")
		}
		b.toHalf(m) // txn.go
	} else if f.delay || f.timer {
		if resp := b.routeScheduled(req, m); resp != nil { // delay.go: DELAY, TIMER_*
			return resp
		}
	}
	return b.putOne(req, conn, m, !f.noWait, t, counted, began)
}

// sendScratch is what sendOne needs per message, recycled (issue 14: 0
// allocations per send): the message, which the engine encodes during the
// put and keeps no reference to once the put returns (it pools its own put
// requests the same way), and the stored properties' bytes, which
// m.Properties aliases until then. Nothing else in sendOne keeps either;
// the paths that rewrite m.Properties (txn.go, delay.go, timer.go) build
// new strings.
type sendScratch struct {
	m     message.Message
	props []byte
}

// sendScratchMaxProps bounds the properties buffer a pooled scratch keeps.
const sendScratchMaxProps = 4 << 10

var sendScratchPool = sync.Pool{New: func() any { return new(sendScratch) }}

// storedProperties is the package's storedProperties in sc's buffer: the
// string is valid until sc.put.
func (sc *sendScratch) storedProperties(props, cluster string) (string, sendFlags) {
	b, f := appendStoredProperties(sc.props[:0], props, cluster)
	sc.props = b
	return unsafe.String(unsafe.SliceData(b), len(b)), f // never empty: CLUSTER is always added
}

func (sc *sendScratch) put() {
	sc.m = message.Message{}
	if cap(sc.props) > sendScratchMaxProps {
		sc.props = nil
	}
	sendScratchPool.Put(sc)
}

// redirectRetry applies the direct-send rule of %RETRY%<group> topics
// (Java's SendMessageProcessor.consumerSendMsgBack): the group must exist, and a message that reached its
// maximum reconsume count goes to %DLQ%<group> instead.
func (b *Broker) redirectRetry(req *protocol.Command, h *protocol.SendMessageRequestHeader, t *sendTarget) *protocol.Command {
	group, ok := strings.CutPrefix(t.topic, RetryGroupPrefix)
	if !ok {
		return nil
	}
	g, resp := b.groupConfig(req, group)
	if resp != nil {
		return resp
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
		return b.createTopicFailed(req, dlq, err)
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
	case hasTimer(h.Properties): // delay.go
		return illegal("batch messages cannot be timer messages")
	}
	entries, err := decodeBatchMax(req.Body, b.conf().MaxBatchMessageNums)
	if errors.Is(err, errBatchTooMany) {
		return b.refuse(req, "maxBatchMessageNums", protocol.ResponseMessageIllegal, err.Error())
	}
	if err != nil {
		return illegal("%v", err)
	}
	batchProps := storedProperties(h.Properties, b.cfg.ClusterName)
	if resp := b.checkBatchProperties(req, entries, batchProps); resp != nil {
		return resp
	}
	born, sysFlag := bornHostOf(conn), sendSysFlag(h.SysFlag, t.tc)
	ms := make([]*message.Message, len(entries))
	for i, e := range entries {
		if transactional(e.props, 0) || delayLevel(e.props) > 0 || hasTimer(e.props) {
			return illegal("batch message %d: delay levels, timers and transactions are not allowed in batches", i)
		}
		ms[i] = &message.Message{
			Topic: t.topic, QueueID: t.queueID, Flag: e.flag, SysFlag: sysFlag,
			BornTimestamp: h.BornTimestamp, BornHost: born, StoreHost: b.storeHost,
			ReconsumeTimes: h.ReconsumeTimes, Body: e.body,
			Properties: joinProperties(e.props, batchProps),
		}
	}
	return b.sendResponse(req, b.store.PutMessagesWait(ms, producerWaits(h.Properties)), t.queueID, true)
}

// checkBatchProperties measures the properties every entry would store
// (its own joined with the batch's) before any is built: each at most
// Java's 32767 bytes, all together at most maxBatchPropertiesBytes.
func (b *Broker) checkBatchProperties(req *protocol.Command, entries []batchEntry, batchProps string) *protocol.Command {
	total := 0
	for i, e := range entries {
		n := len(e.props) + 1 + len(batchProps)
		if n > maxPropertiesLength {
			return b.refuse(req, "propertiesLength", protocol.ResponseMessageIllegal,
				fmt.Sprintf("batch message %d: properties length %d exceeds %d", i, n, maxPropertiesLength))
		}
		if limit := b.conf().MaxBatchPropertiesBytes; total+n > limit {
			return b.refuse(req, "maxBatchPropertiesBytes", protocol.ResponseMessageIllegal,
				fmt.Sprintf("batch of %d messages stores more than %d property bytes (maxBatchPropertiesBytes)",
					len(entries), limit))
		}
		total += n
	}
	return nil
}

// sendResponse maps the put result to the response (Java's SendMessageProcessor and MQClientAPIImpl.processSendResponse).
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
	if !batch { // typed, no map and no strings (protocol/send_result.go)
		r := protocol.SendResult{QueueID: queueID, QueueOffset: res.QueueOffset,
			MsgRegion: b.cfg.RegionID, TraceOn: b.cfg.TraceOn}
		r.MsgIDLen = uint8(len(message.AppendOffsetMsgID(r.MsgID[:0], b.storeHost, res.Offset)))
		resp.SetSendResult(&r)
		return resp
	}
	ids := make([]string, len(res.Offsets))
	for i, off := range res.Offsets {
		ids[i] = message.OffsetMsgID(b.storeHost, off)
	}
	rh := protocol.SendMessageResponseHeader{
		MsgID: strings.Join(ids, ","), QueueID: queueID, QueueOffset: res.QueueOffset,
		MsgRegion: b.cfg.RegionID, TraceOn: b.cfg.TraceOn,
	}
	resp.ExtFields = rh.Encode() // not SetHeader: its interface would move rh to the heap
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
	if n := b.conf().Store.MaxMessageSize; n > 0 {
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
	return scanSendFlags(props).transactional(sysFlag)
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
	b, _ := appendStoredProperties(make([]byte, 0, storedPropertiesLen(props, cluster)), props, cluster)
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
}

// storedPropertiesLen is a capacity hint for storedProperties' result
// (exact unless WAIT is rewritten to the longer WAIT=false).
func storedPropertiesLen(props, cluster string) int {
	return len(props) + len(message.PropCluster) + len(cluster) + 2
}

// appendStoredProperties appends storedProperties(props, cluster) to dst.
func appendStoredProperties(dst []byte, props, cluster string) ([]byte, sendFlags) {
	var f sendFlags
	for rest := props; rest != ""; {
		var chunk string
		chunk, rest, _ = strings.Cut(rest, string(message.PropertySep))
		k, v, ok := strings.Cut(chunk, string(message.NameValueSep))
		if !ok || k == "" || v == "" || k == message.PropCluster {
			continue
		}
		f.note(k, v)
		if k == message.PropWait {
			if strings.EqualFold(v, "true") {
				continue
			}
			chunk = message.PropWait + string(message.NameValueSep) + "false"
		}
		dst = append(dst, chunk...)
		dst = append(dst, message.PropertySep)
	}
	dst = append(dst, message.PropCluster...)
	dst = append(dst, message.NameValueSep)
	return append(dst, cluster...), f
}

// sendFlags is what the send path branches on in a message's properties,
// noted in one pass over them (appendStoredProperties, scanSendFlags)
// rather than looked up key by key: six lookups per send, most of them
// of keys a message does not have (issue 14: CPU per message). As with
// LookupProperty, chunks with an empty key or value do not count and the
// first chunk of a key wins.
type sendFlags struct {
	tran   bool  // TRAN_MSG is "true", any case (transactional)
	noWait bool  // WAIT is not "true", any case (producerWaits false)
	delay  bool  // DELAY is set (delayLevel may be > 0)
	timer  bool  // a TIMER_* property is set (hasTimer)
	seen   uint8 // TRAN_MSG (1) and WAIT (2) met already
}

// note records one chunk's key and value, both non-empty.
func (f *sendFlags) note(k, v string) {
	switch k {
	case message.PropTranMsg:
		if f.seen&1 == 0 {
			f.seen |= 1
			f.tran = strings.EqualFold(v, "true")
		}
	case message.PropWait:
		if f.seen&2 == 0 {
			f.seen |= 2
			f.noWait = !strings.EqualFold(v, "true")
		}
	case message.PropDelay:
		f.delay = true
	case propTimerDeliver, propTimerSec, propTimerMs:
		f.timer = true
	}
}

// scanSendFlags notes props' send flags without copying them.
func scanSendFlags(props string) sendFlags {
	var f sendFlags
	for rest := props; rest != ""; {
		var chunk string
		chunk, rest, _ = strings.Cut(rest, string(message.PropertySep))
		if k, v, ok := strings.Cut(chunk, string(message.NameValueSep)); ok && k != "" && v != "" {
			f.note(k, v)
		}
	}
	return f
}

// transactional is the package's transactional for these flags.
func (f sendFlags) transactional(sysFlag int32) bool {
	return f.tran || sysFlag&protocol.MsgSysFlagTransactionMask != 0
}

// producerWaits reports whether the producer waits for the flush policy:
// anything but a non-empty WAIT other than "true" (as storedProperties
// reads it).
func producerWaits(props string) bool { return !scanSendFlags(props).noWait }

// joinProperties appends the batch-level properties to an entry's own, with
// a separator unless the entry's string already ends with one (Java's MessageDecoder.encodeMessages).
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

var (
	errBatchFormat  = errors.New("malformed batch body")
	errBatchTooMany = errors.New("too many messages in batch")
)

// decodeBatch splits a batch body (Java's MessageDecoder.encodeMessages) into its entries, however
// many (tests and fuzzers; the handler bounds the count with
// decodeBatchMax).
func decodeBatch(body []byte) ([]batchEntry, error) { return decodeBatchMax(body, math.MaxInt) }

// decodeBatchMax splits a batch body into at most maxEntries entries. It
// checks that every length stays inside the body and that each TOTALSIZE
// matches its fields; it never panics.
func decodeBatchMax(body []byte, maxEntries int) ([]batchEntry, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty", errBatchFormat)
	}
	var out []batchEntry
	for p := 0; p < len(body); {
		if len(out) >= maxEntries {
			return nil, fmt.Errorf("%w: more than %d (maxBatchMessageNums)", errBatchTooMany, maxEntries)
		}
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
