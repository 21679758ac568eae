package broker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func TestACLConfKeys(t *testing.T) {
	cfg := NewConfig()
	if _, err := ApplyProperties(map[string]string{"aclEnable": "true", "aclFile": "/etc/mqd/acl.yml"}, &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.ACL.Enable || cfg.ACL.File != "/etc/mqd/acl.yml" {
		t.Fatalf("%+v", cfg.ACL)
	}
	if _, err := ApplyProperties(map[string]string{"aclEnable": "maybe"}, &cfg); err == nil {
		t.Fatal("aclEnable=maybe accepted")
	}
	t.Setenv("ROCKETMQ_HOME", "")
	if got := DefaultACLFile("/data/mqd/store/"); got != "/data/mqd/conf/plain_acl.yml" {
		t.Fatalf("default without ROCKETMQ_HOME: %s", got)
	}
	t.Setenv("ROCKETMQ_HOME", "/opt/rocketmq")
	if got := DefaultACLFile("/data/mqd/store"); got != "/opt/rocketmq/conf/plain_acl.yml" {
		t.Fatalf("default with ROCKETMQ_HOME: %s", got)
	}
}

func TestACLBrokerRefusesAndHotReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("accounts:\n  - accessKey: account1\n    secretKey: secret11\n")
	_, c := startBroker(t, func(cfg *Config) {
		cfg.ACL = ACLConfig{Enable: true, File: path, ReloadInterval: 10 * time.Millisecond}
	})
	maxOffset := func() *protocol.Command {
		req := protocol.NewRequest(protocol.GetMaxOffset, &protocol.TopicQueueRequestHeader{Topic: "TopicTest"})
		req.SetExt(acl.FieldAccessKey, "account1")
		req.SetExt(acl.FieldSignature, acl.Sign("secret11", req.ExtFields, nil))
		return call(t, c, req)
	}
	if resp := maxOffset(); resp.Code == protocol.ResponseSystemError {
		t.Fatalf("signed request refused: %s", resp.Remark)
	}
	unknown := protocol.NewRequest(999, nil) // unknown codes are checked too, as in Java
	if resp := call(t, c, unknown); resp.Code != protocol.ResponseSystemError ||
		!strings.HasPrefix(resp.Remark, acl.ExceptionClass+": No accessKey is configured, ") {
		t.Fatalf("unsigned unknown code: %d %q", resp.Code, resp.Remark)
	}
	// A bad file keeps the account; a good one without it removes it.
	write("accounts: [\n")
	time.Sleep(100 * time.Millisecond)
	if resp := maxOffset(); resp.Code == protocol.ResponseSystemError {
		t.Fatalf("bad file dropped the last good configuration: %s", resp.Remark)
	}
	write("accounts:\n  - accessKey: account2\n    secretKey: secret22\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := maxOffset()
		if resp.Code == protocol.ResponseSystemError && strings.Contains(resp.Remark, "No acl config for account1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload not seen: %d %q", resp.Code, resp.Remark)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestACLBadFileRefusesStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte("globalWhiteRemoteAddresses: [300.1.1.1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := NewConfig()
	cfg.BrokerIP1, cfg.Listener = "127.0.0.1", ln
	cfg.Store = engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: t.TempDir(), MappedFileSizeCommitLog: 1 << 20, ConsumeQueueEntriesPerFile: 1000,
		MaxHashSlotNum: 1000, MaxIndexNum: 10000}
	cfg.ACL = ACLConfig{Enable: true, File: path}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Store().Close()
	if err := b.Start(); err == nil || !strings.Contains(err.Error(), "300.1.1.1") {
		t.Fatalf("start with an invalid ACL file: %v", err)
	}
}

func signedCall(t *testing.T, c *remoting.Client, req *protocol.Command, ak, sk string) *protocol.Command {
	t.Helper()
	req.SetExt(acl.FieldAccessKey, ak)
	req.SetExt(acl.FieldSignature, acl.Sign(sk, req.ExtFields, req.Body))
	return call(t, c, req)
}

// startReaderACLBroker starts a broker with ACL: admin01 (admin) and
// reader1 (SUB on topic Open and on every group, no other topic), and
// stores one message in Open and one in Secret, returning their offsets.
func startReaderACLBroker(t *testing.T) (b *Broker, c *remoting.Client, open, secret int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	yml := "accounts:\n" +
		"  - accessKey: admin01\n    secretKey: adminsecret\n    admin: true\n" +
		"  - accessKey: reader1\n    secretKey: readersecret\n    defaultTopicPerm: DENY\n    defaultGroupPerm: SUB\n" +
		"    topicPerms:\n      - Open=SUB\n"
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	b, c = startBroker(t, func(cfg *Config) { cfg.ACL = ACLConfig{Enable: true, File: path} })
	send := func(topic string) int64 {
		req := protocol.NewRequest(protocol.SendMessage, nil)
		req.ExtFields, req.Body = sendHeader(topic, 0, "").Encode(), []byte("body of "+topic)
		return offsetOfID(t, b, mustSendOK(t, signedCall(t, c, req, "admin01", "adminsecret")).MsgID)
	}
	open, secret = send("Open"), send("Secret")
	return b, c, open, secret
}

// CONSUMER_SEND_MSG_BACK copies the record at a client-chosen offset into
// the group's retry topic. With ACL, an account with SUB on its own group
// must not be able to copy a message of a topic it may not read there (and
// then consume it): the message must be of originTopic, which needs SUB.
func TestACLSendBackCannotCopyForeignMessages(t *testing.T) {
	b, c, open, secret := startReaderACLBroker(t)
	sendBack := func(off int64, originTopic string) *protocol.Command {
		h := &protocol.ConsumerSendMsgBackRequestHeader{Offset: off, Group: "readers", OriginTopic: originTopic}
		return signedCall(t, c, protocol.NewRequest(protocol.ConsumerSendMsgBack, h), "reader1", "readersecret")
	}
	// A send-back waits for delay level 3 (queue 2 of the schedule topic)
	// before it reaches the retry topic.
	retried := func() int64 { return b.store.MaxOffsetInQueue(engine.ScheduleTopic, 2) }
	expectCode(t, sendBack(open, "Open"), protocol.ResponseSuccess) // its own message: allowed
	for deadline := time.Now().Add(5 * time.Second); retried() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("legitimate send-back not in the retry queue: %d", retried())
		}
	}
	for _, origin := range []string{"Secret", "Open", ""} {
		if resp := sendBack(secret, origin); resp.Code == protocol.ResponseSuccess {
			t.Fatalf("originTopic %q: a message of Secret was copied into the reader's retry topic", origin)
		}
	}
	if retried() != 1 {
		t.Fatalf("%d messages in the retry topic, want 1", retried())
	}
}

