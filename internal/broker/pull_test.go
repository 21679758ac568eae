package broker

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// --- helpers shared by the client/pull/offset/lock tests ---

func addTopic(t *testing.T, b *Broker, name string, queues int32) {
	t.Helper()
	if err := b.topics.Put(topicConfig(name, queues, protocol.PermRead|protocol.PermWrite)); err != nil {
		t.Fatal(err)
	}
}

// putMsg stores one message with the given tag ("" = none) and waits until
// its consume-queue entry exists.
func putMsg(t *testing.T, b *Broker, topic string, queueID int32, tags string) {
	t.Helper()
	props := map[string]string{}
	if tags != "" {
		props[message.PropTags] = tags
	}
	putProps(t, b, topic, queueID, props)
}

// putProps stores one message with the given properties and waits until
// its consume-queue entry exists.
func putProps(t *testing.T, b *Broker, topic string, queueID int32, props map[string]string) {
	t.Helper()
	tags := props[message.PropTags]
	before := b.store.MaxOffsetInQueue(topic, queueID)
	m := &message.Message{Topic: topic, QueueID: queueID, BornTimestamp: time.Now().UnixMilli(),
		BornHost: netip.MustParseAddrPort("127.0.0.1:40000"), StoreHost: b.storeHost,
		Body: []byte("body-" + tags), Properties: message.EncodeProperties(props)}
	if r := b.store.PutMessage(m); !r.Status.Stored() {
		t.Fatalf("put: %v %v", r.Status, r.Err)
	}
	waitFor(t, "consume queue entry", func() bool { return b.store.MaxOffsetInQueue(topic, queueID) > before })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type subSpec struct {
	topic, expr string
	version     int64
	exprType    string
}

// heartbeat registers clientID in group with subs over c.
func sendHeartbeat(t *testing.T, c *remoting.Client, clientID, group string, subs ...subSpec) {
	t.Helper()
	cd := protocol.ConsumerData{GroupName: group, ConsumeType: protocol.ConsumeTypePassively,
		MessageModel: protocol.MessageModelClustering, ConsumeFromWhere: protocol.ConsumeFromLastOffset}
	for _, s := range subs {
		et := s.exprType
		if et == "" {
			et = protocol.ExpressionTypeTag
		}
		sd := protocol.SubscriptionData{Topic: s.topic, SubString: s.expr, SubVersion: s.version, ExpressionType: et,
			TagsSet: []string{}, CodeSet: protocol.CodeSet{}}
		if et == protocol.ExpressionTypeTag && !isSubAll(s.expr) {
			sd.TagsSet = splitTags(s.expr)
		}
		cd.SubscriptionDataSet = append(cd.SubscriptionDataSet, sd)
	}
	hb := &protocol.HeartbeatData{ClientID: clientID, ConsumerDataSet: []protocol.ConsumerData{cd}}
	body, err := hb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	rawHeartbeat(t, c, body)
}

func rawHeartbeat(t *testing.T, c *remoting.Client, body []byte) {
	t.Helper()
	req := protocol.NewRequest(protocol.HeartBeat, nil)
	req.Body = body
	if resp := call(t, c, req); resp.Code != protocol.ResponseSuccess {
		t.Fatalf("heartbeat: %d %s", resp.Code, resp.Remark)
	}
}

func pullReq(group, topic string, queueID int32, offset int64, maxNums, sysFlag int32, suspendMs int64) *protocol.Command {
	return protocol.NewRequest(protocol.PullMessage, &protocol.PullMessageRequestHeader{
		ConsumerGroup: group, Topic: topic, QueueID: queueID, QueueOffset: offset, MaxMsgNums: maxNums,
		SysFlag: sysFlag, SuspendTimeoutMillis: suspendMs, ExpressionType: protocol.ExpressionTypeTag,
	})
}

// bodyTags returns the TAGS of every record of a pull body.
func bodyTags(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for len(body) > 0 {
		v, err := message.Parse(body)
		if err != nil {
			t.Fatalf("bad pull body: %v", err)
		}
		tags, _ := v.Property(message.PropTags)
		out = append(out, strings.Clone(tags))
		body = body[len(v.Raw):]
	}
	return out
}

type pullWant struct {
	code          int16
	next, min, mx int64
	tags          string // records' tags joined with ","
}

func checkPull(t *testing.T, resp *protocol.Command, w pullWant) {
	t.Helper()
	if resp.Code != w.code {
		t.Fatalf("code %d (%s), want %d", resp.Code, resp.Remark, w.code)
	}
	want := map[string]int64{"nextBeginOffset": w.next, "minOffset": w.min, "maxOffset": w.mx, "suggestWhichBrokerId": 0}
	for k, v := range want {
		got, ok := resp.ExtFields[k]
		if !ok || got != strconv.FormatInt(v, 10) {
			t.Errorf("%s = %q (present %v), want %d", k, got, ok, v)
		}
	}
	if got := strings.Join(bodyTags(t, resp.Body), ","); got != w.tags {
		t.Errorf("records %q, want %q", got, w.tags)
	}
}

// --- tests ---

func TestPullStatuses(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 2)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "*"})
	for _, tag := range []string{"a", "b", "c"} {
		putMsg(t, b, "T", 0, tag)
	}
	cases := []struct {
		name    string
		queue   int32
		offset  int64
		maxNums int32
		want    pullWant
	}{
		{"found", 0, 0, 32, pullWant{0, 3, 0, 3, "a,b,c"}},
		{"found from middle, maxMsgNums 1", 0, 1, 1, pullWant{0, 2, 0, 3, "b"}},
		{"maxMsgNums 0 still returns one", 0, 2, 0, pullWant{0, 3, 0, 3, "c"}},
		{"overflow one", 0, 3, 32, pullWant{19, 3, 0, 3, ""}},
		{"overflow badly, min 0", 0, 9, 32, pullWant{21, 0, 0, 3, ""}},
		{"empty queue at 0", 1, 0, 32, pullWant{19, 0, 0, 0, ""}},
		{"empty queue past 0", 1, 4, 32, pullWant{21, 0, 0, 0, ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPull(t, call(t, c, pullReq("g", "T", tc.queue, tc.offset, tc.maxNums, 0, 0)), tc.want)
		})
	}
}

