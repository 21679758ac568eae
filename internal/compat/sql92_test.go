package compat

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// sqlMsg is one test message: body m<i>, tag TagA/TagB, a = i % 6,
// b cycling x, y, z, c set on every fourth.
type sqlMsg struct {
	body, tag, a, b, c string
}

func sqlMessages(n int) []sqlMsg {
	out := make([]sqlMsg, n)
	for i := range out {
		m := sqlMsg{body: fmt.Sprintf("m%02d", i), tag: []string{"TagA", "TagB"}[i%2],
			a: fmt.Sprint(i % 6), b: string("xyz"[i%3])}
		if i%4 == 0 {
			m.c = "set"
		}
		out[i] = m
	}
	return out
}

// expect returns the bodies of the messages keep selects, sorted.
func expect(msgs []sqlMsg, keep func(m sqlMsg) bool) []string {
	var out []string
	for _, m := range msgs {
		if keep(m) {
			out = append(out, m.body)
		}
	}
	return out
}

func (r *received) bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.msgs))
	for b := range r.msgs {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

func TestSQL92SelectorsDeliverExactlyTheMatches(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Sql", 2)
	msgs := sqlMessages(48)
	num := func(s string) int { var n int; fmt.Sscan(s, &n); return n }
	cases := []struct {
		expr string
		keep func(m sqlMsg) bool
	}{
		{"a BETWEEN 0 AND 3", func(m sqlMsg) bool { return num(m.a) <= 3 }},
		{"b IN ('x','y')", func(m sqlMsg) bool { return m.b != "z" }},
		{"c IS NULL", func(m sqlMsg) bool { return m.c == "" }},
		{"TAGS = 'TagA' AND a BETWEEN 0 AND 3", func(m sqlMsg) bool { return m.tag == "TagA" && num(m.a) <= 3 }},
		{"(TAGS IN ('TagB') OR b = 'z') AND c IS NOT NULL", func(m sqlMsg) bool {
			return (m.tag == "TagB" || m.b == "z") && m.c != ""
		}},
		{"a > 4 OR missing = 'x'", func(m sqlMsg) bool { return num(m.a) > 4 }},
	}
	got := make([]*received, len(cases))
	for i, tc := range cases {
		got[i] = newReceived()
		pc := c.pushConsumer(fmt.Sprintf("cg-sql-%d", i))
		if err := pc.Subscribe("Sql", consumer.MessageSelector{Type: consumer.SQL92, Expression: tc.expr}, got[i].listener()); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		defer pc.Shutdown()
	}
	p := c.producer()
	for _, m := range msgs {
		pm := primitive.NewMessage("Sql", []byte(m.body)).WithTag(m.tag)
		pm.WithProperty("a", m.a)
		pm.WithProperty("b", m.b)
		if m.c != "" {
			pm.WithProperty("c", m.c)
		}
		if _, err := p.SendSync(context.Background(), pm); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range cases {
		want := expect(msgs, tc.keep)
		waitUntil(t, 30*time.Second, func() bool { n, _ := got[i].count(); return n >= len(want) })
	}
	time.Sleep(time.Second) // let a wrong extra delivery arrive
	for i, tc := range cases {
		want := expect(msgs, tc.keep)
		if g := got[i].bodies(); strings.Join(g, ",") != strings.Join(want, ",") {
			t.Errorf("%q delivered %v, want %v", tc.expr, g, want)
		}
		if _, total := got[i].count(); total != len(want) {
			t.Errorf("%q delivered %d messages for %d matches", tc.expr, total, len(want))
		}
	}
}

// clientLog records the Go client's log (rlog has one global logger and
// no getter: the capture stays installed, forwarding to stderr only when
// MQD_CLIENT_LOG is set, as TestMain's level does).
type clientLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *clientLog) add(level, msg string, fields map[string]interface{}) {
	line := fmt.Sprintf("%s %s %v", level, msg, fields)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	if len(l.lines) > 10000 {
		l.lines = l.lines[5000:]
	}
	l.mu.Unlock()
	if os.Getenv("MQD_CLIENT_LOG") != "" {
		fmt.Fprintln(os.Stderr, line)
	}
}

func (l *clientLog) Debug(msg string, f map[string]interface{})   {}
func (l *clientLog) Info(msg string, f map[string]interface{})    {}
func (l *clientLog) Warning(msg string, f map[string]interface{}) { l.add("WARN", msg, f) }
func (l *clientLog) Error(msg string, f map[string]interface{})   { l.add("ERROR", msg, f) }
func (l *clientLog) Fatal(msg string, f map[string]interface{})   { l.add("FATAL", msg, f) }
func (l *clientLog) Level(string)                                 {}
func (l *clientLog) OutputPath(string) error                      { return nil }

func (l *clientLog) find(sub string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return s
		}
	}
	return ""
}

func TestSQL92MalformedExpressionRejected(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("SqlBad", 1)
	logs := &clientLog{}
	rlog.SetLogger(logs)
	const bad = "a BETWEEN 3 AND"
	got := newReceived()
	pc := c.pushConsumer("cg-sql-bad")
	if err := pc.Subscribe("SqlBad", consumer.MessageSelector{Type: consumer.SQL92, Expression: bad}, got.listener()); err != nil {
		t.Fatal(err)
	}
	// The Go client does not validate selectors (it never sends
	// CHECK_CLIENT_CONFIG): it starts, and every pull is refused.
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	p := c.producer()
	pm := primitive.NewMessage("SqlBad", []byte("x"))
	pm.WithProperty("a", "3")
	if _, err := p.SendSync(context.Background(), pm); err != nil {
		t.Fatal(err)
	}
	// What the client sees: its pulls fail with FILTER_DATA_NOT_EXIST (27),
	// Java's code for a heartbeat subscription without compiled filter data.
	var line string
	waitUntil(t, 20*time.Second, func() bool { line = logs.find("unknown Response Code: 27"); return line != "" })
	if !strings.Contains(line, "Invalid MessageSelector") {
		t.Errorf("remark does not say why: %s", line)
	}
	t.Logf("client log: %s", line)
	time.Sleep(500 * time.Millisecond)
	if n, _ := got.count(); n != 0 {
		t.Fatalf("%d messages delivered to a malformed selector", n)
	}

	// A Java consumer checks its selector at start (CHECK_CLIENT_CONFIG)
	// and a pull consumer sends it with each pull: both get 23.
	cl, err := remoting.Dial(context.Background(), c.b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := protocol.NewRequest(protocol.CheckClientConfig, nil)
	check.Body = []byte(`{"clientId":"127.0.0.1@java","group":"cg-java","subscriptionData":{"topic":"SqlBad",` +
		`"subString":"` + bad + `","expressionType":"SQL92","subVersion":1,"tagsSet":[],"codeSet":[]}}`)
	resp, err := cl.Invoke(ctx, check)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != protocol.ResponseSubscriptionParseFailed || !strings.Contains(resp.Remark, "Invalid MessageSelector") {
		t.Fatalf("CHECK_CLIENT_CONFIG: %d %q", resp.Code, resp.Remark)
	}
	h := &protocol.PullMessageRequestHeader{ConsumerGroup: "cg-java", Topic: "SqlBad", MaxMsgNums: 32,
		SysFlag: protocol.PullFlagSubscription, Subscription: bad, ExpressionType: protocol.ExpressionTypeSQL92}
	resp, err = cl.Invoke(ctx, protocol.NewRequest(protocol.PullMessage, h))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != protocol.ResponseSubscriptionParseFailed {
		t.Fatalf("pull with the expression: %d %q", resp.Code, resp.Remark)
	}
}
