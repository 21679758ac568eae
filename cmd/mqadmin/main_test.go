package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// mqadmin runs one command line against the cluster and returns its output.
func mqadmin(t *testing.T, c *mqd.Cluster, line string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(append(strings.Fields(line), "-n", c.NamesrvAddr()), &out, &errOut)
	return out.String(), err
}

// must runs line and checks that the output matches every pattern.
func must(t *testing.T, c *mqd.Cluster, line string, patterns ...string) string {
	t.Helper()
	out, err := mqadmin(t, c, line)
	if err != nil {
		t.Fatalf("mqadmin %s: %v\n%s", line, err, out)
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Fatalf("mqadmin %s: output lacks %q:\n%s", line, p, out)
		}
	}
	return out
}

// fails runs line and checks that it fails with an error matching pattern.
func fails(t *testing.T, c *mqd.Cluster, line, pattern string) {
	t.Helper()
	out, err := mqadmin(t, c, line)
	if err == nil || !regexp.MustCompile(pattern).MatchString(err.Error()) {
		t.Fatalf("mqadmin %s: err %v, want %q\n%s", line, err, pattern, out)
	}
}

// eventually runs line until its output matches every pattern (10 s): for
// what a send makes visible only once the broker dispatched it (consume
// queues and index follow the store asynchronously).
func eventually(t *testing.T, c *mqd.Cluster, line string, patterns ...string) {
	t.Helper()
	waitFor(t, "mqadmin "+line+" to show "+strings.Join(patterns, ", "), func() bool {
		out, err := mqadmin(t, c, line)
		if err != nil {
			return false
		}
		for _, p := range patterns {
			if !regexp.MustCompile(p).MatchString(out) {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestTopicAndClusterCommands(t *testing.T) {
	c, err := mqd.Start(mqd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must(t, c, "updateTopic -c DefaultCluster -t AdmT -r 2 -w 2", `create topic to 127\.0\.0\.1:\d+ success`, `readQueueNums=2`)
	waitFor(t, "route", func() bool { _, err := mqadmin(t, c, "topicRoute -t AdmT"); return err == nil })
	must(t, c, "topicRoute -t AdmT", `"brokerName": "broker-a"`, `"writeQueueNums": 2`)
	must(t, c, "topicList", `(?m)^AdmT$`)
	must(t, c, "topicList -c", `#Cluster Name`, `DefaultCluster\s+AdmT`)
	must(t, c, "topicClusterList -t AdmT", `(?m)^DefaultCluster$`)
	out := must(t, c, "sendMessage -t AdmT -p hello -k k1 -c tagA -i 1", `broker-a\s+1\s+SEND_OK\s+[0-9A-F]{32}`)
	uniq := regexp.MustCompile(`[0-9A-F]{32}`).FindString(out)
	eventually(t, c, "topicStatus -t AdmT", `#Min Offset`, `broker-a\s+0\s+0\s+0`, `broker-a\s+1\s+0\s+1\s+\d{4}-`)
	must(t, c, "queryMsgByUniqueKey -t AdmT -i "+uniq, `Message Body:\s+hello`, `Keys:\s+\[k1\]`)
	fails(t, c, "queryMsgByUniqueKey -t AdmT -i 0123456789ABCDEF0123456789ABCDEF", `no message with unique key`)
	out = must(t, c, "queryMsgByKey -t AdmT -k k1", `[0-9A-F]{32}\s+1\s+0`)
	id := regexp.MustCompile(`[0-9A-F]{32}`).FindString(out)
	must(t, c, "queryMsgById -i "+id, `Message Body:\s+hello`, `Tags:\s+\[tagA\]`)
	must(t, c, "queryMsgByOffset -t AdmT -b broker-a -i 1 -o 0", `Message Body:\s+hello`, `Keys:\s+\[k1\]`)
	must(t, c, "sendMessage -t AdmT -p second -c tagB -i 0", `SEND_OK`)
	eventually(t, c, "topicStatus -t AdmT", `broker-a\s+0\s+0\s+1\s+\d{4}-`)
	must(t, c, "consumeMessage -t AdmT", `(?s)queueId=0, queueOffset=0.*tags=tagB.*BODY: second.*queueId=1, queueOffset=0.*tags=tagA, keys=k1\] BODY: hello`)
	must(t, c, "consumeMessage -t AdmT -b broker-a -i 1 -c 1", `BODY: hello`)
	must(t, c, "printMsg -t AdmT -s tagA", `BODY: hello`)
	if out := must(t, c, "printMsg -t AdmT -s tagA"); strings.Contains(out, "second") {
		t.Fatalf("printMsg -s tagA printed tagB:\n%s", out)
	}
	must(t, c, "printMsgByQueue -t AdmT -a broker-a -i 0", `BODY: second`)
	must(t, c, "checkMsgSendRT -t AdmT -a 3 -s 16", `(?s)(AdmT\s+-\s+true\s+\d+\n){3}Avg RT: \d`)
	must(t, c, "clusterRT -a 2 -s 8", `#successCount`, `DefaultCluster\s+broker-a\s+\d+\.\d\d\s+2\s+0`)
	must(t, c, "allocateMQ -t AdmT -i c2,c1,c3", `c1\s+broker-a:0\n`, `c2\s+broker-a:1\n`, `c3\s+\n`)
	must(t, c, "updateTopicPerm -t AdmT -p 4", `update topic perm from 6 to 4`)
	fails(t, c, "sendMessage -t AdmT -p again", `no writable queue`)
	must(t, c, "clusterList", `#InTPS`, `DefaultCluster\s+broker-a\s+0\s+127\.0\.0\.1:\d+\s+V4_9_7`)
	must(t, c, "clusterList -m", `#InTotalToday`, `DefaultCluster\s+broker-a`)
	must(t, c, "brokerStatus -b "+c.BrokerAddr(), `(?m)^msgPutTotalTodayNow\s+: 7$`, `putTps\s+: `)
	must(t, c, "getBrokerConfig -c DefaultCluster", `=====127\.0\.0\.1`, `brokerName\s+=  broker-a`)
	must(t, c, "updateBrokerConfig -b "+c.BrokerAddr()+" -k maxMessageSize -v 2048", `update broker config success`)
	fails(t, c, "updateBrokerConfig -b "+c.BrokerAddr()+" -k bogusKey -v 1", `unknown or unsupported config keys: bogusKey`)
	must(t, c, "getNamesrvConfig", `============127\.0\.0\.1:\d+============`, `(?m)^listenPort\s+=  \d+$`, `orderMessageEnable\s+=  false`)
	must(t, c, "updateNamesrvConfig -k orderMessageEnable -v true", `update name server config success!\[127\.0\.0\.1:\d+\]\norderMessageEnable : true`)
	must(t, c, "getNamesrvConfig", `orderMessageEnable\s+=  true`)
	fails(t, c, "updateNamesrvConfig -k kvConfigPath -v /tmp/kv", `NO_PERMISSION.*Can not update config path`)
	must(t, c, "updateKvConfig -s ORDER_TOPIC_CONFIG -k AdmT -v broker-a:2", `update kv config in namespace success`)
	must(t, c, "deleteKvConfig -s ORDER_TOPIC_CONFIG -k AdmT", `delete kv config from namespace success`)
	must(t, c, "wipeWritePerm -b broker-a", `wipe write perm of broker\[broker-a\] in name server\[.*\] OK, \d+`)
	must(t, c, "addWritePerm -b broker-a", `add write perm of broker\[broker-a\]`)
	must(t, c, "deleteTopic -c DefaultCluster -t AdmT", `delete topic \[AdmT\] from cluster \[DefaultCluster\] success`,
		`from NameServer success`)
	fails(t, c, "topicRoute -t AdmT", `TOPIC_NOT_EXIST`)
	must(t, c, "cleanExpiredCQ -c DefaultCluster", `127\.0\.0\.1:\d+: success \(0 consume queue files removed\)`)
	must(t, c, "cleanUnusedTopic -b "+c.BrokerAddr(), `success \(0 unused topics cleaned\)`)
	fails(t, c, "updateTopic -t X", `one of -b .* or -c .* is required`)
	fails(t, c, "topicList -z", `unknown shorthand flag: 'z'`)
	fails(t, c, "brokerStatus -c NoSuchCluster", `cluster "NoSuchCluster" not found`)
}

// consumerConn registers a consumer of group on topic over a raw
// connection and answers GET_CONSUMER_STATUS_FROM_CLIENT.
func consumerConn(t *testing.T, c *mqd.Cluster, group, topic string) {
	t.Helper()
	mux := remoting.NewMux()
	mux.Handle(protocol.GetConsumerStatusFromClient, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.Body = []byte(`{"messageQueueTable":{{"brokerName":"broker-a","queueId":0,"topic":"` + topic + `"}:5}}`)
		return resp
	})
	mux.Handle(protocol.ResetConsumerClientOffset, func(context.Context, *remoting.Conn, *protocol.Command) *protocol.Command { return nil })
	rc, err := remoting.Dial(context.Background(), c.BrokerAddr(), remoting.ClientConfig{Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	hb := protocol.HeartbeatData{ClientID: "10.0.0.9@cli", ConsumerDataSet: []protocol.ConsumerData{{GroupName: group,
		ConsumeType: protocol.ConsumeTypePassively, MessageModel: protocol.MessageModelClustering,
		ConsumeFromWhere: protocol.ConsumeFromLastOffset, SubscriptionDataSet: []protocol.SubscriptionData{{Topic: topic,
			SubString: "*", ExpressionType: protocol.ExpressionTypeTag, TagsSet: []string{}, CodeSet: protocol.CodeSet{}}}}},
		ProducerDataSet: []protocol.ProducerData{{GroupName: "admPG"}}}
	body, err := hb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	req := protocol.NewRequest(protocol.HeartBeat, nil)
	req.Body = body
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := rc.Invoke(ctx, req); err != nil || resp.Code != 0 {
		t.Fatalf("heartbeat: %v %v", resp, err)
	}
	commit := protocol.NewRequest(protocol.UpdateConsumerOffset, &protocol.UpdateConsumerOffsetRequestHeader{
		ConsumerGroup: group, Topic: topic, QueueID: 0, CommitOffset: 1})
	if resp, err := rc.Invoke(ctx, commit); err != nil || resp.Code != 0 {
		t.Fatalf("commit: %v %v", resp, err)
	}
}

func TestGroupCommands(t *testing.T) {
	c, err := mqd.Start(mqd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic("AdmG", 1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		must(t, c, "sendMessage -t AdmG -p m", `SEND_OK`)
	}
	eventually(t, c, "topicStatus -t AdmG", `broker-a\s+0\s+0\s+3\s+\d{4}-`) // dispatched
	must(t, c, "updateSubGroup -c DefaultCluster -g admG -r 3", `create subscription group to 127\.0\.0\.1:\d+ success`,
		`"retryMaxTimes":3`)
	consumerConn(t, c, "admG", "AdmG")
	waitFor(t, "retry topic route", func() bool { _, err := mqadmin(t, c, "topicRoute -t %RETRY%admG"); return err == nil })
	must(t, c, "consumerConnection -g admG", `10\.0\.0\.9@cli\s+127\.0\.0\.1:\d+`, `Topic: AdmG\s+SubExpression: \*`,
		`MessageModel: CLUSTERING`)
	must(t, c, "producerConnection -g admPG -t AdmG", `0001\s+10\.0\.0\.9@cli`)
	must(t, c, "consumerStatus -g admG -t AdmG", `10\.0\.0\.9@cli\s+broker-a\s+0\s+5`)
	// "now" is after every message: the offset of the last one (search by
	// time never answers the max offset, as in Java).
	must(t, c, "resetOffsetByTime -g admG -t AdmG -s now", `rollback consumer offset`, `broker-a\s+0\s+2`)
	must(t, c, "consumerProgress -g admG", `AdmG\s+broker-a\s+0\s+3\s+2\s+1`, `Diff Total: 1`)
	must(t, c, "resetOffsetByTime -g admG -t AdmG -s 0", `broker-a\s+0\s+0`)
	must(t, c, "consumerProgress -g admG -t AdmG", `AdmG\s+broker-a\s+0\s+3\s+0\s+3`, `Diff Total: 3`)
	must(t, c, "statsAll", `#Accumulation`, `AdmG\s+admG\s+3\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\s+\d+`)
	must(t, c, "statsAll -t AdmG -a", `#InTPS`)
	must(t, c, "brokerConsumeStats -b "+c.BrokerAddr(), `AdmG\s+admG\s+broker-a\s+0\s+3\s+0\s+3`, `Diff Total: 3`)
	must(t, c, "brokerConsumeStats -o -b "+c.BrokerAddr(), `Diff Total: 0`)
	must(t, c, "cloneGroupOffset -s admG -d admG2 -t AdmG -o", `clone group offset success`)
	fails(t, c, "resetOffsetByTime -g admG -t AdmG -s yesterday", `want now, milliseconds`)
	fails(t, c, "consumerProgress", `-g group is required`)
	must(t, c, "deleteSubGroup -c DefaultCluster -g admG2", `delete subscription group \[admG2\] from broker`)
}