func TestPullNoLogicQueue(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 4)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "*"})
	checkPull(t, call(t, c, pullReq("g", "T", 3, 0, 32, 0, 0)), pullWant{19, 0, 0, 0, ""})
	checkPull(t, call(t, c, pullReq("g", "T", 3, 7, 32, 0, 0)), pullWant{21, 0, 0, 0, ""})
}

func TestPullCodeTable(t *testing.T) {
	cases := []struct {
		s      engine.GetStatus
		offset int64
		want   int16
	}{
		{engine.Found, 5, 0}, {engine.NoMatchedMessage, 5, 20}, {engine.MessageWasRemoving, 5, 20},
		{engine.OffsetOverflowOne, 5, 19}, {engine.OffsetFoundNull, 5, 19},
		{engine.NoMessageInQueue, 0, 19}, {engine.NoMessageInQueue, 5, 21},
		{engine.NoMatchedLogicQueue, 0, 19}, {engine.NoMatchedLogicQueue, 5, 21},
		{engine.OffsetTooSmall, 5, 21}, {engine.OffsetOverflowBadly, 5, 21},
		{engine.StoreReadError, 5, 1}, // SYSTEM_ERROR, the reason in the remark
	}
	for _, tc := range cases {
		if got := pullCode(tc.s, tc.offset); got != tc.want {
			t.Errorf("%v at %d: %d, want %d", tc.s, tc.offset, got, tc.want)
		}
	}
}

func TestPullErrors(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 2)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "*", version: 100})
	g := protocol.NewSubscriptionGroupConfig("off")
	g.ConsumeEnable = false
	if err := b.groups.Put(g); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  *protocol.Command
		want int16
	}{
		{"bad queue id", pullReq("g", "T", 2, 0, 32, 0, 0), protocol.ResponseSystemError},
		{"unknown topic", pullReq("g", "NOPE", 0, 0, 32, 0, 0), protocol.ResponseTopicNotExist},
		{"consume disabled", pullReq("off", "T", 0, 0, 32, 0, 0), protocol.ResponseNoPermission},
		{"no heartbeat", pullReq("other", "T", 0, 0, 32, 0, 0), protocol.ResponseSubscriptionNotExist},
		{"topic not subscribed", pullReq("g", TopicSelfTest, 0, 0, 32, 0, 0), protocol.ResponseSubscriptionNotExist},
		{"missing header", protocol.NewRequest(protocol.PullMessage, nil), protocol.ResponseSystemError},
	}
	newer := pullReq("g", "T", 0, 0, 32, 0, 0)
	newer.SetExt("subVersion", "101")
	cases = append(cases, struct {
		name string
		req  *protocol.Command
		want int16
	}{"subscription not latest", newer, protocol.ResponseSubscriptionNotLatest})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if resp := call(t, c, tc.req); resp.Code != tc.want {
				t.Fatalf("code %d (%s), want %d", resp.Code, resp.Remark, tc.want)
			}
		})
	}
}

