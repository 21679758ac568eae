package broker

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// putSQLSet stores six messages tagged m0..m5 with a = i, b cycling x, y,
// z and c only on m0 and m3.
func putSQLSet(t *testing.T, b *Broker, topic string) {
	t.Helper()
	for i := 0; i < 6; i++ {
		p := map[string]string{message.PropTags: fmt.Sprintf("m%d", i), "a": strconv.Itoa(i), "b": string("xyz"[i%3])}
		if i%3 == 0 {
			p["c"] = "set"
		}
		putProps(t, b, topic, 0, p)
	}
}

func sqlSub(topic, expr string, version int64) subSpec {
	return subSpec{topic: topic, expr: expr, version: version, exprType: protocol.ExpressionTypeSQL92}
}

func TestPullSQL92FromHeartbeat(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	putSQLSet(t, b, "T")
	for i, tc := range []struct{ expr, want string }{
		{"a BETWEEN 0 AND 3", "m0,m1,m2,m3"},
		{"b IN ('x','y')", "m0,m1,m3,m4"},
		{"c IS NULL", "m1,m2,m4,m5"},
		{"TAGS IN ('m1','m4') AND c IS NULL", "m1,m4"},
		{"TAGS = 'm2' OR (a > 4 AND b <> 'x')", "m2,m5"},
		{"a > 4.5", "m5"},
		{"b CONTAINS 'z' AND NOT (a < 3)", "m5"},
	} {
		sendHeartbeat(t, c, "c1", "g", sqlSub("T", tc.expr, int64(i+1)))
		checkPull(t, call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0)), pullWant{0, 6, 0, 6, tc.want})
	}
	sendHeartbeat(t, c, "c1", "g", sqlSub("T", "a = 'none'", 100))
	checkPull(t, call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0)), pullWant{20, 6, 0, 6, ""})
}

func TestPullSQL92FromHeader(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	putSQLSet(t, b, "T")
	own := func(expr string) *protocol.Command {
		r := pullReq("nohb", "T", 0, 0, 32, protocol.PullFlagSubscription, 0)
		r.SetExt("subscription", expr)
		r.SetExt("expressionType", protocol.ExpressionTypeSQL92)
		return r
	}
	checkPull(t, call(t, c, own("a BETWEEN 1 AND 2")), pullWant{0, 6, 0, 6, "m1,m2"})
	for _, bad := range []string{"a BETWEEN 3 AND 1", "a ==", "a > 'x'"} {
		resp := call(t, c, own(bad))
		if resp.Code != protocol.ResponseSubscriptionParseFailed {
			t.Fatalf("%q: %d %q", bad, resp.Code, resp.Remark)
		}
		t.Logf("%q: %s", bad, resp.Remark)
	}
	r := own("a = 1")
	r.SetExt("expressionType", "JAVASCRIPT")
	if resp := call(t, c, r); resp.Code != protocol.ResponseSubscriptionParseFailed {
		t.Fatalf("unknown type: %d %q", resp.Code, resp.Remark)
	}
}

func TestPullSQL92BadHeartbeatExpression(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	putSQLSet(t, b, "T")
	sendHeartbeat(t, c, "c1", "g", sqlSub("T", "a BETWEEN", 1))
	resp := call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0))
	if resp.Code != protocol.ResponseFilterDataNotExist || len(resp.Body) != 0 {
		t.Fatalf("%d %q", resp.Code, resp.Remark)
	}
	t.Log(resp.Remark)
	// A newer, valid subscription replaces it.
	sendHeartbeat(t, c, "c1", "g", sqlSub("T", "a BETWEEN 5 AND 9", 2))
	checkPull(t, call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0)), pullWant{0, 6, 0, 6, "m5"})
}

