package acl

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// javaExample is the plain_acl.yml shipped with RocketMQ 4.9.7, plus one
// PUB-only account and one admin account without white list.
const javaExample = `
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      # the group should convert to retry topic
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    # if it is admin, it could access all resources
    admin: true

  - accessKey: "pubonly1"
    secretKey: "pubonly-secret"
    defaultTopicPerm: PUB
    defaultGroupPerm: PUB

  - accessKey: adminNoPerms
    secretKey: admin-secret
    admin: yes
`

func mustParse(t *testing.T, s string) *Table {
	t.Helper()
	tab, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestParseJavaExample(t *testing.T) {
	tab := mustParse(t, javaExample)
	if len(tab.GlobalWhite) != 2 || len(tab.Accounts) != 4 {
		t.Fatalf("%d white, %d accounts", len(tab.GlobalWhite), len(tab.Accounts))
	}
	a := tab.Accounts["RocketMQ"]
	if a.SecretKey != "12345678" || a.Admin || a.DefaultTopicPerm != Deny || a.DefaultGroupPerm != Sub {
		t.Fatalf("RocketMQ: %+v", a)
	}
	want := map[string]Perm{"topicA": Deny, "topicB": Pub | Sub, "topicC": Sub,
		"%RETRY%groupA": Deny, "%RETRY%groupB": Pub | Sub, "%RETRY%groupC": Sub}
	for k, v := range want {
		if a.Perms[k] != v {
			t.Errorf("%s: %v, want %v", k, a.Perms[k], v)
		}
	}
	if !tab.Accounts["rocketmq2"].Admin || !tab.Accounts["adminNoPerms"].Admin {
		t.Error("admin flags")
	}
	if tab.Accounts["rocketmq2"].DefaultTopicPerm != Deny {
		t.Error("absent default perm must be DENY")
	}
}

func TestParseRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"short access key":  "accounts:\n  - accessKey: abc\n    secretKey: 12345678\n",
		"short secret":      "accounts:\n  - accessKey: abcdefg\n    secretKey: 123456\n",
		"missing secret":    "accounts:\n  - accessKey: abcdefg\n",
		"bad white":         "accounts:\n  - accessKey: abcdefg\n    secretKey: 12345678\n    whiteRemoteAddress: 1.2.3\n",
		"bad global white":  "globalWhiteRemoteAddresses:\n  - 300.1.1.1\n",
		"perm without '='":  "accounts:\n  - accessKey: abcdefg\n    secretKey: 12345678\n    topicPerms:\n      - topicA\n",
		"list as key":       "accounts:\n  - accessKey: [a, b]\n    secretKey: 12345678\n",
		"bad admin":         "accounts:\n  - accessKey: abcdefg\n    secretKey: 12345678\n    admin: maybe\n",
		"not yaml":          "accounts: [\n",
		"accounts not list": "accounts: 5\n",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	tab := mustParse(t, "")
	if len(tab.Accounts) != 0 {
		t.Error("empty file")
	}
	tab = mustParse(t, "accounts:\n  - accessKey: abcdefg\n    secretKey: 11111111\n  - accessKey: abcdefg\n    secretKey: 22222222\n")
	if tab.Accounts["abcdefg"].SecretKey != "11111111" || len(tab.Warnings) != 1 {
		t.Errorf("repeated key: %+v %v", tab.Accounts["abcdefg"], tab.Warnings)
	}
}

// signed builds a request signed the way the clients do.
func signed(code int16, ak, sk string, ext map[string]string, body string) *protocol.Command {
	req := &protocol.Command{Code: code, Language: "JAVA", ExtFields: map[string]string{}, Body: []byte(body)}
	for k, v := range ext {
		req.ExtFields[k] = v
	}
	if ak != "" {
		req.ExtFields[FieldAccessKey] = ak
		req.ExtFields[FieldSignature] = Sign(sk, req.ExtFields, req.Body)
	}
	return req
}

var outside = netip.MustParseAddr("172.16.0.9")

func remarkOf(err error) string {
	if d, ok := err.(*Denied); ok {
		return d.Remark()
	}
	return ""
}

