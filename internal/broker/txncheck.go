package broker

// Check-back scan (Java's TransactionalMessageCheckService, Java TransactionalMessageCheckService and
// TransactionalMessageServiceImpl.check). Every transactionCheckInterval
// the scan walks RMQ_SYS_TRANS_HALF_TOPIC queue 0 from its progress, the
// committed offset of group CID_RMQ_SYS_TRANS (persisted with the other
// consumer offsets, so a restart resumes there), in windows of
// txnScanWindow records: memory per round is one window, however many
// half messages are open. For each half message of the window:
//   - decided (op record, or recent decision; see txn.go) → passed;
//   - already checked transactionCheckMax times → copied to
//     TRANS_CHECK_MAX_TIME_TOPIC queue 0 (the 5.x discard) and passed;
//   - younger than transactionTimeOut by born time (a born time in the
//     future counts as old, as in Java) → the walk stops here
//     for this round (later messages are younger still), unless it has a
//     CHECK_IMMUNITY_TIME_IN_SECONDS property: then, while younger than
//     that, it is re-appended unchanged and passed (Java does the same);
//   - committed but without op record (the broker stopped between the
//     two) → the op record is written and it is passed;
//   - otherwise a copy with TRANSACTION_CHECK_TIMES raised by one is
//     appended and CHECK_TRANSACTION_STATE about the copy goes oneway to a
//     live producer connection of its PGROUP (none: nothing is sent, the
//     count still rises, as in Java).
// The check count lives in the copies (Java's way), so it is as durable as
// the half queue. Copies and discards of a window are appended in one
// waiting put before the progress moves past the window, so the progress
// never points past a half message whose copy could be lost. The walk
// stops at the half-queue end as it was when the round began (Java: a
// record stored after the round began), and a round ends after
// txnMaxScanTime.

import (
	"strconv"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
)

const (
	txnScanWindow   = 32               // records read per window (Java reads 32 ops at a time)
	txnMaxScanTime  = 60 * time.Second // Java MAX_PROCESS_TIME_LIMIT
	defaultTxnCheck = 60 * time.Second
	defaultTxnTO    = 6 * time.Second
	defaultTxnMax   = 15
)

func nowMillis() int64 { return time.Now().UnixMilli() }

// txnDefaults fills the transaction settings (Java BrokerConfig defaults).
func (c *Config) txnDefaults() {
	if c.TransactionCheckInterval <= 0 {
		c.TransactionCheckInterval = defaultTxnCheck
	}
	if c.TransactionTimeOut <= 0 {
		c.TransactionTimeOut = defaultTxnTO
	}
	if c.TransactionCheckMax <= 0 {
		c.TransactionCheckMax = defaultTxnMax
	}
}

// applyTxnProperty parses the transaction keys of broker.conf.
func applyTxnProperty(c *Config, k, v string) (bool, error) {
	switch k {
	case "transactionCheckInterval":
		return true, setMillis(&c.TransactionCheckInterval, v)
	case "transactionTimeOut":
		return true, setMillis(&c.TransactionTimeOut, v)
	case "transactionCheckMax":
		return true, setInt(&c.TransactionCheckMax, v)
	}
	return false, nil
}

// txnCheckLoop marks the transaction service ready once the index covers
// the recovered log, then scans every transactionCheckInterval.
func (b *Broker) txnCheckLoop(stop <-chan struct{}) {
	target := b.store.Dispatched() + b.store.DispatchLag()
	for b.store.Dispatched() < target {
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.txn.freshFrom.Store(b.store.MaxOffsetInQueue(TopicTransHalf, 0))
	close(b.txn.ready)
	if b.cfg.BrokerID != 0 {
		return // a slave neither decides nor checks (Java: master only)
	}
	t := time.NewTicker(b.txnInterval())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case d := <-b.live.txnReset: // UPDATE_BROKER_CONFIG (admin_config.go)
			t.Reset(d)
		case <-t.C:
			b.txnScan(stop)
		}
	}
}

// txnRound is one scan round's state and counters.
type txnRound struct {
	b                                  *Broker
	start, deadline                    time.Time
	end                                int64 // half-queue end when the round began
	checked, discarded, passed, repair int
}

