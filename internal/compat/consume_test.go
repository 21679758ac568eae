package compat

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/mqd/mqd/internal/broker"
)

// orderSelector sends every message of an order to queue orderId % queues.
type orderSelector struct{}

func (orderSelector) Select(m *primitive.Message, mqs []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	id, _ := strconv.Atoi(m.GetProperty("ORDER_ID"))
	return mqs[id%len(mqs)]
}

func TestOrderedMessagesTwoOrderlyConsumers(t *testing.T) {
	// The Go client v2.1.2 never unlocks a queue it gives up in a rebalance
	// ("TODO orderly" in removeUnnecessaryMessageQueue), so the new owner
	// gets it only when the old lock expires at the broker: 60 s by
	// default (rocketmq.broker.rebalance.lockMaxLiveTime), shortened here.
	c := startCluster(t, func(cfg *broker.Config) { cfg.LockMaxLiveTime = 3 * time.Second })
	c.createTopic("Orders", 4)
	var mu sync.Mutex
	steps := map[int][]int{} // order → steps in arrival order
	seen := map[string]int{}
	listener := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			o, _ := strconv.Atoi(m.GetProperty("ORDER_ID"))
			s, _ := strconv.Atoi(m.GetProperty("STEP"))
			steps[o] = append(steps[o], s)
			seen[string(m.Body)]++
		}
		return consumer.ConsumeSuccess, nil
	}
	for i := 0; i < 2; i++ {
		pc := c.pushConsumer("cg-orders", consumer.WithConsumerOrder(true), consumer.WithRebalanceLockInterval(time.Second))
		if err := pc.Subscribe("Orders", consumer.MessageSelector{}, listener); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		defer pc.Shutdown()
	}
	time.Sleep(2 * time.Second) // both members rebalanced and locked their queues
	p := c.producer(producer.WithQueueSelector(orderSelector{}))
	for step := 0; step < 5; step++ {
		for order := 0; order < 3; order++ {
			m := primitive.NewMessage("Orders", []byte(fmt.Sprintf("o%d-s%d", order, step)))
			m.WithProperty("ORDER_ID", strconv.Itoa(order))
			m.WithProperty("STEP", strconv.Itoa(step))
			if _, err := p.SendSync(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 15
	})
	time.Sleep(500 * time.Millisecond) // let duplicates, if any, arrive
	mu.Lock()
	defer mu.Unlock()
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s consumed %d times", body, n)
		}
	}
	for o := 0; o < 3; o++ {
		for i, s := range steps[o] {
			if s != i {
				t.Fatalf("order %d arrived as %v", o, steps[o])
			}
		}
	}
}

func TestClusteringSplitsAndBroadcastingCopies(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Split", 4)
	a, b := newReceived(), newReceived()
	for _, r := range []*received{a, b} {
		pc := c.pushConsumer("cg-split")
		pc.Subscribe("Split", consumer.MessageSelector{}, r.listener())
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		defer pc.Shutdown()
	}
	ba, bb := newReceived(), newReceived()
	for _, r := range []*received{ba, bb} {
		pc := c.pushConsumer("cg-broadcast", consumer.WithConsumerModel(consumer.BroadCasting))
		pc.Subscribe("Split", consumer.MessageSelector{}, r.listener())
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		defer pc.Shutdown()
	}
	time.Sleep(2 * time.Second)
	p := c.producer()
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("Split", []byte(fmt.Sprintf("m%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 30*time.Second, func() bool {
		na, _ := a.count()
		nb, _ := b.count()
		x, _ := ba.count()
		y, _ := bb.count()
		return na+nb >= n && x == n && y == n
	})
	na, _ := a.count()
	nb, _ := b.count()
	if na == 0 || nb == 0 {
		t.Fatalf("clustering did not split: %d / %d", na, nb)
	}
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("m%d", i)
		if a.get(body) == nil && b.get(body) == nil {
			t.Fatalf("%s lost", body)
		}
	}
}

func TestOneConsumerFiftyTopics(t *testing.T) {
	c := startCluster(t, nil)
	const topics = 50
	for i := 0; i < topics; i++ {
		c.createTopic(fmt.Sprintf("Many%02d", i), 2)
	}
	got := newReceived()
	pc := c.pushConsumer("cg-many")
	for i := 0; i < topics; i++ {
		if err := pc.Subscribe(fmt.Sprintf("Many%02d", i), consumer.MessageSelector{}, got.listener()); err != nil {
			t.Fatal(err)
		}
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	p := c.producer()
	for i := 0; i < topics; i++ {
		for j := 0; j < 4; j++ {
			m := primitive.NewMessage(fmt.Sprintf("Many%02d", i), []byte(fmt.Sprintf("t%d-m%d", i, j)))
			if _, err := p.SendSync(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, 40*time.Second, func() bool { n, _ := got.count(); return n == topics*4 })
}

func TestLongPollingDeliversPromptly(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Idle", 1)
	arrived := make(chan time.Time, 16)
	pc := c.pushConsumer("cg-idle")
	pc.Subscribe("Idle", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for range msgs {
			arrived <- time.Now()
		}
		return consumer.ConsumeSuccess, nil
	})
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	p := c.producer()
	time.Sleep(3 * time.Second) // the consumer is parked in a long poll by now
	var worst time.Duration
	for i := 0; i < 5; i++ {
		sent := time.Now()
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("Idle", []byte(strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-arrived:
			worst = max(worst, at.Sub(sent))
		case <-time.After(woken):
			t.Fatalf("message not delivered to an idle consumer within %v: the parked pull was not woken by the arrival", woken)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("worst send-to-delivery latency for an idle consumer: %v", worst)
}

// clientSuspend is how long the Go client asks the broker to hold an empty
// pull (SuspendTimeoutMillis, 20 s). A parked pull that the arrival does
// not wake is answered only then, so delivery within a quarter of it
// tells the two apart also on a loaded machine, where an absolute bound of
// a few hundred milliseconds does not (latency is measured in
// BENCHMARKS.md, not here).
const clientSuspend = 20 * time.Second

const woken = clientSuspend / 4

func TestRetryLaterRedeliversThroughRetryTopic(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Retry", 2)
	var mu sync.Mutex
	deliveries := map[string][]int32{} // body → reconsume times seen
	topics := map[string]string{}
	pc := c.pushConsumer("cg-retry")
	pc.Subscribe("Retry", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		first := false
		for _, m := range msgs {
			deliveries[string(m.Body)] = append(deliveries[string(m.Body)], m.ReconsumeTimes)
			topics[string(m.Body)] = m.Topic
			first = first || m.ReconsumeTimes == 0
		}
		if first {
			return consumer.ConsumeRetryLater, nil // fail every first delivery
		}
		return consumer.ConsumeSuccess, nil
	})
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	p := c.producer()
	for i := 0; i < 5; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("Retry", []byte(fmt.Sprintf("r%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 40*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		done := 0
		for _, d := range deliveries {
			if len(d) >= 2 {
				done++
			}
		}
		return done == 5
	})
	mu.Lock()
	defer mu.Unlock()
	for body, d := range deliveries {
		if d[0] != 0 || d[1] != 1 || topics[body] != "Retry" {
			t.Fatalf("%s: reconsume times %v, topic %q", body, d, topics[body])
		}
	}
}
