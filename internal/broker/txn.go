package broker

// Transactional messages (Java's TransactionalMessageServiceImpl): half messages, END_TRANSACTION (37)
// and the decision record. The check-back scan is in txncheck.go.
//
// A prepared send is stored as an ordinary message of
// RMQ_SYS_TRANS_HALF_TOPIC queue 0 with REAL_TOPIC/REAL_QID (Java
// TransactionalMessageBridge.parseHalfMessageInner), so consumers of the
// real topic never see it. A decision re-puts the half to its real topic
// (commit, as Java EndTransactionProcessor.endMessageTransaction) and then
// writes an op record to RMQ_SYS_TRANS_OP_HALF_TOPIC (tag "d", body = the
// half's queue offset).
//
// Applied once. The check-back scan re-appends copies of a pending half
// (Java does the same); every copy carries TRAN_PREPARED_QUEUE_OFFSET =
// the queue offset of the first half, its origin, and decisions are keyed
// by the origin: the op record's body and KEYS are the origin offset and
// the commit record carries TRAN_PREPARED_QUEUE_OFFSET too. Before a
// decision is applied, under a lock striped by origin, the service asks:
//   - is there an op record for the origin? Then the decision was made:
//     nothing is written (a repeated END_TRANSACTION, or one answering an
//     older copy).
//   - commit only: is there already a commit record for the origin (the
//     real topic's records with the half's UNIQ_KEY, commit type, same
//     origin)? Then the broker stopped between the commit and the op
//     record: only the op record is written.
// Both questions go to the index (topic#key, rebuilt from the commit log
// after a crash, so the answer survives kill -9) and, for records not
// indexed yet, to an in-memory table of recent decisions that keeps each
// entry until the dispatcher has indexed its record. The two puts cannot
// be one atomic batch (a torn tail can keep the first record of a batch),
// hence the lookup rather than ordering tricks. The commit and op records
// are put without waiting for the flush: END_TRANSACTION is oneway, the
// log is sequential (an op record that survived means its commit did), and
// a lost decision leaves the half pending for the check-back.

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Property names of the transaction machinery (Java MessageConst).
const (
	propCheckTimes     = "TRANSACTION_CHECK_TIMES"
	propPreparedOffset = "TRAN_PREPARED_QUEUE_OFFSET"
	propImmunity       = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	opTagDone          = "d" // Java TransactionalMessageUtil.REMOVETAG
	// TransCheckGroup is the internal consumer group whose committed offset
	// on the half queue is the check-back scan's progress (Java's TransactionalMessageUtil).
	TransCheckGroup = "CID_RMQ_SYS_TRANS"
	txnStripes      = 64
	// decisionSweepEvery: the decision table drops indexed entries after
	// this many additions.
	decisionSweepEvery = 1024
	queryMaxCandidates = 64
)

// Decision states kept in the recent-decision table.
const (
	stateCommitted uint8 = 1 // commit record written, op record not yet
	stateDone      uint8 = 2 // op record written
)

// txnService holds the decision locks and the recent-decision table.
type txnService struct {
	stripes [txnStripes]sync.Mutex
	mu      sync.Mutex
	recent  map[int64]decision // origin → state, until indexed
	adds    int
	ready   chan struct{} // closed once the index covers the recovered log
	// freshFrom is the half-queue end when ready closed: transactions whose
	// first half is at or above it began in this process, so a commit
	// record of theirs without op record can exist only if an op put
	// failed here (opFailed); isCommitted skips the index for them.
	freshFrom atomic.Int64
	opFailed  atomic.Bool
}

type decision struct {
	state uint8
	end   int64 // log offset past the record that set state
}

func newTxnService() *txnService {
	t := &txnService{recent: map[int64]decision{}, ready: make(chan struct{})}
	t.freshFrom.Store(math.MaxInt64)
	return t
}

func (b *Broker) registerTransactions() {
	b.server.Handle(protocol.EndTransaction, counted(&b.stats.EndTxn, b.handleEndTransaction)) // admin_load.go
}

