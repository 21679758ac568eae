package compat

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// rawPull sends a PULL_MESSAGE with the subscription in the request and
// returns the broker's answer as the client would receive it, before any
// client-side filtering.
func rawPull(t *testing.T, c *cluster, topic, expr string, offset int64, suspend time.Duration) (*protocol.Command, time.Duration) {
	t.Helper()
	cl, err := remoting.Dial(context.Background(), c.b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	flag := protocol.PullFlagSubscription
	if suspend > 0 {
		flag |= protocol.PullFlagSuspend
	}
	h := &protocol.PullMessageRequestHeader{ConsumerGroup: "cg-raw", Topic: topic, QueueID: 0, QueueOffset: offset,
		MaxMsgNums: 32, SysFlag: flag, SuspendTimeoutMillis: suspend.Milliseconds(), Subscription: expr, ExpressionType: "TAG"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := cl.Invoke(ctx, protocol.NewRequest(protocol.PullMessage, h))
	if err != nil {
		t.Fatal(err)
	}
	return resp, time.Since(start)
}

func TestBrokerFiltersByTag(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Tags", 1)
	p := c.producer()
	for i := 0; i < 30; i++ {
		tag := []string{"A", "B", "标签"}[i%3]
		m := primitive.NewMessage("Tags", []byte(strconv.Itoa(i))).WithTag(tag)
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	// SEND_OK means stored, not yet in the consume queue: the dispatcher
	// follows the log asynchronously (as Java's ReputMessageService does).
	// A pull right after the last send could see only the first entries.
	waitUntil(t, 10*time.Second, func() bool { return c.b.Store().MaxOffsetInQueue("Tags", 0) == 30 })
	for _, tc := range []struct {
		expr string
		want int
	}{{"A", 10}, {"A || 标签", 20}, {"*", 30}, {"C", 0}} {
		resp, _ := rawPull(t, c, "Tags", tc.expr, 0, 0)
		msgs := primitive.DecodeMessage(resp.Body)
		if len(msgs) != tc.want {
			t.Fatalf("%q: %d messages in the raw pull, want %d (code %d)", tc.expr, len(msgs), tc.want, resp.Code)
		}
		for _, m := range msgs {
			if tc.expr != "*" && tc.expr != "A || 标签" && m.GetTags() != tc.expr {
				t.Fatalf("%q: got a message tagged %q", tc.expr, m.GetTags())
			}
		}
		if tc.want == 0 && resp.Code != protocol.ResponsePullRetryImmediately {
			t.Fatalf("nothing matched: code %d, want 20", resp.Code)
		}
		if resp.Ext("nextBeginOffset") != "30" {
			t.Fatalf("%q: nextBeginOffset %q", tc.expr, resp.Ext("nextBeginOffset"))
		}
	}
}

func TestEmptyPullIsHeld(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Empty", 1)
	resp, took := rawPull(t, c, "Empty", "*", 0, time.Second)
	if resp.Code != protocol.ResponsePullNotFound {
		t.Fatalf("code %d", resp.Code)
	}
	if took < 800*time.Millisecond {
		t.Fatalf("empty pull answered after %v; a long poll should be held ~1 s", took)
	}
	for _, k := range []string{"suggestWhichBrokerId", "nextBeginOffset", "minOffset", "maxOffset"} {
		if resp.Ext(k) == "" {
			t.Fatalf("pull reply lacks %s", k)
		}
	}
}

// committedOffsets sums the group's committed offsets over queues 0..n-1.
func (c *cluster) committedOffsets(t *testing.T, group, topic string, n int) int {
	cl, err := remoting.Dial(context.Background(), c.b.Addr(), remoting.ClientConfig{})
	if err != nil {
		return -1
	}
	defer cl.Close()
	sum := 0
	for q := 0; q < n; q++ {
		req := protocol.NewRequest(protocol.QueryConsumerOffset, nil)
		req.SetExt("consumerGroup", group)
		req.SetExt("topic", topic)
		req.SetExt("queueId", strconv.Itoa(q))
		resp, err := cl.Invoke(context.Background(), req)
		if err != nil || resp.Code != protocol.ResponseSuccess {
			return -1
		}
		off, _ := strconv.Atoi(resp.Ext("offset"))
		sum += off
	}
	return sum
}

func TestOffsetsSurviveConsumerAndBrokerRestart(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Resume", 2)
	p := c.producer()
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := p.SendSync(context.Background(), primitive.NewMessage("Resume", []byte(strconv.Itoa(i)))); err != nil {
				t.Fatal(err)
			}
		}
	}
	committed := 0
	consume := func(want int) *received {
		got := newReceived()
		pc := c.pushConsumer("cg-resume")
		pc.Subscribe("Resume", consumer.MessageSelector{}, got.listener())
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, func() bool { n, _ := got.count(); return n >= want })
		// Wait until the broker holds the consumer's offsets: the client
		// commits them every 5 s (after 10 s). Its final commit at
		// Shutdown is a oneway send that v2.1.2 sometimes loses as it
		// closes its connections, which is the client's doing.
		committed += want
		waitUntil(t, 30*time.Second, func() bool { return c.committedOffsets(t, "cg-resume", "Resume", 2) == committed })
		pc.Shutdown()
		return got
	}
	send(0, 20)
	first := consume(20)
	send(20, 30)
	second := consume(10) // a restarted consumer resumes, it does not start over
	if n, _ := second.count(); n != 10 || second.get("5") != nil {
		t.Fatalf("after a consumer restart got %d messages (old ones again: %v)", n, second.get("5") != nil)
	}
	c.restartBroker()
	if got := c.committedOffsets(t, "cg-resume", "Resume", 2); got != 30 {
		t.Fatalf("after a broker restart the committed offsets add up to %d, want 30", got)
	}
	send(30, 40)
	third := consume(10)
	if n, _ := third.count(); n != 10 || third.get("25") != nil {
		t.Fatalf("after a broker restart got %d messages", n)
	}
	_ = first
}
