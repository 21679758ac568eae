package compat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// The ACL tests run the real Go client, signing with its own ACL hook
// (primitive.Credentials), against a broker with aclEnable. Clients
// connect from 127.0.0.1, which no pattern below white-lists.
const aclFile = `
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: fullAccount
    secretKey: full-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - AclTopic=PUB|SUB
  - accessKey: pubOnlyAccount
    secretKey: pub-secret
    defaultTopicPerm: PUB
    defaultGroupPerm: PUB
  - accessKey: adminAccount
    secretKey: admin-secret
    admin: true
`

var (
	fullCreds    = primitive.Credentials{AccessKey: "fullAccount", SecretKey: "full-secret"}
	pubOnlyCreds = primitive.Credentials{AccessKey: "pubOnlyAccount", SecretKey: "pub-secret"}
	adminCreds   = primitive.Credentials{AccessKey: "adminAccount", SecretKey: "admin-secret"}
)

// startACLCluster starts a cluster whose broker checks requests against
// the given plain_acl.yml, reloading it every 50 ms.
func startACLCluster(t *testing.T, file string) (*cluster, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, func(cfg *broker.Config) {
		cfg.ACL = broker.ACLConfig{Enable: true, File: path, ReloadInterval: 50 * time.Millisecond}
	})
	return c, path
}

// startACLClusterWithTopic starts an ACL cluster and creates topic (two
// queues) as the admin account.
func startACLClusterWithTopic(t *testing.T, topic string) (*cluster, string) {
	t.Helper()
	c, path := startACLCluster(t, aclFile)
	c.aclCreateTopic(c.aclAdmin(adminCreds), topic)
	waitUntil(t, 10*time.Second, func() bool { return c.routed(topic) })
	return c, path
}

// sendN sends n messages m0..m<n-1> and fails on any error.
func sendN(t *testing.T, p rocketmq.Producer, topic string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("m%d", i))))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %d to %s: %v %v", i, topic, err, res)
		}
	}
}

// aclAdmin is the Go client's admin API signing with creds. The client
// registers its ACL hook only on some admin calls (GetAllSubscriptionGroup
// is one), so one is made first; later calls are signed.
func (c *cluster) aclAdmin(creds primitive.Credentials) admin.Admin {
	c.t.Helper()
	a, err := admin.NewAdmin(admin.WithResolver(c.resolver()), admin.WithCredentials(creds))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { a.Close() })
	if _, err := a.GetAllSubscriptionGroup(context.Background(), c.b.Addr(), 3*time.Second); err != nil {
		c.t.Fatalf("signed GET_ALL_SUBSCRIPTIONGROUP_CONFIG: %v", err)
	}
	return a
}

func (c *cluster) aclCreateTopic(a admin.Admin, topic string) error {
	return a.CreateTopic(context.Background(), admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(c.b.Addr()),
		admin.WithReadQueueNums(2), admin.WithWriteQueueNums(2))
}

// aclConsume starts a push consumer signing with creds, shut down at
// cleanup, and returns what it receives.
func (c *cluster) aclConsume(group, topic string, creds primitive.Credentials) *received {
	c.t.Helper()
	got := newReceived()
	pc := c.pushConsumer(group, consumer.WithCredentials(creds))
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, got.listener()); err != nil {
		c.t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { pc.Shutdown() })
	return got
}