func TestPullTagFilterByBroker(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	// "Aa" and "BB" share a Java hash code: only the exact tag may pass.
	for _, tag := range []string{"a", "b", "Aa", "", "BB", "a", "c"} {
		putMsg(t, b, "T", 0, tag)
	}
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "a || Aa", version: 1})
	checkPull(t, call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0)), pullWant{0, 7, 0, 7, "a,Aa,a"})
	checkPull(t, call(t, c, pullReq("g", "T", 0, 1, 1, 0, 0)), pullWant{0, 3, 0, 7, "Aa"})

	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "zz", version: 2})
	checkPull(t, call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0)), pullWant{20, 7, 0, 7, ""})

	// Pull consumers send their own subscription (SUBSCRIPTION bit).
	own := pullReq("nohb", "T", 0, 0, 32, protocol.PullFlagSubscription, 0)
	own.SetExt("subscription", "c||b")
	checkPull(t, call(t, c, own), pullWant{0, 7, 0, 7, "b,c"})
	all := pullReq("nohb", "T", 0, 5, 32, protocol.PullFlagSubscription, 0)
	all.SetExt("subscription", "*")
	checkPull(t, call(t, c, all), pullWant{0, 7, 0, 7, "a,c"})
}

func TestPullNonASCIITagWithGoCodeSet(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	putMsg(t, b, "T", 0, "标签")
	putMsg(t, b, "T", 0, "other")
	// What the Go client sends: codes hashed over UTF-8 bytes, as strings.
	body := `{"clientID":"10.0.0.1@1","producerDataSet":[],"consumerDataSet":[{"groupName":"g",` +
		`"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",` +
		`"subscriptionDataSet":[{"classFilterMode":false,"topic":"T","subString":"标签","tagsSet":["标签"],` +
		`"codeSet":["-1853217173"],"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`
	rawHeartbeat(t, c, []byte(body))
	checkPull(t, call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0)), pullWant{0, 2, 0, 2, "标签"})
	info, _ := b.consumers.Group("g")
	if got := info.Subscriptions["T"].CodeSet; len(got) != 1 || got[0] != 857175 {
		t.Fatalf("codes %v, want the Java hash 857175", got)
	}
}

func TestPullSQL92NotSupported(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.EnablePropertyFilter = false })
	addTopic(t, b, "T", 1)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "a > 1", exprType: protocol.ExpressionTypeSQL92})
	resp := call(t, c, pullReq("g", "T", 0, 0, 32, 0, 0))
	if resp.Code != protocol.ResponseSystemError || resp.Remark != "The broker does not support consumer to filter message by SQL92" {
		t.Fatalf("%d %q", resp.Code, resp.Remark)
	}
	own := pullReq("g2", "T", 0, 0, 32, protocol.PullFlagSubscription, 0)
	own.SetExt("subscription", "a > 1")
	own.SetExt("expressionType", protocol.ExpressionTypeSQL92)
	if resp := call(t, c, own); resp.Code != protocol.ResponseSystemError {
		t.Fatalf("request SQL92: %d %q", resp.Code, resp.Remark)
	}
}

func TestPullCommitsOffset(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "*"})
	putMsg(t, b, "T", 0, "a")
	req := pullReq("g", "T", 0, 0, 32, protocol.PullFlagCommitOffset, 0)
	req.SetExt("commitOffset", "1")
	call(t, c, req)
	if off, ok := b.offsets.Query("g", "T", 0); !ok || off != 1 {
		t.Fatalf("committed %d %v, want 1", off, ok)
	}
}

// invokeAsync sends req and returns a channel with its response.
func invokeAsync(c *remoting.Client, req *protocol.Command) <-chan *protocol.Command {
	ch := make(chan *protocol.Command, 1)
	c.InvokeAsync(context.Background(), req, func(resp *protocol.Command, err error) {
		if err != nil {
			resp = protocol.NewResponse(nil, -1, err.Error())
		}
		ch <- resp
	})
	return ch
}

