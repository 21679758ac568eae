package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/namesrv"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func sendBackReq(group string, off int64) *protocol.Command {
	return protocol.NewRequest(protocol.ConsumerSendMsgBack, &protocol.ConsumerSendMsgBackRequestHeader{
		Offset: off, Group: group, MaxReconsumeTimes: 2, HasMaxReconsumeTimes: true})
}

func heartbeatReq(t *testing.T, consumerGroup, producerGroup string) *protocol.Command {
	t.Helper()
	hb := protocol.HeartbeatData{ClientID: "c1"}
	if consumerGroup != "" {
		hb.ConsumerDataSet = []protocol.ConsumerData{{GroupName: consumerGroup, ConsumeType: "CONSUME_PASSIVELY",
			MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET"}}
	}
	if producerGroup != "" {
		hb.ProducerDataSet = []protocol.ProducerData{{GroupName: producerGroup}}
	}
	body, err := json.Marshal(&hb)
	if err != nil {
		t.Fatal(err)
	}
	req := protocol.NewRequest(protocol.HeartBeat, nil)
	req.Body = body
	return req
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// The first attack: a 1.5 MB group name in CONSUMER_SEND_MSG_BACK
// created %RETRY%<group> before any check.
func TestInvalidGroupNamesCreateNothing(t *testing.T) {
	b, c := startBroker(t, nil)
	rh := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("LimT", 0, ""), []byte("x")))
	off := offsetOfID(t, b, rh.MsgID)
	topicsBefore, sizeBefore := len(b.topics.Names()), fileSize(t, b.topics.path)
	for _, g := range []string{strings.Repeat("g", 1_500_000), strings.Repeat("g", maxGroupNameLength+1), "a b", "a@b", ""} {
		expectCode(t, call(t, c, sendBackReq(g, off)), protocol.ResponseSystemError)
		if g != "" {
			expectCode(t, call(t, c, heartbeatReq(t, g, "")), protocol.ResponseSystemError)
			expectCode(t, call(t, c, heartbeatReq(t, "", g)), protocol.ResponseSystemError)
		}
	}
	if n := len(b.topics.Names()); n != topicsBefore {
		t.Fatalf("%d topics after invalid groups, %d before", n, topicsBefore)
	}
	if s := fileSize(t, b.topics.path); s != sizeBefore {
		t.Fatalf("topics file %d bytes, was %d", s, sizeBefore)
	}
	if len(b.groups.Names()) != 0 {
		t.Fatalf("groups created: %v", b.groups.Names())
	}
	// The longest valid name works and yields a valid retry topic.
	g := strings.Repeat("g", maxGroupNameLength)
	expectCode(t, call(t, c, sendBackReq(g, off)), protocol.ResponseSuccess)
	if _, ok := b.topics.Get(RetryGroupPrefix + g); !ok {
		t.Fatal("retry topic of the longest group missing")
	}
}

func TestAutoCreateCaps(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) {
		cfg.AutoCreateSubscriptionGroupMaxCount = 2
	})
	base := len(b.topics.Names())
	b.topics.mu.Lock()
	b.topics.autoMax.Store(int64(base + 2)) // two more topics may be auto-created
	b.topics.mu.Unlock()
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("Auto1", 0, ""), []byte("x")))
	rh := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("Auto2", 0, ""), []byte("x")))
	resp := produce(t, c, protocol.SendMessage, sendHeader("Auto3", 0, ""), []byte("x"))
	expectCode(t, resp, protocol.ResponseTopicNotExist)
	if !strings.Contains(resp.Remark, "autoCreateTopicMaxCount") {
		t.Fatalf("remark %q", resp.Remark)
	}
	expectCode(t, call(t, c, heartbeatReq(t, "g1", "")), protocol.ResponseSuccess)
	expectCode(t, call(t, c, heartbeatReq(t, "g2", "")), protocol.ResponseSuccess)
	off := offsetOfID(t, b, rh.MsgID)
	resp = call(t, c, sendBackReq("g3", off))
	expectCode(t, resp, protocol.ResponseSubscriptionGroupNotExist)
	if !strings.Contains(resp.Remark, "autoCreateSubscriptionGroupMaxCount") {
		t.Fatalf("remark %q", resp.Remark)
	}
	if n := len(b.groups.Names()); n != 2 {
		t.Fatalf("%d groups", n)
	}
	// Retry topics of g1/g2 are beyond the topic cap: not created, logged.
	if n := len(b.topics.Names()); n != base+2 {
		t.Fatalf("%d topics, cap %d", n, base+2)
	}
	// Auto-created groups reach the file on the periodic flush.
	if err := b.groups.persistDirty(); err != nil {
		t.Fatal(err)
	}
	var f protocol.SubscriptionGroupWrapper
	if err := loadJSON(b.groups.path, &f); err != nil || len(f.SubscriptionGroupTable) != 2 {
		t.Fatalf("group file: %v %v", err, f.SubscriptionGroupTable)
	}
}