func checkClientConfig(t *testing.T, b *Broker, exprType, expr string) *protocol.Command {
	t.Helper()
	c, err := remoting.Dial(t.Context(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := protocol.NewRequest(protocol.CheckClientConfig, nil)
	req.Body = []byte(fmt.Sprintf(`{"clientId":"10.0.0.1@1","group":"g","subscriptionData":{"classFilterMode":false,`+
		`"topic":"T","subString":%q,"tagsSet":[],"codeSet":[],"subVersion":1,"expressionType":%q}}`, expr, exprType))
	return call(t, c, req)
}

func TestCheckClientConfig(t *testing.T) {
	b, _ := startBroker(t, nil)
	for _, tc := range []struct {
		typ, expr string
		code      int16
	}{
		{"TAG", "a || b", 0},
		{"SQL92", "a BETWEEN 0 AND 3 AND b IN ('x','y')", 0},
		{"SQL92", "a BETWEEN 3 AND 0", protocol.ResponseSubscriptionParseFailed},
		{"SQL92", "a IN (1)", protocol.ResponseSubscriptionParseFailed},
		{"SQL92", "", protocol.ResponseSubscriptionParseFailed},
		{"XPATH", "a", protocol.ResponseSubscriptionParseFailed},
	} {
		resp := checkClientConfig(t, b, tc.typ, tc.expr)
		if resp.Code != tc.code {
			t.Errorf("%s %q: %d %q, want %d", tc.typ, tc.expr, resp.Code, resp.Remark, tc.code)
		}
	}
	c, err := remoting.Dial(t.Context(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	noSub := protocol.NewRequest(protocol.CheckClientConfig, nil)
	noSub.Body = []byte(`{"clientId":"10.0.0.1@1","group":"g"}`)
	if resp := call(t, c, noSub); resp.Code != protocol.ResponseSuccess {
		t.Fatalf("no subscription: %d %q", resp.Code, resp.Remark)
	}
	bad := protocol.NewRequest(protocol.CheckClientConfig, nil)
	bad.Body = []byte(`{"clientId":`)
	if resp := call(t, c, bad); resp.Code != protocol.ResponseSystemError {
		t.Fatalf("bad body: %d %q", resp.Code, resp.Remark)
	}
	off, _ := startBroker(t, func(cfg *Config) { cfg.EnablePropertyFilter = false })
	resp := checkClientConfig(t, off, "SQL92", "a = 1")
	if resp.Code != protocol.ResponseSystemError || resp.Remark != sqlNotSupportedRemark("SQL92") {
		t.Fatalf("disabled: %d %q", resp.Code, resp.Remark)
	}
	if resp := checkClientConfig(t, off, "TAG", "*"); resp.Code != 0 {
		t.Fatalf("disabled, TAG: %d", resp.Code)
	}
}

func TestLongPollWokenOnlyBySQLMatch(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	sendHeartbeat(t, c, "c1", "g", sqlSub("T", "a = 1", 1))
	done := make(chan *protocol.Command, 1)
	go func() {
		resp, _ := c.Invoke(t.Context(), pullReq("g", "T", 0, 0, 32, protocol.PullFlagSuspend, 20000))
		done <- resp
	}()
	waitFor(t, "parked pull", func() bool { return b.pulls.Len() == 1 })
	putProps(t, b, "T", 0, map[string]string{message.PropTags: "no", "a": "2"})
	time.Sleep(200 * time.Millisecond)
	if b.pulls.Len() != 1 {
		t.Fatal("woken by a message the filter rejects")
	}
	putProps(t, b, "T", 0, map[string]string{message.PropTags: "yes", "a": "1"})
	select {
	case resp := <-done:
		checkPull(t, resp, pullWant{0, 2, 0, 2, "yes"})
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by a matching message")
	}
}

func TestEnablePropertyFilterKey(t *testing.T) {
	cfg := NewConfig()
	if !cfg.EnablePropertyFilter {
		t.Fatal("SQL92 filters off by default")
	}
	if _, err := ApplyProperties(map[string]string{"enablePropertyFilter": "false"}, &cfg); err != nil || cfg.EnablePropertyFilter {
		t.Fatalf("%v %v", err, cfg.EnablePropertyFilter)
	}
}

func TestExprCacheBounded(t *testing.T) {
	c := &exprCache{m: map[string]*compiledSQL{}}
	first := c.get("SQL92", "a = 0")
	if c.get("SQL92", "a = 0") != first {
		t.Fatal("not cached")
	}
	for i := 1; i <= sqlCacheEntries+10; i++ {
		c.get("SQL92", fmt.Sprintf("a = %d", i))
	}
	if len(c.m) > sqlCacheEntries {
		t.Fatalf("%d entries", len(c.m))
	}
	if e := c.get("SQL92", "a ="); e.err == nil || c.get("SQL92", "a =") != e {
		t.Fatal("errors are not cached")
	}
}

// sqlRecord encodes a stored record with a typical property set.
func sqlRecord(i int) []byte {
	m := &message.Message{Topic: "T", BornTimestamp: time.Now().UnixMilli(),
		BornHost: netip.MustParseAddrPort("127.0.0.1:40000"), StoreHost: netip.MustParseAddrPort("127.0.0.1:10911"),
		Body: make([]byte, 100), Properties: message.EncodeProperties(map[string]string{
			message.PropTags: "TagA", message.PropKeys: "key-" + strconv.Itoa(i), "a": strconv.Itoa(i % 10),
			"b": string("xyz"[i%3]), message.PropUniqKey: "7F0000010001000000000000000000" + strconv.Itoa(10+i%90),
			"WAIT": "true"})}
	buf := make([]byte, m.Size())
	m.Encode(buf, message.BodyCRC(m.Body), int64(i), 0, time.Now().UnixMilli())
	return buf
}

// BenchmarkSQLMatchRecord: one message through the broker's SQL92 filter
// (record parse, property lookups in the stored properties string, a
// 3-term expression).
func BenchmarkSQLMatchRecord(b *testing.B) {
	sub := newSubscription(protocol.SubscriptionData{Topic: "T", ExpressionType: protocol.ExpressionTypeSQL92,
		SubString: "a BETWEEN 0 AND 3 AND b IN ('x', 'y') AND c IS NULL"})
	rec := sqlRecord(1)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if !sub.filter.MatchRecord(rec) {
			b.Fatal("no match")
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time: on a shared, overloaded
// machine it measures a single-goroutine loop better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPullSQL92Match10Percent: pulls through the engine with a SQL92
// filter that selects one message in ten, all records in memory. Reports
// scanned and delivered messages per second.
func BenchmarkPullSQL92Match10Percent(b *testing.B) {
	benchPullFilter(b, protocol.ExpressionTypeSQL92, "a = 3")
}

// BenchmarkPullTagMatch10Percent is the same scan with a tag filter of the
// same selectivity, for comparison.
func BenchmarkPullTagMatch10Percent(b *testing.B) {
	benchPullFilter(b, protocol.ExpressionTypeTag, "Tag3")
}

func benchPullFilter(b *testing.B, exprType, expr string) {
	s, err := engine.Open(engine.Config{Dir: b.TempDir(), MappedFileSizeCommitLog: 64 << 20,
		ConsumeQueueEntriesPerFile: 100000, MaxHashSlotNum: 1000, MaxIndexNum: 4000, FlushDiskType: engine.AsyncFlush,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 20000
	for i := 0; i < n; i++ {
		props := map[string]string{message.PropTags: "Tag" + strconv.Itoa(i%10), "a": strconv.Itoa(i % 10),
			message.PropKeys: "key-" + strconv.Itoa(i), "b": "x"}
		m := &message.Message{Topic: "T", BornTimestamp: time.Now().UnixMilli(),
			BornHost: netip.MustParseAddrPort("127.0.0.1:40000"), StoreHost: netip.MustParseAddrPort("127.0.0.1:10911"),
			Body: make([]byte, 256), Properties: message.EncodeProperties(props)}
		if r := s.PutMessage(m); !r.Status.Stored() {
			b.Fatal(r.Err)
		}
	}
	for s.MaxOffsetInQueue("T", 0) < n {
		time.Sleep(time.Millisecond)
	}
	sub := newSubscription(protocol.SubscriptionData{Topic: "T", ExpressionType: exprType, SubString: expr})
	f := sub.filter.messageFilter()
	var scanned, delivered int64
	b.ResetTimer()
	start := cpuTime()
	for b.Loop() {
		for off := int64(0); off < n; {
			r := s.GetMessage("T", 0, off, 32, f)
			scanned += r.NextBeginOffset - off
			delivered += int64(len(r.Messages))
			off = r.NextBeginOffset
			r.Release()
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(scanned), "cpu-ns/scanned")
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(scanned)/sec, "scanned/s")
	b.ReportMetric(float64(delivered)/sec, "delivered/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(scanned), "ns/scanned")
}

// FuzzScanProps: the one-pass property scan answers as
// message.LookupProperty does, for any properties string.
func FuzzScanProps(f *testing.F) {
	f.Add("a\x011\x02b\x012", "a", "b")
	f.Add("xa\x011\x02a\x01\x02a\x013", "a", "x")
	f.Add("a\x01\x02a\x012\x02", "a", "b")
	f.Add("TAGS\x01T\x02KEYS\x01k", "TAGS", "c")
	f.Fuzz(func(t *testing.T, props, k1, k2 string) {
		if k1 == k2 {
			return // an expression's property names are distinct
		}
		keys := []string{k1, k2}
		var vals [maxScanKeys]string
		found := scanProps(props, keys, &vals)
		for i, k := range keys {
			if k == "" || strings.ContainsAny(k, "\x01\x02") {
				continue // not an identifier
			}
			wv, wok := message.LookupProperty(props, k)
			if ok := found&(1<<i) != 0; ok != wok || ok && vals[i] != wv {
				t.Fatalf("scan(%q) %q = %q %v, want %q %v", props, k, vals[i], ok, wv, wok)
			}
		}
	})
}
