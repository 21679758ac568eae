package compat

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/broker"
)

// arrivals records when each body was delivered to a consumer.
type arrivals struct {
	mu    sync.Mutex
	times map[string][]time.Time
	total int
}

func newArrivals() *arrivals { return &arrivals{times: map[string][]time.Time{}} }

func (a *arrivals) listener(result consumer.ConsumeResult) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, m := range msgs {
			a.times[string(m.Body)] = append(a.times[string(m.Body)], now)
			a.total++
		}
		return result, nil
	}
}

// seen reports how many of bodies arrived at least once, and the
// duplicates (deliveries beyond the first) among them.
func (a *arrivals) seen(bodies []string) (distinct, dups int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range bodies {
		if n := len(a.times[b]); n > 0 {
			distinct++
			dups += n - 1
		}
	}
	return distinct, dups
}

func (a *arrivals) first(body string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ts := a.times[body]; len(ts) > 0 {
		return ts[0]
	}
	return time.Time{}
}

// startDelayConsumer subscribes group to topic and returns once a plain
// message sent to the topic has arrived, so later timings do not include
// the client's start-up and rebalance.
func startDelayConsumer(t *testing.T, c *cluster, topic, group string, a *arrivals, result consumer.ConsumeResult,
	opts ...consumer.Option) {
	t.Helper()
	pc := c.pushConsumer(group, opts...)
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, a.listener(result)); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })
	p := c.producer()
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("warm-up"))); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, func() bool { n, _ := a.seen([]string{"warm-up"}); return n == 1 })
}

// sendDelayed sends body with delay level to topic and returns when it was
// handed to the client (before the broker stored it).
func sendDelayed(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, body string, level int) time.Time {
	t.Helper()
	m := primitive.NewMessage(topic, []byte(body))
	m.WithDelayTimeLevel(level)
	m.WithTag("tag-" + body)
	m.WithKeys([]string{"key-" + body})
	m.WithProperty("user", "v-"+body)
	sent := time.Now()
	res, err := p.SendSync(context.Background(), m)
	if err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send %s: %v %v", body, res, err)
	}
	return sent
}

func TestDelayLevelsOneToThreeArriveOnTime(t *testing.T) {
	c := startCluster(t, nil) // Java's default levels: 1 s, 5 s, 10 s
	c.createTopic("DelayOnTime", 4)
	a := newArrivals()
	startDelayConsumer(t, c, "DelayOnTime", "cg-delay-ontime", a, consumer.ConsumeSuccess)
	p := c.producer()
	delays := map[int]time.Duration{1: time.Second, 2: 5 * time.Second, 3: 10 * time.Second}
	sent := map[string]time.Time{}
	level := map[string]int{}
	var bodies []string
	for i := range 30 {
		lv := 1 + i%3
		body := fmt.Sprintf("on-time-%d", i)
		sent[body], level[body] = sendDelayed(t, p, "DelayOnTime", body, lv), lv
		bodies = append(bodies, body)
	}
	waitUntil(t, 30*time.Second, func() bool { n, _ := a.seen(bodies); return n == len(bodies) })
	var worst time.Duration
	for _, b := range bodies {
		d := delays[level[b]]
		late := a.first(b).Sub(sent[b]) - d
		// The due time is the store timestamp (milliseconds, truncated)
		// plus the delay, as in Java, so a delivery may come up to 1 ms
		// before send time + delay.
		if late < -time.Millisecond || late > time.Second {
			t.Errorf("%s (level %d): arrived %v after send, want within [%v, %v]", b, level[b], a.first(b).Sub(sent[b]), d, d+time.Second)
		}
		worst = max(worst, late)
	}
	if _, dups := a.seen(bodies); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	t.Logf("30 messages on levels 1-3: worst lateness %v", worst)
}