// toHalf turns a prepared send into its half message (Java's TransactionalMessageBridge.parseHalfMessageInner).
func (b *Broker) toHalf(m *message.Message) {
	// The broker's own bookkeeping properties are never taken from the
	// producer: a forged TRAN_PREPARED_QUEUE_OFFSET would key this
	// transaction's decision on another one's half.
	props := dropProperty(dropProperty(m.Properties, propPreparedOffset), propCheckTimes)
	props = setProperty(props, message.PropRealTopic, m.Topic)
	props = setProperty(props, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
	if _, ok := message.LookupProperty(props, message.PropUniqKey); !ok {
		// The commit dedupe looks the commit up by UNIQ_KEY; every RocketMQ
		// client sets one, a hand-made request might not.
		props = message.AppendProperty(props, message.PropUniqKey, fmt.Sprintf("MQDTXN%X%X", time.Now().UnixNano(), txnSeq.Add(1)))
	}
	m.Properties = props
	m.SysFlag &^= message.FlagTransactionMask
	m.Topic, m.QueueID = TopicTransHalf, 0
	b.ensureTxnTopic(TopicTransHalf)
}

// txnSeq makes broker-made UNIQ_KEYs distinct within one nanosecond.
var txnSeq atomic.Int64

// ensureTxnTopic creates a transaction system topic (one queue) in the
// topic table the first time it is used, as Java does.
func (b *Broker) ensureTxnTopic(topic string) {
	if _, ok := b.topics.Get(topic); ok {
		return
	}
	if _, err := b.topics.CreateIfMissing(topic, 1, protocol.PermRead|protocol.PermWrite); err != nil {
		b.log.Warn("transaction system topic not created", "topic", topic, "err", err)
	}
}

// handleEndTransaction applies a producer's decision (Java's EndTransactionProcessor). Success
// has no response (the request is oneway); errors are answered as Java.
func (b *Broker) handleEndTransaction(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.EndTransactionRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	if b.cfg.BrokerID != 0 {
		return respond(req, protocol.ResponseSlaveNotAvailable, "the broker is a slave, END_TRANSACTION is refused")
	}
	var commit bool
	switch h.CommitOrRollback {
	case protocol.TransactionCommitType:
		commit = true
	case protocol.TransactionRollbackType:
	case protocol.TransactionNotType:
		return nil // unknown: the check-back will ask again
	default:
		return b.refuse(req, "commitOrRollback", protocol.ResponseSystemError,
			fmt.Sprintf("commitOrRollback %d is not 0, 8 or 12", h.CommitOrRollback))
	}
	select {
	case <-b.txn.ready:
	default:
		return respond(req, protocol.ResponseSystemError, "transaction state is being recovered, try again")
	}
	v, resp := b.findHalf(req, &h)
	if resp != nil {
		return resp
	}
	if err := b.decide(&v, commit); err != nil {
		b.log.Warn("END_TRANSACTION not applied", "producer", clip(h.ProducerGroup), "offset", h.CommitLogOffset, "err", err)
		return respond(req, protocol.ResponseSystemError, err.Error())
	}
	return nil
}

// findHalf reads and validates the half message END_TRANSACTION names.
func (b *Broker) findHalf(req *protocol.Command, h *protocol.EndTransactionRequestHeader) (message.View, *protocol.Command) {
	fail := func(format string, args ...any) (message.View, *protocol.Command) {
		return message.View{}, respond(req, protocol.ResponseSystemError, fmt.Sprintf(format, args...))
	}
	rec, err := b.store.ReadMessage(h.CommitLogOffset)
	if err != nil {
		return fail("find prepared transaction message failed: offset %d", h.CommitLogOffset)
	}
	v, err := message.Parse(rec)
	if err != nil {
		return fail("prepared transaction message unreadable: %v", err)
	}
	pg, _ := v.Property(message.PropProducerGroup)
	switch {
	case v.TopicString() != TopicTransHalf:
		return fail("the message at offset %d is not a prepared transaction message", h.CommitLogOffset)
	case pg != h.ProducerGroup:
		return fail("the producer group %q does not match the prepared message's %q", clip(h.ProducerGroup), clip(pg))
	case v.QueueOffset != h.TranStateTableOffset:
		return fail("the transaction state table offset %d does not match the prepared message's %d",
			h.TranStateTableOffset, v.QueueOffset)
	}
	return v, nil
}

// originOf is the queue offset of the first half of v's transaction.
func originOf(v *message.View) int64 {
	if s, ok := v.Property(propPreparedOffset); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return v.QueueOffset
}

// decide applies commit or rollback to the half v once (see the file
// comment).
func (b *Broker) decide(v *message.View, commit bool) error {
	origin := originOf(v)
	mu := &b.txn.stripes[uint64(origin)%txnStripes]
	mu.Lock()
	defer mu.Unlock()
	if b.isDecided(origin) {
		return nil
	}
	if commit && !b.isCommitted(v, origin) {
		m, err := commitMessage(v, origin)
		if err != nil {
			return err
		}
		res := b.store.PutMessageWait(m, false)
		if !res.Status.Stored() {
			b.txn.opFailed.Store(true) // the record may still be in the log
			return fmt.Errorf("commit re-put failed: %s %v", res.Status, res.Err)
		}
		b.txn.note(b, origin, stateCommitted, res.Offset+int64(res.Size))
	}
	return b.writeOp(origin)
}

// writeOp records that the transaction with origin half offset is decided.
func (b *Broker) writeOp(origin int64) error {
	b.ensureTxnTopic(TopicTransOpHalf)
	s := strconv.FormatInt(origin, 10)
	props := message.AppendProperty(message.PropTags+string(message.NameValueSep)+opTagDone, message.PropKeys, s)
	m := &message.Message{
		Topic: TopicTransOpHalf, QueueID: 0, BornTimestamp: nowMillis(),
		BornHost: b.storeHost, StoreHost: b.storeHost, Body: []byte(s), Properties: props,
	}
	res := b.store.PutMessageWait(m, false)
	if !res.Status.Stored() {
		b.txn.opFailed.Store(true)
		return fmt.Errorf("op record put failed: %s %v", res.Status, res.Err)
	}
	b.txn.note(b, origin, stateDone, res.Offset+int64(res.Size))
	return nil
}

// commitMessage is the record a commit re-puts: the half's body, flags,
// born data and properties (UNIQ_KEY, keys, TRAN_MSG kept as Java keeps
// them) to REAL_TOPIC/REAL_QID, commit type, with the half's offset.
func commitMessage(v *message.View, origin int64) (*message.Message, error) {
	topic, _ := v.Property(message.PropRealTopic)
	qs, _ := v.Property(message.PropRealQueueID)
	qid, err := strconv.ParseInt(qs, 10, 32)
	if topic == "" || err != nil || qid < 0 {
		return nil, fmt.Errorf("prepared message at %d has no valid REAL_TOPIC/REAL_QID", v.PhysOffset)
	}
	props := setProperty(v.PropertiesString(), propPreparedOffset, strconv.FormatInt(origin, 10))
	return &message.Message{
		Topic: topic, QueueID: int32(qid), Flag: v.Flag,
		SysFlag:       v.SysFlag&^(message.FlagTransactionMask|message.FlagBornHostV6|message.FlagStoreHostV6) | message.FlagCommit,
		BornTimestamp: v.BornTimestamp, BornHost: v.BornHost(), StoreHost: v.StoreHost(),
		ReconsumeTimes: v.ReconsumeTimes, PreparedTransactionOffset: v.PhysOffset,
		Body: append([]byte(nil), v.Body...), Properties: props,
	}, nil
}

// setProperty replaces k's value in an encoded properties string, or
// appends k=v; other entries keep their order.
func setProperty(props, k, v string) string {
	return message.AppendProperty(dropProperty(props, k), k, v)
}

// dropProperty removes every k entry (and empty entries) from props.
func dropProperty(props, k string) string {
	var sb strings.Builder
	sb.Grow(len(props))
	for _, chunk := range strings.Split(props, string(message.PropertySep)) {
		if name, _, _ := strings.Cut(chunk, string(message.NameValueSep)); chunk == "" || name == k {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(message.PropertySep)
		}
		sb.WriteString(chunk)
	}
	return sb.String()
}

// isDecided reports an op record for origin.
func (b *Broker) isDecided(origin int64) bool {
	if st, ok := b.txn.lookup(origin); ok && st == stateDone {
		return true
	}
	res, err := b.store.QueryMessage(TopicTransOpHalf, strconv.FormatInt(origin, 10), queryMaxCandidates, 0, math.MaxInt64)
	if err != nil {
		b.log.Warn("transaction op lookup failed", "origin", origin, "err", err)
		return false
	}
	return len(res.Records) > 0
}

// isCommitted reports a commit record of the transaction whose half is v.
func (b *Broker) isCommitted(v *message.View, origin int64) bool {
	if _, ok := b.txn.lookup(origin); ok {
		return true // committed or done
	}
	if origin >= b.txn.freshFrom.Load() && !b.txn.opFailed.Load() {
		return false
	}
	topic, _ := v.Property(message.PropRealTopic)
	uniq, _ := v.Property(message.PropUniqKey)
	if topic == "" || uniq == "" {
		return false
	}
	res, err := b.store.QueryMessage(topic, uniq, queryMaxCandidates, 0, math.MaxInt64)
	if err != nil {
		b.log.Warn("transaction commit lookup failed", "topic", topic, "key", uniq, "err", err)
		return false
	}
	want := strconv.FormatInt(origin, 10)
	for _, rec := range res.Records {
		c, err := message.Parse(rec)
		if err != nil || c.TransactionType() != message.FlagCommit {
			continue
		}
		if o, _ := c.Property(propPreparedOffset); o == want {
			return true
		}
	}
	return false
}

// lookup returns the recent decision about origin.
func (t *txnService) lookup(origin int64) (uint8, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.recent[origin]
	return d.state, ok
}

// note records a decision step whose record ends at end; entries the
// dispatcher has indexed are swept out periodically.
func (t *txnService) note(b *Broker, origin int64, state uint8, end int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recent[origin] = decision{state: state, end: end}
	if t.adds++; t.adds%decisionSweepEvery == 0 {
		t.sweepLocked(b.store.Dispatched())
	}
}

// sweep drops the decisions whose records are below indexed (every scan
// round does, so an idle broker's table empties too).
func (t *txnService) sweep(indexed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(indexed)
}

func (t *txnService) sweepLocked(indexed int64) {
	for k, d := range t.recent {
		if d.end <= indexed {
			delete(t.recent, k)
		}
	}
}