// Auto-created groups not yet flushed are written at shutdown.
func TestAutoCreatedGroupsSurviveRestart(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.FlushConsumerOffsetInterval = time.Hour })
	expectCode(t, call(t, c, heartbeatReq(t, "g-restart", "")), protocol.ResponseSuccess)
	if fileSize(t, b.groups.path) != 0 {
		t.Fatal("group file written per auto-created group")
	}
	nb, _ := restartBroker(t, b)
	if _, ok := nb.groups.Lookup("g-restart"); !ok {
		t.Fatal("auto-created group lost at shutdown")
	}
}

func TestQueueNumbersCapped(t *testing.T) {
	b, c := startBroker(t, nil)
	expectCode(t, call(t, c, createTopicReq("Big", int32(b.cfg.MaxQueueNums)+1)), protocol.ResponseSystemError)
	expectCode(t, call(t, c, createTopicReq("Big", int32(b.cfg.MaxQueueNums))), protocol.ResponseSuccess)
	for _, n := range []int32{math.MaxInt32, -1} {
		g := protocol.NewSubscriptionGroupConfig("huge")
		g.RetryQueueNums = n
		req := protocol.NewRequest(protocol.UpdateAndCreateSubscriptionGroup, nil)
		req.Body, _ = json.Marshal(&g)
		expectCode(t, call(t, c, req), protocol.ResponseSystemError)
	}
	bad := protocol.NewSubscriptionGroupConfig("bad name")
	req := protocol.NewRequest(protocol.UpdateAndCreateSubscriptionGroup, nil)
	req.Body, _ = json.Marshal(&bad)
	expectCode(t, call(t, c, req), protocol.ResponseSystemError)
	if len(b.groups.Names()) != 0 {
		t.Fatal(b.groups.Names())
	}
}

// Persisted state written before the limits existed is vetted at load.
func TestLoadDropsInvalidNamesAndCapsQueues(t *testing.T) {
	b, _ := startBroker(t, nil)
	dir := b.cfg.Store.Dir
	b.topics.mu.Lock()
	long := strings.Repeat("x", 2000)
	b.topics.setLocked(topicConfig(long, 1, 6))
	b.topics.setLocked(topicConfig("%RETRY%huge", math.MaxInt32, 6))
	if err := b.topics.persistLocked(); err != nil {
		t.Fatal(err)
	}
	b.topics.mu.Unlock()
	g := protocol.NewSubscriptionGroupConfig("huge")
	g.RetryQueueNums = math.MaxInt32
	if err := b.groups.Put(g); err != nil {
		t.Fatal(err)
	}
	nb, _ := restartBroker(t, b)
	if nb.cfg.Store.Dir != dir {
		t.Fatal("restart used another store")
	}
	if _, ok := nb.topics.Get(long); ok {
		t.Fatal("invalid topic kept")
	}
	if tc, _ := nb.topics.Get("%RETRY%huge"); tc.ReadQueueNums != int32(nb.cfg.MaxQueueNums) {
		t.Fatalf("queues %d", tc.ReadQueueNums)
	}
	if g, _ := nb.groups.Lookup("huge"); g.RetryQueueNums != int32(nb.cfg.MaxQueueNums) {
		t.Fatalf("retryQueueNums %d", g.RetryQueueNums)
	}
}

