package broker

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// txnConfig is a broker whose check loop never fires by itself: the tests
// run rounds with txnScan.
func txnConfig(t *testing.T, dir string) Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	cfg.BrokerIP1, cfg.Listener = "127.0.0.1", ln
	cfg.Store = engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: dir, MappedFileSizeCommitLog: 1 << 20, ConsumeQueueEntriesPerFile: 1000,
		MaxHashSlotNum: 1000, MaxIndexNum: 10000, FlushDiskType: engine.SyncFlush}
	cfg.TransactionCheckInterval = time.Hour
	cfg.TransactionTimeOut = time.Second
	cfg.TransactionCheckMax = 2
	return cfg
}

func startTxnBroker(t *testing.T, dir string) (*Broker, *remoting.Client) {
	t.Helper()
	b, c := serve(t, txnConfig(t, dir))
	waitFor(t, "transaction service ready", func() bool {
		select {
		case <-b.txn.ready:
			return true
		default:
			return false
		}
	})
	return b, c
}

// restartTxnBroker stops b cleanly and starts a broker on the same store.
func restartTxnBroker(t *testing.T, b *Broker, c *remoting.Client) (*Broker, *remoting.Client) {
	t.Helper()
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return startTxnBroker(t, b.cfg.Store.Dir)
}

// sendHalf sends prepared message i of topic TxT queue 1 (born long ago,
// so the check-back considers it at once).
func sendHalf(t *testing.T, c *remoting.Client, i int) protocol.SendMessageResponseHeader {
	t.Helper()
	props := "TAGS\x01tg\x02KEYS\x01k" + strconv.Itoa(i) + "\x02UNIQ_KEY\x01U" + strconv.Itoa(i) +
		"\x02TRAN_MSG\x01true\x02PGROUP\x01pg\x02"
	h := sendHeader("TxT", 1, props)
	h.SysFlag = protocol.TransactionPreparedType
	return mustSendOK(t, produce(t, c, protocol.SendMessage, h, []byte("body-"+strconv.Itoa(i))))
}

func endTxnReq(t *testing.T, b *Broker, phys, queueOffset int64, state int32) *protocol.Command {
	t.Helper()
	return protocol.NewRequest(protocol.EndTransaction, &protocol.EndTransactionRequestHeader{
		ProducerGroup: "pg", TranStateTableOffset: queueOffset, CommitLogOffset: phys,
		CommitOrRollback: state, MsgID: "U"})
}

// endTxn sends END_TRANSACTION oneway, as producers do.
func endTxn(t *testing.T, b *Broker, c *remoting.Client, rh protocol.SendMessageResponseHeader, state int32) {
	t.Helper()
	if err := c.InvokeOneway(endTxnReq(t, b, offsetOfID(t, b, rh.MsgID), rh.QueueOffset, state)); err != nil {
		t.Fatal(err)
	}
}

// queueLen is the number of records in topic's queue once dispatched.
func queueLen(b *Broker, topic string, q int32) int64 {
	for b.store.DispatchLag() > 0 {
		time.Sleep(time.Millisecond)
	}
	return b.store.MaxOffsetInQueue(topic, q)
}

// settle waits until handlers of earlier oneway requests have run: a
// request on the same connection answered after them.
func settle(t *testing.T, c *remoting.Client) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	call(t, c, protocol.NewRequest(protocol.GetBrokerConfig, nil))
}

