package compat

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestMixedClusterGoClients is the Go-client half of compat/java's
// MixedClusterTest (mvn ... test -Pmixed), which starts an Apache RocketMQ
// 4.9.7 namesrv and broker beside mqd and runs this test against them with
//
//	MQD_MIXED_NAMESRV  both nameservers, host:port;host:port
//	MQD_MIXED_TOPIC    a topic with queues on both brokers
//	MQD_MIXED_BODIES   bodies the Java producer already stored there, comma-separated
//
// The Go producer must reach both brokers, and a Go push consumer must read
// the Java client's messages and its own from both. Without the variables
// there is no mixed cluster to talk to, and the test says so and skips.
func TestMixedClusterGoClients(t *testing.T) {
	nsList, topic := os.Getenv("MQD_MIXED_NAMESRV"), os.Getenv("MQD_MIXED_TOPIC")
	if nsList == "" || topic == "" {
		t.Skip("needs a mixed cluster: run by compat/java MixedClusterTest (mvn -f compat/java/pom.xml test -Pmixed)")
	}
	resolver := primitive.NewPassthroughResolver(strings.Split(nsList, ";"))
	want := map[string]bool{}
	for _, b := range strings.Split(os.Getenv("MQD_MIXED_BODIES"), ",") {
		if b != "" {
			want[b] = true
		}
	}

	p, err := rocketmq.NewProducer(producer.WithNsResolver(resolver), producer.WithGroupName("mixed_go_pg"),
		producer.WithInstanceName(instance("p")), producer.WithRetry(2), producerSendTimeout())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	sentTo := map[string]int{}
	for i := range 20 {
		body := fmt.Sprintf("go%d", i)
		r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %s: %v %v", body, r, err)
		}
		sentTo[r.MessageQueue.BrokerName]++
		want[body] = true
	}
	if len(sentTo) != 2 {
		t.Fatalf("Go producer's sends per broker: %v, want both brokers", sentTo)
	}

	got := newReceived()
	c, err := rocketmq.NewPushConsumer(consumer.WithNsResolver(resolver), consumer.WithGroupName("mixed_go_cg"),
		consumer.WithInstance(instance("c")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, got.listener()); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	missing := func() []string {
		var m []string
		for b := range want {
			if got.get(b) == nil {
				m = append(m, b)
			}
		}
		return m
	}
	deadline := time.Now().Add(40 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("Go consumer missed %d of %d messages, e.g. %v", len(m), len(want), m[:min(5, len(m))])
	}
	hosts := map[string]int{}
	for b := range want {
		hosts[got.get(b).StoreHost]++
	}
	if len(hosts) != 2 {
		t.Fatalf("Go consumer read from store hosts %v, want both brokers", hosts)
	}
}