// VIEW_MESSAGE_BY_ID names no topic (the resource is known only once the
// record is read): without a check after the read, any account could read
// any topic's messages by offset.
func TestACLViewMessageNeedsTopicSub(t *testing.T) {
	_, c, open, secret := startReaderACLBroker(t)
	view := func(off int64, ak, sk string) *protocol.Command {
		return signedCall(t, c, protocol.NewRequest(protocol.ViewMessageByID, &protocol.ViewMessageRequestHeader{Offset: off}), ak, sk)
	}
	expectCode(t, view(open, "reader1", "readersecret"), protocol.ResponseSuccess)
	expectCode(t, view(secret, "admin01", "adminsecret"), protocol.ResponseSuccess)
	resp := view(secret, "reader1", "readersecret")
	if resp.Code != protocol.ResponseSystemError || len(resp.Body) != 0 ||
		!strings.HasPrefix(resp.Remark, acl.ExceptionClass+": No default permission for topic:Secret") {
		t.Fatalf("reader viewing a Secret message: code %d remark %q, %d body bytes", resp.Code, resp.Remark, len(resp.Body))
	}
}

// A pull parked before an ACL reload that takes its permission away is
// checked again when it is re-executed: it gets the refusal, not messages.
func TestACLParkedPullRecheckedAfterReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	write := func(topicPerm string) {
		yml := "accounts:\n  - accessKey: cons001\n    secretKey: conssecret\n    defaultGroupPerm: SUB\n" +
			"    defaultTopicPerm: " + topicPerm + "\n"
		if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("SUB")
	b, c := startBroker(t, func(cfg *Config) {
		cfg.ACL = ACLConfig{Enable: true, File: path, ReloadInterval: 10 * time.Millisecond}
	})
	addTopic(t, b, "T", 1)
	hb := &protocol.HeartbeatData{ClientID: "c1", ConsumerDataSet: []protocol.ConsumerData{{GroupName: "g",
		ConsumeType: protocol.ConsumeTypePassively, MessageModel: protocol.MessageModelClustering,
		ConsumeFromWhere: protocol.ConsumeFromLastOffset, SubscriptionDataSet: []protocol.SubscriptionData{{
			Topic: "T", SubString: "*", ExpressionType: protocol.ExpressionTypeTag, TagsSet: []string{},
			CodeSet: protocol.CodeSet{}}}}}}
	req := protocol.NewRequest(protocol.HeartBeat, nil)
	var err error
	if req.Body, err = hb.Encode(); err != nil {
		t.Fatal(err)
	}
	expectCode(t, signedCall(t, c, req, "cons001", "conssecret"), protocol.ResponseSuccess)
	pull := pullReq("g", "T", 0, 0, 32, protocol.PullFlagSuspend, 20000)
	pull.SetExt(acl.FieldAccessKey, "cons001")
	pull.SetExt(acl.FieldSignature, acl.Sign("conssecret", pull.ExtFields, nil))
	ch := invokeAsync(c, pull)
	waitFor(t, "parked pull", func() bool { return b.pulls.Len() == 1 })
	write("DENY")
	waitFor(t, "reload", func() bool {
		probe := pullReq("g", "T", 0, 0, 32, 0, 0)
		return signedCall(t, c, probe, "cons001", "conssecret").Code == protocol.ResponseSystemError
	})
	putMsg(t, b, "T", 0, "a")
	select {
	case resp := <-ch:
		if resp.Code != protocol.ResponseSystemError || !strings.Contains(resp.Remark, "No default permission for topic") {
			t.Fatalf("parked pull after reload: %d %q (%d body bytes)", resp.Code, resp.Remark, len(resp.Body))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parked pull not answered")
	}
}