func TestDelayRetryLaterFollowsLevelsThenDLQ(t *testing.T) {
	// level 3 + reconsumeTimes: retries 1, 2, 3 wait 1 s, 2 s, 3 s
	c := startCluster(t, func(cfg *broker.Config) {
		cfg.Store.DelayLevels, _ = engine.ParseDelayLevels("1s 1s 1s 2s 3s 3s")
	})
	c.createTopic("DelayRetry", 1)
	c.createTopic("%RETRY%cg-delay-retry", 1) // routed before the client starts: no 30 s route refresh to wait for
	a := newArrivals()
	startDelayConsumer(t, c, "DelayRetry", "cg-delay-retry", a, consumer.ConsumeRetryLater, consumer.WithMaxReconsumeTimes(3))
	// Wait until the warm-up message came back once: the retry queue is
	// then pulled.
	waitUntil(t, 60*time.Second, func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.times["warm-up"]) >= 2 })
	p := c.producer()
	bodies := []string{"retry-0", "retry-1", "retry-2"}
	for _, b := range bodies {
		sendDelayed(t, p, "DelayRetry", b, 0)
	}
	dlq := "%DLQ%cg-delay-retry"
	waitUntil(t, 40*time.Second, func() bool { return c.b.Store().MaxOffsetInQueue(dlq, 0) == int64(len(bodies))+1 })
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range bodies {
		ts := a.times[b]
		if len(ts) != 4 {
			t.Fatalf("%s delivered %d times, want 1 + 3 retries", b, len(ts))
		}
		for i, w := range want {
			// The due time is the send-back's store timestamp (milliseconds,
			// truncated) plus the delay, as in Java. A send-back stored within
			// a millisecond of the failed delivery can therefore come back up
			// to 1 ms before delivery + delay (CI, session 14: 999.76 ms).
			gap := ts[i+1].Sub(ts[i])
			if gap < w-time.Millisecond || gap > w+1500*time.Millisecond {
				t.Errorf("%s retry %d came %v after the failure, want %v (+ up to 1.5 s)", b, i+1, gap, w)
			}
		}
	}
}

func TestDelayedMessagesSurviveKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	nsPort, bPort := freePort(t), freePort(t)
	dir := t.TempDir()
	spec := fmt.Sprintf("%s;%d;%d", dir, nsPort, bPort)
	child := startChild(t, spec) // SYNC_FLUSH, Java's default levels
	c := &cluster{t: t, nsAddr: fmt.Sprintf("127.0.0.1:%d", nsPort)}
	waitUntil(t, 10*time.Second, func() bool { return c.routed("TBW102") })
	p := c.producer(producerSendTimeout())
	var early, late []string
	sent := map[string]time.Time{}
	for i := range 20 { // level 1 (1 s): delivered before the kill
		b := "early-" + strconv.Itoa(i)
		sent[b] = sendDelayed(t, p, "DelayCrash", b, 1)
		early = append(early, b)
	}
	for i := range 20 { // level 2 (5 s): still waiting when the broker dies
		b := "late-" + strconv.Itoa(i)
		sent[b] = sendDelayed(t, p, "DelayCrash", b, 2)
		late = append(late, b)
	}
	time.Sleep(2500 * time.Millisecond)
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	child = startChild(t, spec)
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	waitUntil(t, 10*time.Second, func() bool { return c.routed("DelayCrash") })
	a := newArrivals()
	pc := c.pushConsumer("cg-delay-crash")
	pc.Subscribe("DelayCrash", consumer.MessageSelector{}, a.listener(consumer.ConsumeSuccess))
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	all := append(append([]string{}, early...), late...)
	waitUntil(t, 40*time.Second, func() bool { n, _ := a.seen(all); return n == len(all) })
	time.Sleep(time.Second) // let duplicates, if any, arrive
	_, dups := a.seen(all)
	for _, b := range late {
		// The due time is the store timestamp (milliseconds, truncated)
		// plus the delay, as in Java: up to 1 ms before send time + delay.
		if got := a.first(b).Sub(sent[b]); got < 5*time.Second-time.Millisecond {
			t.Errorf("%s arrived %v after send, before its 5 s delay", b, got)
		}
	}
	t.Logf("40 scheduled messages across kill -9: all arrived, %d duplicates", dups)
}

// bulkCount is the bulk tests' message count: MQD_DELAY_BULK, else def.
func bulkCount(def int) int {
	if v, err := strconv.Atoi(os.Getenv("MQD_DELAY_BULK")); err == nil && v > 0 {
		return v
	}
	return def
}

// sendBulk sends build(0..n-1) from 16 goroutines and returns the bodies.
func sendBulk(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, n int, build func(i int) *primitive.Message) []string {
	t.Helper()
	bodies := make([]string, n)
	if n == 0 {
		return bodies
	}
	// Message 0 goes alone first: concurrent first sends of a fresh Go
	// client v2.1.2 producer race its route fetch and fail with "route info
	// not found" (seen in CI), a client quirk, not the broker's.
	m := build(0)
	if res, err := p.SendSync(context.Background(), m); err != nil || res.Status != primitive.SendOK {
		t.Fatalf("send 0: %v", err)
	}
	bodies[0] = string(m.Body)
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if i == 0 {
					continue
				}
				m := build(i)
				res, err := p.SendSync(context.Background(), m)
				if err != nil || res.Status != primitive.SendOK {
					t.Errorf("send %d: %v", i, err)
					return
				}
				bodies[i] = string(m.Body)
			}
		}()
	}
	wg.Wait()
	return bodies
}

