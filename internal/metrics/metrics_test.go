package metrics

import (
	"context"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func TestScrapeAfterTraffic(t *testing.T) {
	b := startBroker(t, func(*broker.Config) {}) // ha_test.go
	c, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := func(req *protocol.Command) *protocol.Command {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.Invoke(ctx, req)
		if err != nil || resp.Code != protocol.ResponseSuccess {
			t.Fatalf("%v %v", resp, err)
		}
		return resp
	}
	for i := 0; i < 4; i++ { // 4 messages of 10 bytes
		req := protocol.NewRequest(protocol.SendMessage, &protocol.SendMessageRequestHeader{ProducerGroup: "pg",
			Topic: "MetT", DefaultTopic: "TBW102", DefaultTopicQueueNums: 1, QueueID: 0, BornTimestamp: 1})
		req.Body = []byte("0123456789")
		call(req)
	}
	hb := protocol.HeartbeatData{ClientID: "c1", ConsumerDataSet: []protocol.ConsumerData{{GroupName: "mg",
		ConsumeType: protocol.ConsumeTypePassively, MessageModel: protocol.MessageModelClustering,
		ConsumeFromWhere: protocol.ConsumeFromLastOffset, SubscriptionDataSet: []protocol.SubscriptionData{{Topic: "MetT",
			SubString: "*", ExpressionType: protocol.ExpressionTypeTag, TagsSet: []string{}, CodeSet: protocol.CodeSet{}}}}}}
	req := protocol.NewRequest(protocol.HeartBeat, nil)
	if req.Body, err = hb.Encode(); err != nil {
		t.Fatal(err)
	}
	call(req)
	for b.Store().MaxOffsetInQueue("MetT", 0) < 4 {
		time.Sleep(time.Millisecond)
	}
	call(protocol.NewRequest(protocol.PullMessage, &protocol.PullMessageRequestHeader{ConsumerGroup: "mg", Topic: "MetT",
		QueueID: 0, QueueOffset: 0, MaxMsgNums: 3, ExpressionType: protocol.ExpressionTypeTag}))
	call(protocol.NewRequest(protocol.UpdateConsumerOffset, &protocol.UpdateConsumerOffsetRequestHeader{
		ConsumerGroup: "mg", Topic: "MetT", QueueID: 0, CommitOffset: 3}))

	rec := httptest.NewRecorder()
	Handler(b).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	l := `\{broker="broker-a",cluster="DefaultCluster",`
	for _, want := range []string{
		`rocketmq_producer_message_total` + l + `topic="MetT"\} 4\n`,
		`rocketmq_producer_put_size_bytes_total` + l + `topic="MetT"\} 40\n`,
		`rocketmq_consumer_message_total` + l + `group="mg",topic="MetT"\} 3\n`,
		`rocketmq_consumer_get_size_bytes_total` + l + `group="mg",topic="MetT"\} \d{3}\n`,
		`rocketmq_group_diff` + l + `group="mg",queueid="0",topic="MetT"\} 1\n`,
		`mqd_send_latency_seconds_count\{broker="broker-a",cluster="DefaultCluster"\} 4\n`,
		`mqd_flush_latency_seconds_count\{broker="broker-a",cluster="DefaultCluster"\} [1-9]`,
		`mqd_group_commit_waiters_total\{broker="broker-a",cluster="DefaultCluster"\} [4-9]`,
		`mqd_group_commit_bytes_total\{broker="broker-a",cluster="DefaultCluster"\} [1-9]`,
		`rocketmq_brokeruntime_dispatch_behind_bytes\{broker="broker-a",cluster="DefaultCluster"\} 0\n`,
		`rocketmq_brokeruntime_commitlog_disk_ratio\{broker="broker-a",cluster="DefaultCluster"\} 0\.\d+`,
		`mqd_connections\{broker="broker-a",cluster="DefaultCluster"\} 1\n`,
		`mqd_parked_pulls\{broker="broker-a",cluster="DefaultCluster"\} 0\n`,
		`go_goroutines `,
	} {
		if !regexp.MustCompile(want).MatchString(body) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	// Every series the Grafana dashboard queries is exported.
	dash, err := os.ReadFile("../../deploy/grafana/mqd.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`\b(?:rocketmq|mqd)_[a-z_]+`).FindAllString(string(dash), -1) {
		if strings.HasPrefix(name, "mqd_ha_") {
			continue // replication series: TestScrapeReplication
		}
		if !strings.Contains(body, "\n"+name+"{") {
			t.Errorf("dashboard queries %s, which is not exported", name)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
