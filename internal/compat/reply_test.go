package compat

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestRequestReply: the Go client's Producer.Request sends a request with
// CORRELATION_ID and REPLY_TO_CLIENT; a consumer answers with
// consumer.CreateReplyMessage, which the Go client sends as
// SEND_REPLY_MESSAGE (324, long header names); mqd pushes it to the
// requester with PUSH_REPLY_MESSAGE_TO_CLIENT (326) and Request returns it.
func TestRequestReply(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("RequestReply", 2)
	replier := c.producer(producer.WithGroupName("pg-replier"), producerSendTimeout())
	var mu sync.Mutex
	var errs []error
	pc := c.pushConsumer("cg-rr")
	err := pc.Subscribe("RequestReply", consumer.MessageSelector{},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				// v2.1.2's CreateReplyMessage parses its body argument as
				// properties and leaves the body empty: set it afterwards.
				reply, err := consumer.CreateReplyMessage(m, nil)
				if err == nil {
					reply.Body = append([]byte("re:"), m.Body...)
					_, err = replier.SendSync(ctx, reply)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	requester := c.producer(producerSendTimeout())
	for i, body := range []string{"ping", "pong"} {
		// The first request may precede the consumer's rebalance; it is
		// consumed from the first offset once the consumer has its queues.
		reply, err := requester.Request(context.Background(), 20*time.Second, primitive.NewMessage("RequestReply", []byte(body)))
		if err != nil {
			mu.Lock()
			t.Fatalf("request %d: %v (replier errors: %v)", i, err, errs)
		}
		if string(reply.Body) != "re:"+body {
			t.Fatalf("request %d: reply %q", i, reply.Body)
		}
	}
}