func TestValidatorOrderAndRemarks(t *testing.T) {
	v := NewValidator(mustParse(t, javaExample))
	send := map[string]string{"b": "topicB", "a": "pg"}
	cases := []struct {
		name   string
		req    *protocol.Command
		client netip.Addr
		remark string // "" = accepted
	}{
		{"global white needs no key", signed(protocol.SendMessageV2, "", "", send, "x"), netip.MustParseAddr("10.10.103.7"), ""},
		{"no key", signed(protocol.SendMessageV2, "", "", send, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No accessKey is configured, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:663)"},
		{"unknown key", signed(protocol.SendMessageV2, "nobody12", "12345678", send, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No acl config for nobody12, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:667)"},
		{"wrong secret", signed(protocol.SendMessageV2, "RocketMQ", "87654321", send, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: Check signature failed for accessKey=RocketMQ, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:683)"},
		{"account white skips signature", signed(protocol.SendMessageV2, "rocketmq2", "wrong-secret", send, "x"), netip.MustParseAddr("192.168.1.20"), ""},
		{"account white elsewhere", signed(protocol.SendMessageV2, "rocketmq2", "wrong-secret", send, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: Check signature failed for accessKey=rocketmq2, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:683)"},
		{"listed PUB|SUB", signed(protocol.SendMessageV2, "RocketMQ", "12345678", send, "x"), outside, ""},
		{"listed DENY", signed(protocol.SendMessageV2, "RocketMQ", "12345678", map[string]string{"b": "topicA", "a": "pg"}, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:topicA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"default DENY", signed(protocol.SendMessage, "RocketMQ", "12345678", map[string]string{"topic": "other", "producerGroup": "pg"}, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:other, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:605)"},
		{"trace topic always", signed(protocol.SendMessageV2, "RocketMQ", "12345678", map[string]string{"b": TraceTopic, "a": "pg"}, "x"), outside, ""},
		{"admin code, not admin", signed(protocol.UpdateAndCreateTopic, "RocketMQ", "12345678", map[string]string{"topic": "topicB"}, ""), outside,
			"org.apache.rocketmq.acl.common.AclException: Need admin permission for request code=17, but accessKey=RocketMQ is not, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:580)"},
		{"admin code, admin", signed(protocol.DeleteTopicInBroker, "adminNoPerms", "admin-secret", map[string]string{"topic": "x"}, ""), outside, ""},
		{"admin without perms may do anything", signed(protocol.PullMessage, "adminNoPerms", "admin-secret", map[string]string{"topic": "x", "consumerGroup": "g"}, ""), outside, ""},
		{"no resources: signature only", signed(protocol.GetMaxOffset, "pubonly1", "pubonly-secret", map[string]string{"topic": "x"}, ""), outside, ""},
		{"pull: topic SUB listed", signed(protocol.PullMessage, "RocketMQ", "12345678", map[string]string{"topic": "topicC", "consumerGroup": "groupC"}, ""), outside, ""},
		{"pull: group DENY", signed(protocol.PullMessage, "RocketMQ", "12345678", map[string]string{"topic": "topicC", "consumerGroup": "groupA"}, ""), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for group:groupA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"pub-only cannot pull", signed(protocol.PullMessage, "pubonly1", "pubonly-secret", map[string]string{"topic": "t", "consumerGroup": "g"}, ""), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:t, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:605)"},
		{"pub-only sends", signed(protocol.SendMessage, "pubonly1", "pubonly-secret", map[string]string{"topic": "t", "producerGroup": "pg"}, "x"), outside, ""},
		{"batch checked like V2", signed(protocol.SendBatchMessage, "RocketMQ", "12345678", map[string]string{"b": "topicC", "a": "pg"}, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:topicC, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"code 10 with V2 names is checked", signed(protocol.SendMessage, "RocketMQ", "12345678", map[string]string{"b": "topicA", "a": "pg"}, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:topicA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"retry send needs group SUB", signed(protocol.SendMessageV2, "RocketMQ", "12345678", map[string]string{"b": "%RETRY%groupA", "a": "groupA"}, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for group:groupA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"retry send into another group's retry topic", signed(protocol.SendMessageV2, "RocketMQ", "12345678", map[string]string{"b": "%RETRY%groupA", "a": "groupC"}, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for group:groupA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"retry send, code 10 without a producer group", signed(protocol.SendMessage, "RocketMQ", "12345678", map[string]string{"topic": "%RETRY%groupA"}, "x"), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for group:groupA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"retry send, default group SUB", signed(protocol.SendMessageV2, "RocketMQ", "12345678", map[string]string{"b": "%RETRY%any", "a": "any"}, "x"), outside, ""},
		{"send back: group", signed(protocol.ConsumerSendMsgBack, "pubonly1", "pubonly-secret", map[string]string{"group": "g"}, ""), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for group:g, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:605)"},
		{"send back: originTopic", signed(protocol.ConsumerSendMsgBack, "RocketMQ", "12345678", map[string]string{"group": "groupC", "originTopic": "topicA"}, ""), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:topicA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"lock: group", signed(protocol.LockBatchMQ, "RocketMQ", "12345678", map[string]string{},
			`{"consumerGroup":"groupA","clientId":"c","mqSet":[{"topic":"topicC","brokerName":"b","queueId":0}]}`), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for group:groupA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"unlock: topic", signed(protocol.UnlockBatchMQ, "RocketMQ", "12345678", map[string]string{},
			`{"consumerGroup":"groupC","clientId":"c","mqSet":[{"topic":"topicC","brokerName":"b","queueId":0},{"topic":"topicA","brokerName":"b","queueId":1}]}`), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:topicA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"lock: permitted", signed(protocol.LockBatchMQ, "RocketMQ", "12345678", map[string]string{},
			`{"consumerGroup":"groupC","clientId":"c","mqSet":[{"topic":"topicC","brokerName":"b","queueId":0}]}`), outside, ""},
		{"offset update: topic", signed(protocol.UpdateConsumerOffset, "RocketMQ", "12345678", map[string]string{"consumerGroup": "groupC", "topic": "topicA"}, ""), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:topicA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"heartbeat: subscription topic", signed(protocol.HeartBeat, "RocketMQ", "12345678", nil,
			`{"clientID":"c","consumerDataSet":[{"groupName":"groupC","subscriptionDataSet":[{"topic":"topicC"},{"topic":"topicB"},{"topic":"topicA"}]}]}`), outside,
			"org.apache.rocketmq.acl.common.AclException: No default permission for topic:topicA, org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"},
		{"heartbeat: producers add nothing", signed(protocol.HeartBeat, "pubonly1", "pubonly-secret", nil,
			`{"clientID":"c","producerDataSet":[{"groupName":"pg"}]}`), outside, ""},
		{"heartbeat: body not JSON", signed(protocol.HeartBeat, "RocketMQ", "12345678", nil, `{"clientID":`), outside, "parse"},
	}
	noExt := &protocol.Command{Code: protocol.HeartBeat, Body: []byte("not json")}
	cases = append(cases, []struct {
		name   string
		req    *protocol.Command
		client netip.Addr
		remark string
	}{
		{"no ext fields, white-listed: body not read", noExt, netip.MustParseAddr("192.168.0.3"), ""},
		{"no ext fields elsewhere", noExt, outside,
			"org.apache.rocketmq.acl.common.AclException: No accessKey is configured, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:663)"},
	}...)
	for _, c := range cases {
		err := v.Check(c.req, c.client)
		got := remarkOf(err)
		switch {
		case c.remark == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.remark == "parse":
			if !strings.HasPrefix(got, ExceptionClass+": ") || !strings.HasSuffix(got, frameParse) {
				t.Errorf("%s: %q", c.name, got)
			}
		case c.remark != "" && got != c.remark:
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.remark)
		}
	}
}

// TestPermissionMatrix checks Permission.checkPermission for every owned
// and needed value.
func TestPermissionMatrix(t *testing.T) {
	owned := []Perm{Deny, Pub, Sub, Pub | Sub, Deny | Pub, 0}
	needed := []Perm{Pub, Sub, Any, Pub | Sub}
	want := map[[2]Perm]bool{
		{Pub, Pub}: true, {Pub, Any}: true, {Pub, Pub | Sub}: true,
		{Sub, Sub}: true, {Sub, Any}: true, {Sub, Pub | Sub}: true,
		{Pub | Sub, Pub}: true, {Pub | Sub, Sub}: true, {Pub | Sub, Any}: true, {Pub | Sub, Pub | Sub}: true,
	}
	for _, o := range owned {
		for _, n := range needed {
			if got := o.Allows(n); got != want[[2]Perm{o, n}] {
				t.Errorf("owned %v needed %v: %v", o, n, got)
			}
		}
	}
	for s, p := range map[string]Perm{"PUB": Pub, " SUB ": Sub, "PUB|SUB": Pub | Sub, "SUB|PUB": Pub | Sub, "DENY": Deny, "": Deny, "pub": Deny, "ANY": Deny} {
		if got, _ := ParsePerm(s); got != p {
			t.Errorf("ParsePerm(%q) = %v", s, got)
		}
	}
}

func TestAdminCodes(t *testing.T) {
	for _, c := range []int16{17, 25, 215, 200, 207, 222, 100, 102, 205, 216, 327, 318, 103, 104} {
		if !AdminOnly(c) {
			t.Errorf("code %d not admin-only", c)
		}
	}
	for _, c := range []int16{10, 11, 34, 105, 21, 201} {
		if AdminOnly(c) {
			t.Errorf("code %d admin-only", c)
		}
	}
}
