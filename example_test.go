package mqd_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/mqd/mqd"
)

// A test starts a broker, sends with rocketmq-client-go and receives the
// message back with a push consumer.
func Example() {
	rlog.SetLogLevel("error")
	c, err := mqd.Start(mqd.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic("Orders", 1); err != nil {
		log.Fatal(err)
	}
	ns := primitive.NewPassthroughResolver([]string{c.NamesrvAddr()})

	p, err := rocketmq.NewProducer(producer.WithNsResolver(ns), producer.WithGroupName("example-pg"),
		producer.WithInstanceName("example-p"))
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	res, err := p.SendSync(context.Background(), primitive.NewMessage("Orders", []byte("order 1")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("send:", res.Status == primitive.SendOK)

	got := make(chan string, 1)
	pc, err := rocketmq.NewPushConsumer(consumer.WithNsResolver(ns), consumer.WithGroupName("example-cg"),
		consumer.WithInstance("example-c"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		log.Fatal(err)
	}
	err = pc.Subscribe("Orders", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			select {
			case got <- string(m.Body):
			default:
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		log.Fatal(err)
	}
	defer pc.Shutdown()
	select {
	case body := <-got:
		fmt.Println("received:", body)
	case <-time.After(30 * time.Second):
		fmt.Println("nothing received")
	}
	// Output:
	// send: true
	// received: order 1
}
