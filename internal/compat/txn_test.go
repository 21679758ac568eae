package compat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/mqd/mqd/internal/broker"
)

// Transactional messages with the real Go client's TransactionProducer.
//
// The Go client v2.1.2 heartbeats 1 s after it starts and then every 30 s,
// and only to brokers it has a route for; the broker learns a producer's
// connection (where CHECK_TRANSACTION_STATE goes) from those heartbeats. A
// push consumer sharing the producer's client instance heartbeats when it
// starts, which is how these tests make the producer known promptly, as
// an application with a producer and a consumer in one client would.

// childTxnEnv, when set for TestChildBroker, is the check interval of the
// child broker (the timeout is twice it).
const childTxnEnv = "MQD_COMPAT_CHILD_TXN"

// txnListener decides by the ACTION property: "commit", "rollback", or
// "unknown-commit"/"unknown-rollback" (unknown first, then the check-back
// answer). before, if set, runs before a decision.
type txnListener struct {
	checks atomic.Int64
	before func(*primitive.Message)
}

func (l *txnListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	if l.before != nil {
		l.before(m)
	}
	switch m.GetProperty("ACTION") {
	case "commit":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (l *txnListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.checks.Add(1)
	if strings.HasSuffix(m.GetProperty("ACTION"), "rollback") {
		return primitive.RollbackMessageState
	}
	return primitive.CommitMessageState
}

func (c *cluster) txnProducer(inst string, l *txnListener) rocketmq.TransactionProducer {
	c.t.Helper()
	p, err := rocketmq.NewTransactionProducer(l, producer.WithNsResolver(c.resolver()),
		producer.WithGroupName("pg-txn"), producer.WithInstanceName(inst), producer.WithRetry(2), producerSendTimeout())
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.Shutdown() })
	return p
}

// txnConsumer starts a consumer of topic in client instance inst: its
// start heartbeats the producer group of the same instance.
func (c *cluster) txnConsumer(inst, group, topic string, r *received) {
	c.t.Helper()
	pc := c.pushConsumer(group, consumer.WithInstance(inst))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, r.listener()); err != nil {
		c.t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { pc.Shutdown() })
}

func sendTxn(t *testing.T, p rocketmq.TransactionProducer, topic, body, action string) {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	m.WithProperty("ACTION", action)
	m.WithKeys([]string{"key-" + body})
	if _, err := p.SendMessageInTransaction(context.Background(), m); err != nil {
		t.Fatalf("send %s: %v", body, err)
	}
}

// expectExactly waits until want distinct bodies arrived, then a little
// longer, and fails on anything delivered twice or not in want.
func expectExactly(t *testing.T, r *received, want map[string]bool, quiet time.Duration) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() bool { d, _ := r.count(); return d >= len(want) })
	time.Sleep(quiet)
	d, total := r.count()
	if d != len(want) || total != len(want) {
		t.Fatalf("%d distinct / %d deliveries, want exactly %d once each", d, total, len(want))
	}
	for body := range want {
		if r.get(body) == nil {
			t.Fatalf("%s not delivered", body)
		}
	}
}

func TestTransactionCommitRollbackAndCheckBack(t *testing.T) {
	c := startCluster(t, func(cfg *broker.Config) {
		cfg.TransactionCheckInterval, cfg.TransactionTimeOut = 300*time.Millisecond, time.Second
	})
	c.createTopic("TxnT", 4)
	inst := instance("txn")
	l := &txnListener{}
	p := c.txnProducer(inst, l)
	r := newReceived()
	c.txnConsumer(inst, "cg-txn", "TxnT", r)
	want := map[string]bool{}
	for i, action := range []string{"commit", "rollback", "unknown-commit", "unknown-rollback"} {
		for j := range 3 {
			body := fmt.Sprintf("%s-%d", action, j)
			sendTxn(t, p, "TxnT", body, action)
			if strings.HasSuffix(action, "commit") {
				want[body] = true
			}
		}
		_ = i
	}
	expectExactly(t, r, want, 2*time.Second)
	if n := l.checks.Load(); n < 6 {
		t.Fatalf("%d check-backs, want at least one per unknown transaction (6)", n)
	}
	m := r.get("commit-0")
	if m.GetKeys() != "key-commit-0" || m.GetProperty("ACTION") != "commit" || m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex) == "" {
		t.Fatalf("committed message lost its keys or properties: %v", m)
	}
}

// TestTransactionKillNineBetweenPrepareAndCommit kills the broker process
// while the producer runs its local transaction: the END_TRANSACTION that
// follows goes nowhere. After the restart the check-back commits the half
// message, and the transactions committed before the kill are not
// delivered again.
func TestTransactionKillNineBetweenPrepareAndCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Setenv(childTxnEnv, "300ms")
	nsPort, bPort := freePort(t), freePort(t)
	spec := fmt.Sprintf("%s;%d;%d", t.TempDir(), nsPort, bPort)
	child := startChild(t, spec)
	var once sync.Once
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	c := &cluster{t: t, nsAddr: fmt.Sprintf("127.0.0.1:%d", nsPort)}
	waitUntil(t, 10*time.Second, func() bool { return c.routed("TBW102") })
	inst := instance("txnkill")
	l := &txnListener{before: func(m *primitive.Message) {
		if m.GetProperty("KILL") == "" {
			return
		}
		once.Do(func() {
			child.Process.Signal(syscall.SIGKILL)
			child.Wait()
		})
	}}
	p := c.txnProducer(inst, l)
	sendTxn(t, p, "TxnKill", "before-0", "commit")
	sendTxn(t, p, "TxnKill", "before-1", "commit")
	m := primitive.NewMessage("TxnKill", []byte("in-flight"))
	m.WithProperty("ACTION", "commit")
	m.WithProperty("KILL", "1")
	if _, err := p.SendMessageInTransaction(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	child = startChild(t, spec)
	waitUntil(t, 10*time.Second, func() bool { return c.routed("TxnKill") })
	r := newReceived()
	c.txnConsumer(inst, "cg-txnkill", "TxnKill", r)
	expectExactly(t, r, map[string]bool{"before-0": true, "before-1": true, "in-flight": true}, 2*time.Second)
	if l.checks.Load() == 0 {
		t.Fatal("the in-flight transaction was resolved without a check-back")
	}
}