// TestDelayBulk schedules many messages over short levels and checks each
// arrives at least once, reporting duplicates. With delay levels the due
// time is store time + level delay, so distinct due times come from
// distinct store milliseconds (TestTimerBulk has exactly 1,000).
// MQD_DELAY_BULK sets the count (CI: 20,000; the 100,000 with
// MQD_DELAY_BULK=100000).
func TestDelayBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk")
	}
	n := bulkCount(20000)
	c := startCluster(t, func(cfg *broker.Config) {
		cfg.Store.DelayLevels, _ = engine.ParseDelayLevels("1s 2s 3s 4s 5s")
		cfg.Store.MappedFileSizeCommitLog = 64 << 20
	})
	c.createTopic("DelayBulk", 8)
	a := newArrivals()
	startDelayConsumer(t, c, "DelayBulk", "cg-delay-bulk", a, consumer.ConsumeSuccess,
		consumer.WithConsumeGoroutineNums(8), consumer.WithPullBatchSize(32))
	p := c.producer(producerSendTimeout())
	start := time.Now()
	bodies := sendBulk(t, p, n, func(i int) *primitive.Message {
		m := primitive.NewMessage("DelayBulk", []byte("bulk-"+strconv.Itoa(i)))
		m.WithDelayTimeLevel(1 + i%5)
		return m
	})
	if t.Failed() {
		return
	}
	sendTime := time.Since(start)
	waitUntil(t, 120*time.Second, func() bool { got, _ := a.seen(bodies); return got == n })
	time.Sleep(500 * time.Millisecond)
	_, dups := a.seen(bodies)
	t.Logf("%d delay-level messages (sent in %v): all arrived, %d duplicates; broker: %d records in the topic",
		n, sendTime.Round(time.Millisecond), dups, topicRecords(c, "DelayBulk", 8)-1)
}

// TestTimerBulk schedules n timer messages (CI: 10,000; MQD_DELAY_BULK) over exactly 1,000 distinct due
// times (10 ms apart) and checks each arrives at least once and not
// early, reporting duplicates and lateness.
func TestTimerBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk")
	}
	n := bulkCount(10000)
	c := startCluster(t, func(cfg *broker.Config) { cfg.Store.MappedFileSizeCommitLog = 64 << 20 })
	c.createTopic("TimerBulk", 8)
	a := newArrivals()
	startDelayConsumer(t, c, "TimerBulk", "cg-timer-bulk", a, consumer.ConsumeSuccess,
		consumer.WithConsumeGoroutineNums(8), consumer.WithPullBatchSize(32))
	p := c.producer(producerSendTimeout())
	// Due times start after the sends (this machine: ~1,000 sends/s under load).
	base := time.Now().Add(3*time.Second + time.Duration(n)*time.Millisecond).UnixMilli()
	due := func(i int) int64 { return base + int64(i%1000)*10 }
	bodies := sendBulk(t, p, n, func(i int) *primitive.Message {
		m := primitive.NewMessage("TimerBulk", []byte("tbulk-"+strconv.Itoa(i)))
		m.WithProperty("TIMER_DELIVER_MS", strconv.FormatInt(due(i), 10))
		return m
	})
	if t.Failed() {
		return
	}
	if lateSend := time.Now().UnixMilli() - base; lateSend > 0 {
		t.Logf("sending ended %d ms after the first due time: the early ones were delivered at once", lateSend)
	}
	waitUntil(t, 120*time.Second, func() bool { got, _ := a.seen(bodies); return got == n })
	time.Sleep(500 * time.Millisecond)
	_, dups := a.seen(bodies)
	var worst time.Duration
	for i, b := range bodies {
		late := a.first(b).Sub(time.UnixMilli(due(i)))
		if late < 0 {
			t.Errorf("%s arrived %v early", b, -late)
		}
		worst = max(worst, late)
	}
	t.Logf("%d timer messages over 1000 distinct due times: all arrived, %d duplicates, worst lateness at the consumer %v; "+
		"broker: %d timer records, %d records in the topic (duplicates there mean a producer retry or a repeated delivery)",
		n, dups, worst, c.b.Store().MaxOffsetInQueue("rmq_sys_wheel_timer", 0), topicRecords(c, "TimerBulk", 8)-1)
}