func TestLongPollWokenByArrival(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 2)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "a"})
	putMsg(t, b, "T", 0, "a")
	// Commit bit on the first execution only: the re-execution must not
	// overwrite the offset committed meanwhile.
	req := pullReq("g", "T", 0, 1, 32, protocol.PullFlagSuspend|protocol.PullFlagCommitOffset, 10000)
	req.SetExt("commitOffset", "1")
	ch := invokeAsync(c, req)
	select {
	case resp := <-ch:
		t.Fatalf("answered at once: %d %s", resp.Code, resp.Remark)
	case <-time.After(200 * time.Millisecond):
	}
	if b.pulls.Len() != 1 {
		t.Fatalf("parked %d", b.pulls.Len())
	}
	b.offsets.Commit("g", "T", 0, 5)
	putMsg(t, b, "T", 1, "a")   // other queue: stays parked
	putMsg(t, b, "T", 0, "zzz") // filtered out by tag code: stays parked
	select {
	case resp := <-ch:
		t.Fatalf("woken by a non-matching message: %d", resp.Code)
	case <-time.After(50 * time.Millisecond):
	}
	start := time.Now()
	putMsg(t, b, "T", 0, "a")
	resp := <-ch
	elapsed := time.Since(start)
	checkPull(t, resp, pullWant{0, 3, 0, 3, "a"})
	t.Logf("answered %v after the put", elapsed)
	if elapsed > 300*time.Millisecond {
		t.Errorf("woken after %v", elapsed)
	}
	if off, _ := b.offsets.Query("g", "T", 0); off != 5 {
		t.Errorf("offset %d: the re-execution committed", off)
	}
}

func TestLongPollTimesOut(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 1)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "T", expr: "*"})
	start := time.Now()
	resp := call(t, c, pullReq("g", "T", 0, 0, 32, protocol.PullFlagSuspend, 300))
	elapsed := time.Since(start)
	checkPull(t, resp, pullWant{19, 0, 0, 0, ""})
	if elapsed < 280*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("answered after %v, want ~300ms", elapsed)
	}
	if b.pulls.Len() != 0 {
		t.Fatalf("still parked: %d", b.pulls.Len())
	}
}

func TestShortPolling(t *testing.T) {
	_, c := startBroker(t, func(cfg *Config) {
		cfg.LongPollingEnable = false
		cfg.ShortPollingTimeMills = 150
	})
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	start := time.Now()
	resp := call(t, c, pullReq("g", TopicSelfTest, 0, 0, 32, protocol.PullFlagSuspend, 20000))
	if elapsed := time.Since(start); resp.Code != 19 || elapsed < 140*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("code %d after %v, want 19 after ~150ms", resp.Code, elapsed)
	}
}

func TestLongPollDroppedWhenConnCloses(t *testing.T) {
	b, c := startBroker(t, nil)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	c2, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	invokeAsync(c2, pullReq("g", TopicSelfTest, 0, 0, 32, protocol.PullFlagSuspend, 20000))
	waitFor(t, "parked pull", func() bool { return b.pulls.Len() == 1 })
	c2.Close()
	waitFor(t, "dropped pull", func() bool { return b.pulls.Len() == 0 })
}

func TestShutdownWithParkedPull(t *testing.T) {
	b, c := startBroker(t, nil)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	ch := invokeAsync(c, pullReq("g", TopicSelfTest, 0, 0, 32, protocol.PullFlagSuspend, 20000))
	waitFor(t, "parked pull", func() bool { return b.pulls.Len() == 1 })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	select {
	case <-ch: // 19 or connection closed
	case <-time.After(3 * time.Second):
		t.Fatal("parked pull never finished")
	}
}

func TestPullHoldParksAndWakesDirectly(t *testing.T) {
	// Unit test of the race guard: a message that arrived between the
	// store read and the park wakes the pull at once.
	b, c := startBroker(t, nil)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	woke := make(chan struct{}, 1)
	p := newPullHold(b.log, func(*remoting.Conn, *protocol.Command) { woke <- struct{}{} })
	srvConn := c.Conn
	if !p.park(srvConn, pullReq("g", "X", 0, 0, 1, 2, 1000), "X", 0, 0, nil, time.Second, 0, func() int64 { return 1 }) {
		t.Fatal("not parked")
	}
	select {
	case <-woke:
	case <-time.After(time.Second):
		t.Fatal("not woken by the late-arrival check")
	}
	if p.Len() != 0 {
		t.Fatalf("parked %d", p.Len())
	}
	stop := make(chan struct{})
	close(stop)
	p.run(stop)
	if p.park(srvConn, pullReq("g", "X", 0, 0, 1, 2, 1000), "X", 0, 0, nil, time.Second, 0, func() int64 { return 0 }) {
		t.Fatal("parked after stop")
	}
}