// batchOf builds a batch body of n entries, each with props.
func batchOf(n int, props string) []byte {
	var out []byte
	for range n {
		total := batchEntryFixed + 1 + len(props)
		e := make([]byte, 0, total)
		e = appendU32(e, uint32(total))
		e = appendU32(e, 0) // magic
		e = appendU32(e, 0) // body crc
		e = appendU32(e, 0) // flag
		e = appendU32(e, 1) // body length
		e = append(e, 'x')
		e = append(e, byte(len(props)>>8), byte(len(props)))
		e = append(e, props...)
		out = append(out, e...)
	}
	return out
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func TestBatchLimits(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) {
		cfg.MaxBatchMessageNums = 100
		cfg.MaxBatchPropertiesBytes = 64 << 10
	})
	batch := func(n int, headerProps string) *protocol.Command {
		h := sendHeader("BatchLim", 0, headerProps)
		h.Batch = true
		return produce(t, c, protocol.SendBatchMessage, h, batchOf(n, "k\x01v"))
	}
	mustSendOK(t, batch(100, "p\x01v"))
	expectCode(t, batch(101, "p\x01v"), protocol.ResponseMessageIllegal)
	// 20 entries x 4 KB of header properties > 64 KB: refused before copying.
	big := "p\x01" + strings.Repeat("v", 4<<10)
	resp := batch(20, big)
	expectCode(t, resp, protocol.ResponseMessageIllegal)
	if !strings.Contains(resp.Remark, "maxBatchPropertiesBytes") {
		t.Fatalf("remark %q", resp.Remark)
	}
	// Header properties beyond Java's 32767 bytes: refused for any send.
	expectCode(t, batch(1, "p\x01"+strings.Repeat("v", 40<<10)), protocol.ResponseMessageIllegal)
	awaitCond(t, "dispatch", func() bool { return b.store.DispatchLag() == 0 }) // consume queues lag the ack
	if n := b.store.MaxOffsetInQueue("BatchLim", 0); n != 100 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestOffsetsOnlyForExistingQueues(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "OT", 2)
	updateOffset(t, c, "g", "OT", 1, 5)
	for _, tc := range []struct {
		group, topic string
		queue        int32
		code         int16
	}{
		{"g", "NoSuchTopic", 0, protocol.ResponseTopicNotExist},
		{"g", "a@b", 0, protocol.ResponseTopicNotExist},
		{"g", "OT", 2, protocol.ResponseSystemError},
		{"g", "OT", -1, protocol.ResponseSystemError},
		{"g@x", "OT", 0, protocol.ResponseSystemError},
		{strings.Repeat("g", 200), "OT", 0, protocol.ResponseSystemError},
	} {
		req := protocol.NewRequest(protocol.UpdateConsumerOffset, &protocol.UpdateConsumerOffsetRequestHeader{
			ConsumerGroup: tc.group, Topic: tc.topic, QueueID: tc.queue, CommitOffset: 1})
		if resp := call(t, c, req); resp.Code != tc.code {
			t.Errorf("%.20s/%s/%d: code %d %q, want %d", tc.group, tc.topic, tc.queue, resp.Code, resp.Remark, tc.code)
		}
	}
	if err := b.offsets.persist(); err != nil {
		t.Fatal(err)
	}
	nb, _ := restartBroker(t, b)
	if off, ok := nb.offsets.Query("g", "OT", 1); !ok || off != 5 {
		t.Fatalf("offset after reload %d %v", off, ok)
	}
	if topics := nb.offsets.Topics("g"); len(topics) != 1 {
		t.Fatalf("offset topics %v", topics)
	}
}