func TestTxnHalfInvisibleThenCommittedOnce(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir())
	rh := sendHalf(t, c, 0)
	half := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID))
	if half.TopicString() != TopicTransHalf || half.QueueID != 0 || half.TransactionType() != 0 ||
		propString(&half, message.PropRealTopic) != "TxT" || propString(&half, message.PropRealQueueID) != "1" {
		t.Fatalf("half stored as %s/%d sysFlag %d props %q", half.Topic, half.QueueID, half.SysFlag, half.Properties)
	}
	if rh.QueueID != 1 || rh.QueueOffset != 0 {
		t.Fatalf("response queue %d offset %d", rh.QueueID, rh.QueueOffset)
	}
	if n := queueLen(b, "TxT", 1); n != 0 {
		t.Fatalf("half message visible in the real topic: %d", n)
	}
	for range 3 { // repeated decisions apply once
		endTxn(t, b, c, rh, protocol.TransactionCommitType)
	}
	settle(t, c)
	waitFor(t, "commit and op record", func() bool {
		return queueLen(b, "TxT", 1) >= 1 && queueLen(b, TopicTransOpHalf, 0) >= 1
	})
	settle(t, c)
	if n := queueLen(b, "TxT", 1); n != 1 {
		t.Fatalf("%d committed records, want 1", n)
	}
	if n := queueLen(b, TopicTransOpHalf, 0); n != 1 {
		t.Fatalf("%d op records, want 1", n)
	}
	res := b.store.GetMessage("TxT", 1, 0, 1, nil)
	v, _ := message.Parse(res.Messages[0])
	if v.TransactionType() != message.FlagCommit || v.PreparedTransactionOffset != half.PhysOffset ||
		propString(&v, message.PropUniqKey) != "U0" || propString(&v, message.PropKeys) != "k0" ||
		propString(&v, message.PropTags) != "tg" || string(v.Body) != "body-0" || v.Flag != 7 {
		t.Fatalf("commit record: sysFlag %d prep %d props %q body %q", v.SysFlag, v.PreparedTransactionOffset, v.Properties, v.Body)
	}
	res.Release()
	op := b.store.GetMessage(TopicTransOpHalf, 0, 0, 1, nil)
	ov, _ := message.Parse(op.Messages[0])
	if string(ov.Body) != "0" || propString(&ov, message.PropTags) != "d" {
		t.Fatalf("op record body %q props %q", ov.Body, ov.Properties)
	}
	op.Release()
	// A late rollback changes nothing.
	endTxn(t, b, c, rh, protocol.TransactionRollbackType)
	settle(t, c)
	barrier(t, b)
	if queueLen(b, TopicTransOpHalf, 0) != 1 || queueLen(b, "TxT", 1) != 1 {
		t.Fatal("a repeated decision wrote again")
	}
}

func TestTxnRollbackNeverDelivered(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir())
	rh := sendHalf(t, c, 0)
	endTxn(t, b, c, rh, protocol.TransactionRollbackType)
	waitFor(t, "op record", func() bool { return queueLen(b, TopicTransOpHalf, 0) == 1 })
	endTxn(t, b, c, rh, protocol.TransactionCommitType) // too late
	settle(t, c)
	if n := queueLen(b, "TxT", 1); n != 0 {
		t.Fatalf("rolled-back message delivered: %d", n)
	}
	b.txnScan(nil)
	if n := queueLen(b, TopicTransHalf, 0); n != 1 {
		t.Fatalf("a decided half was checked again: half queue %d", n)
	}
}

func TestTxnEndTransactionValidation(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir())
	rh := sendHalf(t, c, 0)
	phys := offsetOfID(t, b, rh.MsgID)
	bad := []*protocol.Command{
		endTxnReq(t, b, phys, rh.QueueOffset+1, protocol.TransactionCommitType), // wrong queue offset
		endTxnReq(t, b, phys+1, rh.QueueOffset, protocol.TransactionCommitType), // not a record
		endTxnReq(t, b, phys, rh.QueueOffset, 5),                                // not a state
	}
	wrongGroup := endTxnReq(t, b, phys, rh.QueueOffset, protocol.TransactionCommitType)
	wrongGroup.SetExt("producerGroup", "other")
	bad = append(bad, wrongGroup)
	for i, req := range bad {
		if resp := call(t, c, req); resp.Code != protocol.ResponseSystemError || resp.Remark == "" {
			t.Errorf("request %d: code %d %q", i, resp.Code, resp.Remark)
		}
	}
	plain := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("TxT", 0, ""), []byte("x")))
	if resp := call(t, c, endTxnReq(t, b, offsetOfID(t, b, plain.MsgID), 0, protocol.TransactionCommitType)); resp.Code != protocol.ResponseSystemError {
		t.Fatalf("END_TRANSACTION on a normal message: code %d", resp.Code)
	}
	if n := queueLen(b, "TxT", 1); n != 0 {
		t.Fatalf("invalid requests committed %d", n)
	}
}