// txnScan runs one round over the half queue.
func (b *Broker) txnScan(stop <-chan struct{}) {
	b.txn.sweep(b.store.Dispatched())
	r := &txnRound{b: b, start: time.Now(), end: b.store.MaxOffsetInQueue(TopicTransHalf, 0)}
	r.deadline = r.start.Add(txnMaxScanTime)
	off, ok := b.offsets.Query(TransCheckGroup, TopicTransHalf, 0)
	if low := b.store.MinOffsetInQueue(TopicTransHalf, 0); !ok || off < low {
		off = low
	}
	for off < r.end && time.Now().Before(r.deadline) {
		select {
		case <-stop:
			return
		default:
		}
		next, more := r.window(off)
		if next <= off {
			break
		}
		b.offsets.Commit(TransCheckGroup, TopicTransHalf, 0, next)
		if off = next; !more {
			break
		}
	}
	if r.checked+r.discarded+r.repair > 0 {
		b.log.Info("transaction check round", "checked", r.checked, "discarded", r.discarded,
			"repaired", r.repair, "passed", r.passed, "progress", off, "halfQueueEnd", r.end)
	}
}

// txnAppend is a record the window appends: a copy back to the half queue
// (check says whether CHECK_TRANSACTION_STATE follows) or a discard.
type txnAppend struct {
	m     *message.Message
	check bool
}

// window handles up to txnScanWindow half messages from off. It returns
// the offset the progress may move to and whether the walk goes on.
func (r *txnRound) window(off int64) (int64, bool) {
	b := r.b
	res := b.store.GetMessage(TopicTransHalf, 0, off, txnScanWindow, nil)
	defer res.Release()
	if res.Status != engine.Found {
		// Retention may have removed the start: move to what is left.
		return max(res.NextBeginOffset, off), res.NextBeginOffset > off
	}
	var copies, discards []txnAppend
	next, more := res.NextBeginOffset, true
	for _, rec := range res.Messages {
		v, err := message.Parse(rec)
		if err != nil {
			b.log.Error("transaction check: unreadable half message, skipped", "offset", off, "err", err)
			continue
		}
		if v.QueueOffset >= r.end { // appended during this round

			next, more = v.QueueOffset, false
			break
		}
		a, stopHere := r.examine(&v)
		if stopHere {
			next, more = v.QueueOffset, false
			break
		}
		if a == nil {
			continue
		}
		if a.m.Topic == TopicTransCheckMax {
			discards = append(discards, *a)
		} else {
			copies = append(copies, *a)
		}
	}
	if !r.appendAll(discards) || !r.appendAll(copies) {
		return off, false // nothing passed: the next round sees them again
	}
	return next, more
}

// examine decides what happens to one pending half message: nil (passed
// as decided or repaired), an append, or stop.
func (r *txnRound) examine(v *message.View) (*txnAppend, bool) {
	b := r.b
	origin := originOf(v)
	if b.isDecided(origin) {
		r.passed++
		return nil, false
	}
	checks := propInt(v, propCheckTimes, 0)
	if checks >= b.conf().TransactionCheckMax {
		b.log.Warn("transaction checked too often, discarded to "+TopicTransCheckMax,
			"origin", origin, "checks", checks, "uniqKey", propString(v, message.PropUniqKey))
		b.ensureTxnTopic(TopicTransCheckMax)
		return &txnAppend{m: halfCopy(v, TopicTransCheckMax, v.PropertiesString())}, false
	}
	// A born time in the future (a skewed or hostile producer clock) is
	// due at once, as in Java: otherwise it would stall the queue.
	age := time.Duration(nowMillis()-v.BornTimestamp) * time.Millisecond
	if age < 0 {
		age = max(b.conf().TransactionTimeOut, time.Duration(propInt(v, propImmunity, 0))*time.Second)
	}
	if imm := propInt(v, propImmunity, -1); imm >= 0 {
		if age < time.Duration(imm)*time.Second {
			props := setProperty(v.PropertiesString(), propPreparedOffset, strconv.FormatInt(origin, 10))
			return &txnAppend{m: halfCopy(v, TopicTransHalf, props)}, false
		}
	} else if age < b.conf().TransactionTimeOut {
		return nil, true
	}
	if b.isCommitted(v, origin) {
		// Stopped between commit and op record: finish the decision.
		if err := b.decide(v, true); err != nil {
			b.log.Warn("transaction repair failed", "origin", origin, "err", err)
			return nil, true
		}
		r.repair++
		return nil, false
	}
	props := setProperty(v.PropertiesString(), propPreparedOffset, strconv.FormatInt(origin, 10))
	props = setProperty(props, propCheckTimes, strconv.Itoa(checks+1))
	return &txnAppend{m: halfCopy(v, TopicTransHalf, props), check: true}, false
}

