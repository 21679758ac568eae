package compat

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqd/mqd"
	"github.com/mqd/mqd/internal/admin"
)

// TestOperatorRequestsWithGoClient runs the embeddable broker (root
// package) with the real Go client and drives the admin requests whose
// answers come from live clients: consume progress after the client
// committed, consumer status (221 answered by the client), and an offset
// reset the broker relays to the push consumer (220), which then
// re-consumes from the new offset.
func TestOperatorRequestsWithGoClient(t *testing.T) {
	c, err := mqd.Start(mqd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic("OpsGo", 1); err != nil {
		t.Fatal(err)
	}
	ns := primitive.NewPassthroughResolver([]string{c.NamesrvAddr()})
	p, err := rocketmq.NewProducer(producer.WithNsResolver(ns), producer.WithGroupName("ops-pg"),
		producer.WithInstanceName(instance("p")))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for i := 0; i < 5; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("OpsGo", []byte("m"))); err != nil {
			t.Fatal(err)
		}
	}
	var got atomic.Int64
	pc, err := rocketmq.NewPushConsumer(consumer.WithNsResolver(ns), consumer.WithGroupName("ops-cg"),
		consumer.WithInstance(instance("c")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	err = pc.Subscribe("OpsGo", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		got.Add(int64(len(msgs)))
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	waitUntil(t, 30*time.Second, func() bool { return got.Load() >= 5 })

	run := func(f func(a *admin.Admin) error) string {
		var out bytes.Buffer
		a := admin.New([]string{c.NamesrvAddr()}, &out)
		defer a.Close()
		if err := f(a); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return out.String()
	}
	// The Go client commits every 5 s.
	waitUntil(t, 20*time.Second, func() bool {
		out := run(func(a *admin.Admin) error { return a.ConsumerProgress("ops-cg", "") })
		return regexp.MustCompile(`OpsGo\s+broker-a\s+0\s+5\s+5\s+0`).MatchString(out)
	})
	if out := run(func(a *admin.Admin) error { return a.ConsumerStatus("ops-cg", "OpsGo") }); !regexp.MustCompile(`broker-a\s+0\s+5`).MatchString(out) {
		t.Fatalf("consumer status from the Go client:\n%s", out)
	}
	if out := run(func(a *admin.Admin) error { return a.ConsumerConnection("ops-cg") }); !strings.Contains(out, "Topic: OpsGo") {
		t.Fatalf("consumer connection:\n%s", out)
	}
	before := got.Load()
	out := run(func(a *admin.Admin) error { return a.ResetOffsetByTime("ops-cg", "OpsGo", 0, true) })
	if !regexp.MustCompile(`broker-a\s+0\s+0`).MatchString(out) {
		t.Fatalf("reset:\n%s", out)
	}
	// The client received RESET_CONSUMER_CLIENT_OFFSET and consumes all 5 again.
	waitUntil(t, 30*time.Second, func() bool { return got.Load() >= before+5 })
}