// TestTxnCrashBetweenCommitAndOp: the commit record is in the log but the
// op record is not (the broker stopped between the two puts). After a
// restart (empty decision table), neither a repeated commit nor the
// check-back delivers it again; both complete the decision instead.
func TestTxnCrashBetweenCommitAndOp(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir())
	rh0, rh1 := sendHalf(t, c, 0), sendHalf(t, c, 1)
	for _, rh := range []protocol.SendMessageResponseHeader{rh0, rh1} {
		rec, err := b.store.ReadMessage(offsetOfID(t, b, rh.MsgID))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := message.Parse(rec)
		m, err := commitMessage(&v, v.QueueOffset)
		if err != nil {
			t.Fatal(err)
		}
		if res := b.store.PutMessage(m); !res.Status.Stored() {
			t.Fatal(res.Status)
		}
	}
	phys0 := offsetOfID(t, b, rh0.MsgID)
	b, c = restartTxnBroker(t, b, c)
	if err := c.InvokeOneway(endTxnReq(t, b, phys0, rh0.QueueOffset, protocol.TransactionCommitType)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "op record of the repeated commit", func() bool { return queueLen(b, TopicTransOpHalf, 0) == 1 })
	b.txnScan(nil) // finds half 1 committed without op record
	waitFor(t, "op record of the repair", func() bool { return queueLen(b, TopicTransOpHalf, 0) == 2 })
	if n := queueLen(b, TopicTransHalf, 0); n != 2 {
		t.Fatalf("the check-back copied a committed half: half queue %d", n)
	}
	if n := queueLen(b, "TxT", 1); n != 2 {
		t.Fatalf("%d records delivered, want 2 (one per transaction)", n)
	}
}

// TestTxnCheckRoundsWindowsRestartDiscard: 70 pending halves (more than
// two windows) are each checked once per round, through copies the
// producer sees; a decision on a copy closes the transaction; progress
// survives a restart; after transactionCheckMax checks the rest go to
// TRANS_CHECK_MAX_TIME_TOPIC.
func TestTxnCheckRoundsWindowsRestartDiscard(t *testing.T) {
	const n = 70
	b, c := startTxnBroker(t, t.TempDir())
	checks := checkListener(t, b, 4*n)
	for i := range n {
		sendHalf(t, c, i)
	}
	young := sendHalfBornNow(t, c)
	waitFor(t, "halves in the half queue", func() bool { return queueLen(b, TopicTransHalf, 0) == int64(n+1) })
	b.txnScan(nil)
	got := drainChecks(t, checks, n)
	if off, _ := b.offsets.Query(TransCheckGroup, TopicTransHalf, 0); off != n {
		t.Fatalf("progress %d, want %d (stopped at the young half)", off, n)
	}
	// Each check names a copy whose body is the message as the producer
	// sent it; commit the even ones through the copies.
	for _, req := range got {
		var h protocol.CheckTransactionStateRequestHeader
		if err := h.Decode(req.ExtFields); err != nil {
			t.Fatal(err)
		}
		v, err := message.Parse(req.Body)
		if err != nil || v.TopicString() != "TxT" || v.QueueID != 1 || v.PhysOffset != h.CommitLogOffset {
			t.Fatalf("check body: %v %s/%d", err, v.Topic, v.QueueID)
		}
		i, _ := strconv.Atoi(propString(&v, message.PropUniqKey)[1:])
		if propString(&v, propCheckTimes) != "1" || propString(&v, propPreparedOffset) != strconv.Itoa(i) {
			t.Fatalf("copy of %d: props %q", i, v.Properties)
		}
		if i%2 == 0 {
			if err := c.InvokeOneway(endTxnReq(t, b, h.CommitLogOffset, h.TranStateTableOffset, protocol.TransactionCommitType)); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle(t, c)
	waitFor(t, "commits", func() bool { return queueLen(b, "TxT", 1) == n/2 })
	_ = young
	b, c = restartTxnBroker(t, b, c)
	if off, _ := b.offsets.Query(TransCheckGroup, TopicTransHalf, 0); off != n {
		t.Fatalf("progress after restart %d, want %d", off, n)
	}
	time.Sleep(b.cfg.TransactionTimeOut) // the young half is old now
	b.txnScan(nil)                       // second check of the odd ones and first of the young one
	if got := queueLen(b, TopicTransHalf, 0); got != 2*n+1+n/2+1 {
		t.Fatalf("half queue %d after round 2", got)
	}
	b.txnScan(nil) // odd ones reached transactionCheckMax (2): discarded
	if got := queueLen(b, TopicTransCheckMax, 0); got != n/2 {
		t.Fatalf("%d discarded, want %d", got, n/2)
	}
	if got := queueLen(b, "TxT", 1); got != n/2 {
		t.Fatalf("%d delivered, want %d", got, n/2)
	}
}

// checkListener connects producer group pg to b and returns the
// CHECK_TRANSACTION_STATE requests it receives.
func checkListener(t *testing.T, b *Broker, buffer int) <-chan *protocol.Command {
	t.Helper()
	checks := make(chan *protocol.Command, buffer)
	mux := remoting.NewMux()
	mux.Handle(protocol.CheckTransactionState, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		checks <- req
		return nil
	})
	pc, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	expectCode(t, call(t, pc, heartbeatReq(t, "", "pg")), protocol.ResponseSuccess)
	return checks
}

func sendHalfBornNow(t *testing.T, c *remoting.Client) protocol.SendMessageResponseHeader {
	t.Helper()
	h := sendHeader("TxT", 1, "UNIQ_KEY\x01young\x02TRAN_MSG\x01true\x02PGROUP\x01pg")
	h.BornTimestamp = time.Now().UnixMilli()
	return mustSendOK(t, produce(t, c, protocol.SendMessage, h, []byte("young")))
}

func drainChecks(t *testing.T, ch <-chan *protocol.Command, n int) []*protocol.Command {
	t.Helper()
	var out []*protocol.Command
	deadline := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case req := <-ch:
			out = append(out, req)
		case <-deadline:
			t.Fatalf("%d checks of %d arrived", len(out), n)
		}
	}
	select {
	case <-ch:
		t.Fatal("more checks than pending halves")
	case <-time.After(100 * time.Millisecond):
	}
	return out
}