// Registration keeps working with 100k topics: the body goes compressed
// and the nameserver routes every topic.
func TestRegisterHundredThousandTopics(t *testing.T) {
	if testing.Short() {
		t.Skip("100k topics: a few seconds")
	}
	ns, nsAddr := startNamesrv(t)
	b, _ := startBroker(t, func(cfg *Config) {
		cfg.NamesrvAddrs = []string{nsAddr}
		cfg.RegisterNameServerPeriod = time.Hour
	})
	b.topics.mu.Lock()
	for i := range 100_000 {
		name := "ManyTopics-" + strconv.Itoa(i) + "-" + strings.Repeat("p", 40)
		b.topics.setLocked(topicConfig(name, 8, 6))
	}
	b.topics.version.Counter++
	b.topics.mu.Unlock()
	body, err := b.registerBody()
	if err != nil || !body.compressed {
		t.Fatalf("register body: %v compressed=%v", err, body != nil && body.compressed)
	}
	t.Logf("100k topics: %d bytes compressed", len(body.data))
	b.registerAll() // or asks the running round for another
	last := "ManyTopics-99999-" + strings.Repeat("p", 40)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := ns.TopicRoute(last); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("topic 99999 not routed")
		}
	}
	if _, ok := ns.TopicRoute(TopicAutoCreate); !ok {
		t.Fatal("TBW102 not routed")
	}
}

// A body the nameserver cannot decode never drops the broker: it keeps
// the last good registration live.
func TestBadRegistrationKeepsLastGood(t *testing.T) {
	ns, nsAddr := startNamesrv(t)
	b, _ := startBroker(t, func(cfg *Config) {
		cfg.NamesrvAddrs = []string{nsAddr}
		cfg.RegisterNameServerPeriod = time.Hour
	})
	waitFor(t, "routed and recorded as the last good body", func() bool {
		_, ok := ns.TopicRoute(TopicAutoCreate)
		return ok && b.reg.lastGood.Load() != nil
	})
	good := b.reg.lastGood.Load()
	bad := &registerBody{data: []byte("not zlib"), compressed: true}
	b.registerTo(context.Background(), nsAddr, bad)
	if b.reg.lastGood.Load() != good {
		t.Fatal("a refused body replaced the last good one")
	}
	if _, ok := ns.TopicRoute(TopicAutoCreate); !ok {
		t.Fatal("broker dropped from routes by a bad registration")
	}
}

// startNamesrv starts a nameserver on a loopback port for the test.
func startNamesrv(t *testing.T) (*namesrv.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := namesrv.New(namesrv.Config{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	return ns, ln.Addr().String()
}

// Concurrent auto-creations share journal fsyncs and every one is on
// disk (topics.json or its journal) when its call returns.
func TestConcurrentTopicCreationsPersisted(t *testing.T) {
	b, _ := startBroker(t, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := b.topics.CreateIfMissing("Conc"+strconv.Itoa(i), 2, 6); err != nil {
				t.Error(err)
			}
			if _, ok := topicsOnDisk(t, b.topics.path)["Conc"+strconv.Itoa(i)]; !ok {
				t.Errorf("topic %d not on disk when its creation returned", i)
			}
		})
	}
	wg.Wait()
}

