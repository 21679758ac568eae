package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/mqd/mqd/internal/message"
)

// TestFailoverGoClient: the real Go client (rocketmq-client-go v2.1.2)
// sends SYNC to broker-a's master; the master is killed with SIGKILL; the
// client's sends fail until its route poll (30 s) finds the elected
// master, then continue. Every acknowledged message reads back at its
// offset on the new master.
func TestFailoverGoClient(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process failover")
	}
	rlog.SetLogLevel("fatal")
	c := newCluster(t, 3*time.Second)
	c.waitInSync(3, 30*time.Second)
	p, err := rocketmq.NewProducer(producer.WithNsResolver(primitive.NewPassthroughResolver(c.nsAddrs)),
		producer.WithGroupName("failover_go_pg"), producer.WithRetry(2), producer.WithSendMsgTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	acked := map[int64]string{}
	send := func(body string) error {
		res, err := p.SendSync(context.Background(), primitive.NewMessage("FT", []byte(body)))
		if err != nil {
			return err
		}
		if res.Status != primitive.SendOK {
			return fmt.Errorf("status %v", res.Status)
		}
		_, off, err := message.ParseOffsetMsgID(res.OffsetMsgID)
		if err != nil {
			return err
		}
		acked[off] = body
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; len(acked) < 50; i++ {
		if err := send(fmt.Sprintf("before-%d", i)); err != nil && time.Now().After(deadline) {
			t.Fatalf("Go client cannot send before the failover: %v", err)
		}
	}
	m := c.master()
	killed := time.Now()
	c.brokers[m].kill9()
	nm := c.waitMaster(m, 30*time.Second)
	routed := time.Since(killed)
	var resumed time.Duration
	for i := 0; ; i++ {
		if err := send(fmt.Sprintf("after-%d", i)); err == nil {
			resumed = time.Since(killed)
			break
		}
		if time.Since(killed) > 90*time.Second {
			t.Fatal("the Go client did not resume within 90 s of the failover")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		if err := send(fmt.Sprintf("later-%d", i)); err != nil {
			t.Fatalf("send after resuming: %v", err)
		}
	}
	for off, body := range acked {
		if got, err := readAt(c.bAddrs[nm], off); err != nil || got != body {
			t.Fatalf("acknowledged at %d: read %q (%v), want %q", off, got, err, body)
		}
	}
	t.Logf("master %d killed; new master %d routed after %v; the Go client resumed after %v; %d acknowledged, all verified",
		m, nm, routed, resumed, len(acked))
}