func TestTxnSetProperty(t *testing.T) {
	got := setProperty("A\x011\x02B\x012\x02C\x013", "B", "9")
	if got != "A\x011\x02C\x013\x02B\x019" {
		t.Fatalf("%q", got)
	}
	if got := setProperty("", "K", "v"); got != "K\x01v" {
		t.Fatalf("%q", got)
	}
	if got := dropProperty("B\x011\x02A\x011\x02B\x012\x02", "B"); got != "A\x011" {
		t.Fatalf("%q", got)
	}
}

// A producer cannot plant the broker's bookkeeping properties: a forged
// origin would make its decision count for another transaction.
func TestTxnForgedBookkeepingDropped(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir())
	victim := sendHalf(t, c, 0)
	h := sendHeader("TxT", 1, "TRAN_MSG\x01true\x02PGROUP\x01pg\x02TRAN_PREPARED_QUEUE_OFFSET\x010\x02TRANSACTION_CHECK_TIMES\x0199\x02REAL_TOPIC\x01Other")
	forged := mustSendOK(t, produce(t, c, protocol.SendMessage, h, []byte("f")))
	v := viewByOffset(t, c, offsetOfID(t, b, forged.MsgID))
	if _, ok := v.Property(propPreparedOffset); ok || propString(&v, message.PropRealTopic) != "TxT" {
		t.Fatalf("stored properties %q", v.Properties)
	}
	if _, ok := v.Property(propCheckTimes); ok {
		t.Fatalf("stored properties %q", v.Properties)
	}
	endTxn(t, b, c, forged, protocol.TransactionRollbackType)
	endTxn(t, b, c, victim, protocol.TransactionCommitType)
	waitFor(t, "victim committed", func() bool { return queueLen(b, "TxT", 1) == 1 })
}

// TestTxnDecisionsDedupedAfterEviction: the recent-decision table drops
// decisions once indexed, and the index then answers: deciding every
// transaction a second time (commit or rollback) writes nothing.
func TestTxnDecisionsDedupedAfterEviction(t *testing.T) {
	const n = 3 * decisionSweepEvery
	b, _ := startTxnBroker(t, t.TempDir())
	halves := make([]*message.Message, n)
	for i := range halves {
		m := &message.Message{Topic: "TxE", QueueID: 0, BornTimestamp: 1, BornHost: b.storeHost, StoreHost: b.storeHost,
			Body: []byte("e"), Properties: "UNIQ_KEY\x01E" + strconv.Itoa(i) + "\x02PGROUP\x01pg"}
		b.toHalf(m)
		halves[i] = m
	}
	res := b.store.PutMessages(halves)
	if !res.Status.Stored() {
		t.Fatal(res.Status)
	}
	decideAll := func(commit bool) {
		for _, phys := range res.Offsets {
			rec, err := b.store.ReadMessage(phys)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := message.Parse(rec)
			if err := b.decide(&v, commit); err != nil {
				t.Fatal(err)
			}
		}
	}
	decideAll(true)
	waitFor(t, "decisions indexed", func() bool {
		return queueLen(b, TopicTransOpHalf, 0) == n && b.store.Dispatched() >= b.txn.maxEnd()
	})
	b.txn.sweep(b.store.Dispatched())
	if left := len(b.txn.recent); left != 0 {
		t.Fatalf("decision table kept %d of %d entries", left, n)
	}
	decideAll(true)
	decideAll(false)
	barrier(t, b)
	if got := queueLen(b, "TxE", 0); got != n {
		t.Fatalf("%d commits for %d transactions", got, n)
	}
	if got := queueLen(b, TopicTransOpHalf, 0); got != n {
		t.Fatalf("%d op records for %d transactions", got, n)
	}
}