// invokeRaw sends req to the broker with mqd's own client (unsigned unless
// the caller signed it).
func (c *cluster) invokeRaw(req *protocol.Command) *protocol.Command {
	c.t.Helper()
	cl, err := remoting.Dial(context.Background(), c.b.Addr(), remoting.ClientConfig{})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

const aclRemarkPrefix = "org.apache.rocketmq.acl.common.AclException: "

func TestACLPermittedAccountProducesAndConsumes(t *testing.T) {
	c, _ := startACLClusterWithTopic(t, "AclTopic")

	p := c.producer(producer.WithCredentials(fullCreds), producerSendTimeout())
	const n = 20
	sendN(t, p, "AclTopic", n)
	got := c.aclConsume("aclGroup", "AclTopic", fullCreds)
	waitUntil(t, 30*time.Second, func() bool { d, _ := got.count(); return d == n })

	// The Go client sends a SecurityToken but leaves it out of what it
	// signs (a Java broker refuses it, Java's rocketmq-client-go v2.1.2 internal/remote/interceptor.go); mqd accepts it.
	withToken := fullCreds
	withToken.SecurityToken = "session-token"
	pt := c.producer(producer.WithCredentials(withToken), producerSendTimeout(), producer.WithInstanceName(instance("pt")))
	if _, err := pt.SendSync(context.Background(), primitive.NewMessage("AclTopic", []byte("token"))); err != nil {
		t.Fatalf("send with a security token: %v", err)
	}
}

func TestACLWrongSecretIsDenied(t *testing.T) {
	c, path := startACLClusterWithTopic(t, "AclTopic")

	wrong := primitive.Credentials{AccessKey: "fullAccount", SecretKey: "not-the-secret"}
	p := c.producer(producer.WithCredentials(wrong), producerSendTimeout())
	_, err := p.SendSync(context.Background(), primitive.NewMessage("AclTopic", []byte("x")))
	want := "CODE: 1, DESC: " + aclRemarkPrefix + "Check signature failed for accessKey=fullAccount"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("send with a wrong secret: %v, want %q", err, want)
	}
	if n := c.b.Store().MaxOffsetInQueue("AclTopic", 0) + c.b.Store().MaxOffsetInQueue("AclTopic", 1); n != 0 {
		t.Fatalf("%d messages stored from a refused producer", n)
	}
	// Unsigned requests are refused too, with Java's remark.
	req := protocol.NewRequest(protocol.GetMaxOffset, &protocol.TopicQueueRequestHeader{Topic: "AclTopic"})
	resp := c.invokeRaw(req)
	if resp.Code != protocol.ResponseSystemError || !strings.HasPrefix(resp.Remark, aclRemarkPrefix+"No accessKey is configured, ") {
		t.Fatalf("unsigned request: %d %q", resp.Code, resp.Remark)
	}

	// Hot reload: once the file gives the account this secret, the same
	// producer gets through.
	fixed := strings.Replace(aclFile, "secretKey: full-secret", "secretKey: not-the-secret", 1)
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool {
		_, err := p.SendSync(context.Background(), primitive.NewMessage("AclTopic", []byte("y")))
		return err == nil
	})
}

func TestACLPubOnlyAccountCannotSubscribe(t *testing.T) {
	c, _ := startACLClusterWithTopic(t, "PubTopic")

	p := c.producer(producer.WithCredentials(pubOnlyCreds), producerSendTimeout())
	const n = 10
	sendN(t, p, "PubTopic", n) // PUB is enough to send

	// A pull signed by the Go client's hook is refused with Java's remark.
	pull, err := consumer.NewPullConsumer(consumer.WithNsResolver(c.resolver()), consumer.WithGroupName("pubGroup"),
		consumer.WithInstance(instance("pull")), consumer.WithCredentials(pubOnlyCreds))
	if err != nil {
		t.Fatal(err)
	}
	if err := pull.Subscribe("PubTopic", consumer.MessageSelector{}); err != nil {
		t.Fatal(err)
	}
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	defer pull.Shutdown()
	mq := &primitive.MessageQueue{Topic: "PubTopic", BrokerName: "broker-a", QueueId: 0} // the default brokerName
	_, err = pull.PullFrom(context.Background(), mq, 0, 32)
	want := aclRemarkPrefix + "No default permission for topic:PubTopic"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("PUB-only pull: %v, want %q", err, want)
	}

	// A push consumer of the same account receives nothing, while one with
	// SUB on the topic receives everything from the same queues.
	denied := c.aclConsume("pubGroup2", "PubTopic", pubOnlyCreds)
	// The admin account has no perms listed, so it may read anything.
	allowed := c.aclConsume("adminGroup", "PubTopic", adminCreds)
	waitUntil(t, 30*time.Second, func() bool { d, _ := allowed.count(); return d == n })
	time.Sleep(2 * time.Second) // the refused consumer had as long, and more
	if d, _ := denied.count(); d != 0 {
		t.Fatalf("PUB-only push consumer received %d messages", d)
	}
}