func TestTimerArrivesOnTimeAndSurvivesKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	nsPort, bPort := freePort(t), freePort(t)
	spec := fmt.Sprintf("%s;%d;%d", t.TempDir(), nsPort, bPort)
	child := startChild(t, spec)
	c := &cluster{t: t, nsAddr: fmt.Sprintf("127.0.0.1:%d", nsPort)}
	waitUntil(t, 10*time.Second, func() bool { return c.routed("TBW102") })
	p := c.producer(producerSendTimeout())
	due := map[string]int64{}
	send := func(body, key, val string, at int64) {
		m := primitive.NewMessage("TimerCrash", []byte(body))
		m.WithProperty(key, val)
		m.WithKeys([]string{"k-" + body})
		if res, err := p.SendSync(context.Background(), m); err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %s: %v %v", body, res, err)
		}
		due[body] = at
	}
	now := time.Now().UnixMilli()
	for i := range 10 { // due before the kill
		send("early-"+strconv.Itoa(i), "TIMER_DELAY_MS", strconv.Itoa(500+50*i), now+500+50*int64(i))
	}
	for i := range 10 { // due while the broker is down, or after it is back
		at := now + 3000 + 300*int64(i)
		send("late-"+strconv.Itoa(i), "TIMER_DELIVER_MS", strconv.FormatInt(at, 10), at)
	}
	time.Sleep(2 * time.Second)
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	child = startChild(t, spec)
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	waitUntil(t, 10*time.Second, func() bool { return c.routed("TimerCrash") })
	a := newArrivals()
	pc := c.pushConsumer("cg-timer-crash")
	pc.Subscribe("TimerCrash", consumer.MessageSelector{}, a.listener(consumer.ConsumeSuccess))
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	var all []string
	for b := range due {
		all = append(all, b)
	}
	waitUntil(t, 40*time.Second, func() bool { n, _ := a.seen(all); return n == len(all) })
	time.Sleep(time.Second)
	_, dups := a.seen(all)
	for _, b := range all {
		if got := a.first(b).UnixMilli(); got < due[b] {
			t.Errorf("%s arrived %d ms early", b, due[b]-got)
		}
	}
	t.Logf("20 timer messages across kill -9: all arrived, %d duplicates", dups)
}

func TestTimerArrivesOnTime(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("TimerOnTime", 4)
	a := newArrivals()
	startDelayConsumer(t, c, "TimerOnTime", "cg-timer-ontime", a, consumer.ConsumeSuccess)
	p := c.producer()
	due := map[string]time.Time{}
	var bodies []string
	for i := range 30 {
		body := "timer-" + strconv.Itoa(i)
		m := primitive.NewMessage("TimerOnTime", []byte(body))
		d := time.Duration(300+97*i) * time.Millisecond
		switch i % 3 {
		case 0:
			m.WithProperty("TIMER_DELAY_MS", strconv.FormatInt(d.Milliseconds(), 10))
		case 1:
			m.WithProperty("TIMER_DELIVER_MS", strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10))
		default:
			d = time.Duration(1+i%2) * time.Second
			m.WithProperty("TIMER_DELAY_SEC", strconv.Itoa(int(d/time.Second)))
		}
		due[body] = time.Now().Add(d)
		if res, err := p.SendSync(context.Background(), m); err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send: %v %v", res, err)
		}
		bodies = append(bodies, body)
	}
	waitUntil(t, 20*time.Second, func() bool { n, _ := a.seen(bodies); return n == len(bodies) })
	var worst time.Duration
	for _, b := range bodies {
		late := a.first(b).Sub(due[b])
		if late < -5*time.Millisecond || late > time.Second { // -5 ms: due[b] is taken just after the client's clock read
			t.Errorf("%s: %v from its due time", b, late)
		}
		worst = max(worst, late)
	}
	t.Logf("30 timer messages: worst lateness at the consumer %v", worst)
}

// topicRecords counts the records stored in topic's queues.
func topicRecords(c *cluster, topic string, queues int32) int64 {
	var n int64
	for q := range queues {
		n += c.b.Store().MaxOffsetInQueue(topic, q)
	}
	return n
}