// maxEnd is the largest record end in the decision table.
func (t *txnService) maxEnd() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var end int64
	for _, d := range t.recent {
		end = max(end, d.end)
	}
	return end
}

// barrier makes every record appended so far durable, hence visible: a
// waiting put behind them (the log is sequential).
func barrier(t *testing.T, b *Broker) {
	t.Helper()
	m := &message.Message{Topic: "Barrier", BornHost: b.storeHost, StoreHost: b.storeHost, Body: []byte("b")}
	if res := b.store.PutMessage(m); res.Status != engine.PutOK {
		t.Fatal(res.Status)
	}
}

func TestTxnConfKeys(t *testing.T) {
	cfg := NewConfig()
	ignored, err := ApplyProperties(map[string]string{"transactionCheckInterval": "1500",
		"transactionTimeOut": "2500", "transactionCheckMax": "3"}, &cfg)
	if err != nil || len(ignored) != 0 {
		t.Fatalf("ignored %v err %v", ignored, err)
	}
	if cfg.TransactionCheckInterval != 1500*time.Millisecond || cfg.TransactionTimeOut != 2500*time.Millisecond || cfg.TransactionCheckMax != 3 {
		t.Fatalf("%+v", cfg)
	}
	var d Config
	d.txnDefaults()
	if d.TransactionCheckInterval != time.Minute || d.TransactionTimeOut != 6*time.Second || d.TransactionCheckMax != 15 {
		t.Fatalf("defaults %v %v %d", d.TransactionCheckInterval, d.TransactionTimeOut, d.TransactionCheckMax)
	}
	if _, err := ApplyProperties(map[string]string{"transactionCheckMax": "x"}, &cfg); err == nil {
		t.Fatal("a bad number was accepted")
	}
}

// A half born in the future (skewed producer clock) is checked at once
// rather than stalling the queue for everyone behind it.
func TestTxnFutureBornDoesNotStall(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir())
	h := sendHeader("TxT", 1, "UNIQ_KEY\x01future\x02TRAN_MSG\x01true\x02PGROUP\x01pg")
	h.BornTimestamp = time.Now().Add(24 * time.Hour).UnixMilli()
	mustSendOK(t, produce(t, c, protocol.SendMessage, h, []byte("f")))
	sendHalf(t, c, 1)
	// SEND_OK means stored; the half queue entries are dispatched after it.
	waitFor(t, "both halves in the half queue", func() bool { return queueLen(b, TopicTransHalf, 0) == 2 })
	b.txnScan(nil)
	if off, _ := b.offsets.Query(TransCheckGroup, TopicTransHalf, 0); off != 2 {
		t.Fatalf("progress %d, want 2", off)
	}
	if n := queueLen(b, TopicTransHalf, 0); n != 4 {
		t.Fatalf("half queue %d, want both checked (4)", n)
	}
}

// A transactional send with a delay level or timer is refused (code 13)
// rather than delivered at once on commit: the commit path does not
// schedule yet. Nothing reaches the half or the schedule topic.
func TestTxnWithDelayRefused(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir())
	for _, extra := range []string{"DELAY\x012", "TIMER_DELAY_MS\x015000"} {
		h := sendHeader("TxT", 1, "UNIQ_KEY\x01d\x02TRAN_MSG\x01true\x02PGROUP\x01pg\x02"+extra)
		h.SysFlag = protocol.TransactionPreparedType
		resp := produce(t, c, protocol.SendMessage, h, []byte("delayed-txn"))
		if resp.Code != protocol.ResponseMessageIllegal {
			t.Fatalf("%q: code %d (%s), want %d", extra, resp.Code, resp.Remark, protocol.ResponseMessageIllegal)
		}
	}
	if n := queueLen(b, TopicTransHalf, 0); n != 0 {
		t.Fatalf("half queue holds %d messages", n)
	}
}