func TestACLAdminOnlyRequestNeedsAdmin(t *testing.T) {
	c, _ := startACLCluster(t, aclFile)
	user := c.aclAdmin(fullCreds)
	if err := c.aclCreateTopic(user, "NotAllowed"); err != nil {
		t.Fatal(err) // the Go admin API does not look at the response code
	}
	if c.topicExists("NotAllowed") {
		t.Fatal("a non-admin account created a topic")
	}
	if err := c.aclCreateTopic(c.aclAdmin(adminCreds), "Allowed"); err != nil {
		t.Fatal(err)
	}
	if !c.topicExists("Allowed") {
		t.Fatal("the admin account could not create a topic")
	}
	// The response the Go client ignored: code 1 and Java's remark.
	req := protocol.NewRequest(protocol.DeleteTopicInBroker, nil)
	req.SetExt("topic", "Allowed")
	req.SetExt(acl.FieldAccessKey, fullCreds.AccessKey)
	req.SetExt(acl.FieldSignature, acl.Sign(fullCreds.SecretKey, req.ExtFields, nil))
	resp := c.invokeRaw(req)
	want := aclRemarkPrefix + "Need admin permission for request code=215, but accessKey=fullAccount is not, "
	if resp.Code != protocol.ResponseSystemError || !strings.HasPrefix(resp.Remark, want) {
		t.Fatalf("non-admin delete: %d %q", resp.Code, resp.Remark)
	}
	if !c.topicExists("Allowed") {
		t.Fatal("a non-admin account deleted a topic")
	}
}

// topicExists asks the broker (as the admin account) for its topic list.
func (c *cluster) topicExists(topic string) bool {
	c.t.Helper()
	req := protocol.NewRequest(protocol.GetAllTopicConfig, nil)
	req.SetExt(acl.FieldAccessKey, adminCreds.AccessKey)
	req.SetExt(acl.FieldSignature, acl.Sign(adminCreds.SecretKey, req.ExtFields, nil))
	resp := c.invokeRaw(req)
	if resp.Code != protocol.ResponseSuccess {
		c.t.Fatalf("GET_ALL_TOPIC_CONFIG: %d %s", resp.Code, resp.Remark)
	}
	return strings.Contains(string(resp.Body), `"`+topic+`"`)
}

// A consumer under ACL that fails a message hands it back
// (CONSUMER_SEND_MSG_BACK with originTopic): the broker checks that the
// record is of originTopic, also for a message already redelivered from
// the retry topic. Failing twice exercises both.
func TestACLConsumerRetriesThroughRetryTopic(t *testing.T) {
	c, _ := startACLClusterWithTopic(t, "AclTopic")
	p := c.producer(producer.WithCredentials(fullCreds), producerSendTimeout())
	sendN(t, p, "AclTopic", 3)
	var mu sync.Mutex
	done := map[string]bool{}
	pc := c.pushConsumer("aclRetry", consumer.WithCredentials(fullCreds))
	err := pc.Subscribe("AclTopic", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if m.ReconsumeTimes < 2 {
				return consumer.ConsumeRetryLater, nil
			}
			done[string(m.Body)] = true
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
	waitUntil(t, 60*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(done) == 3 })
	// The client retries locally when a send-back fails: count what the
	// broker stored in the retry topic (3 messages handed back twice).
	if n := c.b.Store().MaxOffsetInQueue("%RETRY%aclRetry", 0); n != 6 {
		t.Fatalf("%d records in the retry topic, want 6 (send-backs refused?)", n)
	}
}

// An orderly consumer locks its queues (LOCK_BATCH_MQ, signed by the Go
// client): with SUB on the group and topic it locks and consumes.
func TestACLOrderlyConsumerLocksQueues(t *testing.T) {
	c, _ := startACLClusterWithTopic(t, "AclTopic")
	got := newReceived()
	pc := c.pushConsumer("aclOrderly", consumer.WithCredentials(fullCreds), consumer.WithConsumerOrder(true),
		consumer.WithRebalanceLockInterval(time.Second))
	if err := pc.Subscribe("AclTopic", consumer.MessageSelector{}, got.listener()); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	p := c.producer(producer.WithCredentials(fullCreds), producerSendTimeout())
	sendN(t, p, "AclTopic", 5)
	// the Go client consumes a queue orderly only once the broker locked it
	waitUntil(t, 30*time.Second, func() bool { d, _ := got.count(); return d == 5 })
}