// appendAll appends as in one waiting put and sends the checks.
func (r *txnRound) appendAll(as []txnAppend) bool {
	if len(as) == 0 {
		return true
	}
	ms := make([]*message.Message, len(as))
	for i := range as {
		ms[i] = as[i].m
	}
	res := r.b.store.PutMessages(ms)
	if !res.Status.Stored() {
		r.b.log.Error("transaction check: append failed; the round stops", "status", res.Status, "err", res.Err)
		return false
	}
	for i, a := range as {
		switch {
		case a.m.Topic == TopicTransCheckMax:
			r.discarded++
		case a.check:
			r.checked++
			r.b.sendCheck(a.m, res.Offsets[i], res.QueueOffset+int64(i), res.StoreTimestamp)
		default:
			r.passed++
		}
	}
	return true
}

// halfCopy is v re-addressed to topic queue 0 with props.
func halfCopy(v *message.View, topic, props string) *message.Message {
	return &message.Message{
		Topic: topic, QueueID: 0, Flag: v.Flag,
		SysFlag:       v.SysFlag &^ (message.FlagTransactionMask | message.FlagBornHostV6 | message.FlagStoreHostV6),
		BornTimestamp: v.BornTimestamp, BornHost: v.BornHost(), StoreHost: v.StoreHost(),
		ReconsumeTimes: v.ReconsumeTimes, Body: append([]byte(nil), v.Body...), Properties: props,
	}
}

// sendCheck sends CHECK_TRANSACTION_STATE about the copy m stored at phys
// / queue offset qo to one live connection of its producer group. The
// body is the copy with topic and queue set back to REAL_TOPIC/REAL_QID.
func (b *Broker) sendCheck(m *message.Message, phys, qo, storeTS int64) {
	group, _ := message.LookupProperty(m.Properties, message.PropProducerGroup)
	conn := b.producers.AvailableConn(group)
	if conn == nil {
		b.log.Debug("transaction check: no live producer of the group", "group", clip(group), "offset", phys)
		return
	}
	body := *m
	body.Topic, _ = message.LookupProperty(m.Properties, message.PropRealTopic)
	qs, _ := message.LookupProperty(m.Properties, message.PropRealQueueID)
	if q, err := strconv.ParseInt(qs, 10, 32); err == nil && body.Topic != "" && len(body.Topic) <= message.MaxTopicLen {
		body.QueueID = int32(q)
	} else {
		body.Topic = m.Topic
	}
	buf := make([]byte, body.Size())
	body.Encode(buf, message.BodyCRC(body.Body), qo, phys, storeTS)
	uniq, _ := message.LookupProperty(m.Properties, message.PropUniqKey)
	cmd := protocol.NewRequest(protocol.CheckTransactionState, &protocol.CheckTransactionStateRequestHeader{
		TranStateTableOffset: qo, CommitLogOffset: phys, MsgID: uniq, TransactionID: uniq,
		OffsetMsgID: message.OffsetMsgID(b.storeHost, phys),
	})
	cmd.Body = buf
	if err := conn.InvokeOneway(cmd); err != nil {
		b.log.Debug("transaction check not sent", "group", clip(group), "err", err)
	}
}

func propString(v *message.View, k string) string {
	s, _ := v.Property(k)
	return s
}

// propInt is an integer property, def when absent or not a number.
func propInt(v *message.View, k string, def int) int {
	s, ok := v.Property(k)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return def
	}
	return n
}
