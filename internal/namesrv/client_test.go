package namesrv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	rmqerrors "github.com/apache/rocketmq-client-go/v2/errors"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// TestGoClientResolvesRoutes drives the real rocketmq-client-go v2.1.2
// admin API against this nameserver: route resolution (its hand-rolled
// brokerAddrs splitter included), TOPIC_NOT_EXIST, the topic list and
// DELETE_TOPIC_IN_NAMESRV (via a stand-in broker that accepts
// DELETE_TOPIC_IN_BROKER).
func TestGoClientResolvesRoutes(t *testing.T) {
	rlog.SetLogLevel("fatal") // the unknown-topic case logs an expected error
	s := startNS(t, Config{})
	c := dialNS(t, s)

	// A stand-in broker for admin.DeleteTopic's first step.
	fake := remoting.NewServer(remoting.ServerConfig{Addr: "127.0.0.1:0", Logger: quietLogger})
	deleted := make(chan string, 1)
	fake.Handle(protocol.DeleteTopicInBroker, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		deleted <- req.Ext("topic")
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	})
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	defer fake.Close()

	a := with(brokerA, topic("GoT", 4, 4, 6), topic("ReadOnly", 4, 4, 4))
	a.addr = fake.Addr().String()
	slave := with(a)
	slave.id, slave.addr = 1, "127.0.0.1:1"
	register(t, c, a)
	register(t, c, slave)
	register(t, c, with(brokerB, topic("GoT", 2, 2, 6)))

	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{s.Addr()})))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()

	mqs, err := adm.FetchPublishMessageQueues(ctx, "GoT")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mq := range mqs {
		got = append(got, fmt.Sprintf("%s/%d", mq.BrokerName, mq.QueueId))
	}
	slices.Sort(got)
	want := []string{"broker-a/0", "broker-a/1", "broker-a/2", "broker-a/3", "broker-b/0", "broker-b/1"}
	if !slices.Equal(got, want) {
		t.Fatalf("publish queues %q, want %q", got, want)
	}
	if mqs, err := adm.FetchPublishMessageQueues(ctx, "ReadOnly"); err != nil || len(mqs) != 0 {
		t.Fatalf("read-only topic: %d queues, err %v", len(mqs), err)
	}
	if _, err := adm.FetchPublishMessageQueues(ctx, "NoSuchTopic"); !errors.Is(err, rmqerrors.ErrTopicNotExist) {
		t.Fatalf("unknown topic: err %v, want ErrTopicNotExist", err)
	}

	tl, err := adm.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tl.TopicList)
	if !slices.Equal(tl.TopicList, []string{"GoT", "ReadOnly"}) {
		t.Fatalf("topic list %q", tl.TopicList)
	}

	err = adm.DeleteTopic(ctx, admin.WithTopicDelete("ReadOnly"),
		admin.WithBrokerAddrDelete(a.addr), admin.WithNameSrvAddr([]string{s.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	if tp := <-deleted; tp != "ReadOnly" {
		t.Fatalf("broker asked to delete %q", tp)
	}
	if _, ok := s.TopicRoute("ReadOnly"); ok {
		t.Fatal("ReadOnly still routed after admin.DeleteTopic")
	}
}