func TestRefusalLogRateBounded(t *testing.T) {
	var buf bytes.Buffer
	b := &Broker{log: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 3 {
		b.limits.hit(b, "x", "r", nil)
	}
	b.limits.mu.Lock()
	b.limits.last["x"] = time.Now().Add(-2 * time.Second)
	b.limits.mu.Unlock()
	b.limits.hit(b, "x", "r", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "refusedSinceLastLine=1") || !strings.Contains(lines[1], "refusedSinceLastLine=3") {
		t.Fatalf("log:\n%s", buf.String())
	}
}

// A heartbeat naming groups that do not exist and are not created (here:
// beyond autoCreateSubscriptionGroupMaxCount) registers nothing: the
// consumer table must not grow with made-up group names past the cap.
func TestHeartbeatUnknownGroupsNotRegistered(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.AutoCreateSubscriptionGroupMaxCount = 1 })
	expectCode(t, call(t, c, heartbeatReq(t, "real", "")), protocol.ResponseSuccess)
	for i := range 50 {
		expectCode(t, call(t, c, heartbeatReq(t, "ghost"+strconv.Itoa(i), "")), protocol.ResponseSuccess)
	}
	b.consumers.mu.RLock()
	n := len(b.consumers.groups)
	_, real := b.consumers.groups["real"]
	b.consumers.mu.RUnlock()
	if n != 1 || !real {
		t.Fatalf("%d consumer groups registered (real: %v), want only the one that exists", n, real)
	}
}

// A send to %RETRY%<group> of a group that does not exist (and is not
// auto-created) is refused before the retry topic is created.
func TestRetrySendToUnknownGroupCreatesNoTopic(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.AutoCreateSubscriptionGroup = false })
	resp := produce(t, c, protocol.SendMessage, sendHeader(RetryGroupPrefix+"ghost", 0, ""), []byte("x"))
	expectCode(t, resp, protocol.ResponseSubscriptionGroupNotExist)
	if _, ok := b.topics.Get(RetryGroupPrefix + "ghost"); ok {
		t.Fatal("retry topic of a group that does not exist was created")
	}
}

// Heartbeats cannot register unlimited made-up producer groups: beyond
// maxProducerGroups (all connections) or maxProducerGroupsPerConnection a
// new group is refused with SYSTEM_ERROR; refreshing one still works.
func TestProducerGroupsCapped(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.MaxProducerGroups = 5; cfg.MaxProducerGroupsPerConnection = 3 })
	for i := range 3 {
		expectCode(t, call(t, c, heartbeatReq(t, "", "pg"+strconv.Itoa(i))), protocol.ResponseSuccess)
	}
	expectCode(t, call(t, c, heartbeatReq(t, "", "pg3")), protocol.ResponseSystemError) // per connection
	expectCode(t, call(t, c, heartbeatReq(t, "", "pg0")), protocol.ResponseSuccess)     // refresh
	c2, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for i := 3; i < 5; i++ {
		expectCode(t, call(t, c2, heartbeatReq(t, "", "pg"+strconv.Itoa(i))), protocol.ResponseSuccess)
	}
	expectCode(t, call(t, c2, heartbeatReq(t, "", "pg5")), protocol.ResponseSystemError) // total
	if g := b.producers.Groups(); len(g) != 5 {
		t.Fatalf("producer groups %v", g)
	}
	c.Close()
	waitFor(t, "c's registrations removed", func() bool { return len(b.producers.Groups()) == 2 }) // pg3, pg4
	expectCode(t, call(t, c2, heartbeatReq(t, "", "pg5")), protocol.ResponseSuccess)
}

// topicsOnDisk is the topic table a restart would load from path and its
// journal (journal.go).
func topicsOnDisk(t *testing.T, path string) map[string]protocol.TopicConfig {
	t.Helper()
	var f topicFile
	if err := loadJSON(path, &f); err != nil {
		t.Error(err)
	}
	if f.TopicConfigTable == nil {
		f.TopicConfigTable = map[string]protocol.TopicConfig{}
	}
	err := readJournal(path+journalSuffix, f.DataVersion.Counter, slog.Default(), func(_ int64, c json.RawMessage) error {
		var tc protocol.TopicConfig
		if err := json.Unmarshal(c, &tc); err != nil {
			return err
		}
		f.TopicConfigTable[tc.TopicName] = tc
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return f.TopicConfigTable
}
