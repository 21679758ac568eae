package broker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// updateConfig sends UPDATE_BROKER_CONFIG and expects success.
func updateConfig(t *testing.T, c *remoting.Client, body string) string {
	t.Helper()
	req := protocol.NewRequest(protocol.UpdateBrokerConfig, nil)
	req.Body = []byte(body)
	resp := call(t, c, req)
	expectCode(t, resp, protocol.ResponseSuccess)
	return resp.Remark
}

func brokerConfig(t *testing.T, c *remoting.Client) map[string]string {
	t.Helper()
	r := call(t, c, protocol.NewRequest(protocol.GetBrokerConfig, nil))
	expectCode(t, r, protocol.ResponseSuccess)
	props, err := ParseProperties(strings.NewReader(string(r.Body)))
	if err != nil {
		t.Fatal(err)
	}
	return props
}

func TestLiveConfigRemarkAndGet(t *testing.T) {
	_, c := startBroker(t, nil)
	if p := brokerConfig(t, c); p["fileReservedTime"] != "72" || p["deleteWhen"] != "04" || p["diskMaxUsedSpaceRatio"] != "75" {
		t.Fatalf("GET_BROKER_CONFIG shows retention %s/%s/%s, want the store's defaults 72/04/75",
			p["fileReservedTime"], p["deleteWhen"], p["diskMaxUsedSpaceRatio"])
	}
	remark := updateConfig(t, c, "maxMessageSize=2048\nflushConsumerOffsetInterval=3000\n")
	if !strings.Contains(remark, "applied now: maxMessageSize") ||
		!strings.Contains(remark, "takes effect when the broker restarts: flushConsumerOffsetInterval") {
		t.Fatalf("remark %q", remark)
	}
	if p := brokerConfig(t, c); p["maxMessageSize"] != "2048" || p["flushConsumerOffsetInterval"] != "5000" {
		t.Fatalf("GET_BROKER_CONFIG shows maxMessageSize=%s flushConsumerOffsetInterval=%s, want the live 2048 and the running 5000",
			p["maxMessageSize"], p["flushConsumerOffsetInterval"])
	}
	if remark := updateConfig(t, c, "maxMessageSize=8388608\n"); !strings.Contains(remark, "restarts: maxMessageSize above") {
		t.Fatalf("raising maxMessageSize above the store's: remark %q", remark)
	}
}

func TestLiveBrokerPermission(t *testing.T) {
	b, c := startBroker(t, nil)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	pull := func() int16 { return call(t, c, pullReq("g", TopicSelfTest, 0, 0, 32, 0, 0)).Code }
	if code := pull(); code == protocol.ResponseNoPermission {
		t.Fatal("pull refused before the update")
	}
	updateConfig(t, c, "brokerPermission=2")
	if code := pull(); code != protocol.ResponseNoPermission {
		t.Fatalf("pull answered %d with brokerPermission=2", code)
	}
	if tc := b.registerTable().TopicConfigSerializeWrapper.TopicConfigTable[TopicSelfTest]; tc.Perm != 2 {
		t.Fatalf("registered perm %d", tc.Perm)
	}
	if brokerConfig(t, c)["brokerPermission"] != "2" {
		t.Fatal("GET_BROKER_CONFIG does not show brokerPermission=2")
	}
	updateConfig(t, c, "brokerPermission=6")
	if code := pull(); code == protocol.ResponseNoPermission {
		t.Fatal("pull refused after brokerPermission=6")
	}
}

func TestLiveSendLimits(t *testing.T) {
	_, c := startBroker(t, nil)
	send := func(body []byte) int16 {
		return produce(t, c, protocol.SendMessage, sendHeader("LiveT", 0, ""), body).Code
	}
	batch := func(n int) int16 {
		h := sendHeader("LiveT", 0, "")
		h.Batch = true
		return produce(t, c, protocol.SendBatchMessage, h, batchBody(t, n)).Code
	}
	if send(make([]byte, 2048)) != protocol.ResponseSuccess || batch(3) != protocol.ResponseSuccess {
		t.Fatal("sends refused before the update")
	}
	updateConfig(t, c, "maxMessageSize=1024\nmaxBatchMessageNums=2")
	if code := send(make([]byte, 2048)); code != protocol.ResponseMessageIllegal {
		t.Fatalf("2 KiB send answered %d with maxMessageSize=1024", code)
	}
	if code := batch(3); code != protocol.ResponseMessageIllegal {
		t.Fatalf("batch of 3 answered %d with maxBatchMessageNums=2", code)
	}
	updateConfig(t, c, "maxBatchMessageNums=100\nmaxBatchPropertiesBytes=8")
	if code := batch(1); code != protocol.ResponseMessageIllegal {
		t.Fatalf("batch answered %d with maxBatchPropertiesBytes=8", code)
	}
}

func TestLiveQueryReplyBytes(t *testing.T) {
	_, c := startBroker(t, nil)
	for range 3 {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("LiveQ", 0, "KEYS\x01k\x02"), make([]byte, 100)))
	}
	awaitCond(t, "index", func() bool { return len(primitive.DecodeMessage(queryByKey(t, c, "LiveQ", "k", false).Body)) == 3 })
	updateConfig(t, c, "maxQueryReplyBytes=200")
	if n := len(primitive.DecodeMessage(queryByKey(t, c, "LiveQ", "k", false).Body)); n >= 3 {
		t.Fatalf("%d messages in a reply capped at 200 bytes", n)
	}
}

func TestLiveClientKeys(t *testing.T) {
	b, c := startBroker(t, nil)
	sendHeartbeat(t, c, "c0", "g", subSpec{topic: TopicSelfTest, expr: "*"}) // creates g
	updateConfig(t, c, "autoCreateSubscriptionGroup=false\nnotifyConsumerIdsChangedEnable=false\n"+
		"longPollingEnable=false\nshortPollingTimeMills=150\nslaveReadEnable=true")
	if _, ok, _ := b.groups.Get("liveFresh"); ok {
		t.Fatal("group auto-created with autoCreateSubscriptionGroup=false")
	}
	c1, n1 := notifyClient(t, b)
	sendHeartbeat(t, c1, "id1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	expectNoNotify(t, n1)
	start := time.Now()
	resp := call(t, c, pullReq("g", TopicSelfTest, 0, 0, 32, protocol.PullFlagSuspend, 20000))
	if elapsed := time.Since(start); resp.Code != protocol.ResponsePullNotFound || elapsed > 3*time.Second {
		t.Fatalf("code %d after %v, want PULL_NOT_FOUND after ~150ms (short polling)", resp.Code, elapsed)
	}
	if id := b.suggestBroker("g", true); id != 1 {
		t.Fatalf("suggested broker %d for a slow consumer with slaveReadEnable=true", id)
	}
	updateConfig(t, c, "autoCreateSubscriptionGroup=true\nnotifyConsumerIdsChangedEnable=true")
	if _, ok, _ := b.groups.Get("liveFresh"); !ok {
		t.Fatal("group not auto-created with autoCreateSubscriptionGroup=true")
	}
	c2, _ := notifyClient(t, b)
	sendHeartbeat(t, c2, "id2", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	expectNotify(t, n1, "g")
}

// The transaction keys change the running check-back loop: the interval
// at once (the loop started with an hour), the timeout and the check
// limit at the next scan.
func TestLiveTransactionKeys(t *testing.T) {
	b, c := startTxnBroker(t, t.TempDir()) // interval 1 h, timeout 1 s, max 2
	checks := checkListener(t, b, 16)
	updateConfig(t, c, "transactionTimeOut=3600000\ntransactionCheckInterval=50\ntransactionCheckMax=1")
	sendHalfBornNow(t, c)
	select {
	case <-checks:
		t.Fatal("a half younger than transactionTimeOut was checked")
	case <-time.After(300 * time.Millisecond):
	}
	updateConfig(t, c, "transactionTimeOut=1")
	select {
	case <-checks:
	case <-time.After(5 * time.Second):
		t.Fatal("no check-back within 5 s of transactionCheckInterval=50, transactionTimeOut=1")
	}
	waitFor(t, "the half discarded after transactionCheckMax=1", func() bool {
		return queueLen(b, TopicTransCheckMax, 0) == 1
	})
}

// agedSegments writes 2.5 MiB (two sealed 1 MiB segments) to topic and
// dates every commit-log file 100 hours back.
func agedSegments(t *testing.T, b *Broker, c *remoting.Client, topic string) {
	t.Helper()
	body := make([]byte, 64<<10)
	for range 40 {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader(topic, 0, ""), body))
	}
	waitFor(t, "dispatch", func() bool { return b.store.DispatchLag() == 0 })
	old := time.Now().Add(-100 * time.Hour)
	dir := filepath.Join(b.cfg.Store.Dir, "commitlog")
	files, err := os.ReadDir(dir)
	if err != nil || len(files) < 3 {
		t.Fatalf("%d commit-log files, %v", len(files), err)
	}
	for _, f := range files {
		if err := os.Chtimes(filepath.Join(dir, f.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// The deletion keys apply to the store's next retention round.
func TestLiveRetentionKeys(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) {
		cfg.Store.Retention.DiskUsage = func(string) (float64, error) { return 0.5, nil }
		cfg.Store.Retention.Interval = time.Hour // rounds run only when the test says
	})
	agedSegments(t, b, c, "RetT")
	round := func() int64 {
		if err := b.store.RunRetention(); err != nil {
			t.Fatal(err)
		}
		return b.store.MinPhysOffset()
	}
	// 100 h old segments, 72 h retention, but 50% used (< 75%) and not
	// deleteWhen's hour: kept.
	other := (time.Now().Hour() + 12) % 24
	updateConfig(t, c, "deleteWhen="+strconv.Itoa(other))
	if round() != 0 {
		t.Fatal("segments removed outside deleteWhen below diskMaxUsedSpaceRatio")
	}
	// above diskMaxUsedSpaceRatio, but kept for 200 h
	updateConfig(t, c, "diskMaxUsedSpaceRatio=40\nfileReservedTime=200")
	if round() != 0 {
		t.Fatal("segments younger than fileReservedTime=200 removed")
	}
	updateConfig(t, c, "fileReservedTime=48")
	if round() == 0 {
		t.Fatal("expired segments kept with usage above diskMaxUsedSpaceRatio=40")
	}
	if p := brokerConfig(t, c); p["fileReservedTime"] != "48" || p["diskMaxUsedSpaceRatio"] != "40" {
		t.Fatalf("GET_BROKER_CONFIG retention %s/%s", p["fileReservedTime"], p["diskMaxUsedSpaceRatio"])
	}
	for _, bad := range []string{"fileReservedTime=0", "diskMaxUsedSpaceRatio=99", "deleteWhen=25", "deleteWhen=4am"} {
		req := protocol.NewRequest(protocol.UpdateBrokerConfig, nil)
		req.Body = []byte(bad)
		if r := call(t, c, req); r.Code != protocol.ResponseSystemError {
			t.Errorf("%s answered %d", bad, r.Code)
		}
	}
}

// deleteWhen's hour removes expired segments below diskMaxUsedSpaceRatio.
func TestLiveDeleteWhen(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) {
		cfg.Store.Retention.DiskUsage = func(string) (float64, error) { return 0.1, nil }
		cfg.Store.Retention.Interval = time.Hour
		cfg.Store.Retention.DeleteWhen = strconv.Itoa((time.Now().Hour() + 12) % 24)
	})
	agedSegments(t, b, c, "RetW")
	if b.store.RunRetention(); b.store.MinPhysOffset() != 0 {
		t.Fatal("removed outside deleteWhen")
	}
	now := time.Now().Hour()
	updateConfig(t, c, "deleteWhen="+strconv.Itoa(now)+";"+strconv.Itoa((now+1)%24))
	if b.store.RunRetention(); b.store.MinPhysOffset() == 0 {
		t.Fatal("expired segments kept at deleteWhen's hour")
	}
}

func TestLiveTimerMaxDelay(t *testing.T) {
	_, c := startBroker(t, nil)
	timerSend := func() int16 {
		return produce(t, c, protocol.SendMessage, sendHeader("LiveTimer", 0, "TIMER_DELAY_SEC\x01600"), []byte("x")).Code
	}
	if code := timerSend(); code != protocol.ResponseSuccess {
		t.Fatalf("10-minute timer message answered %d", code)
	}
	updateConfig(t, c, "timerMaxDelaySec=60")
	if code := timerSend(); code != protocol.ResponseMessageIllegal {
		t.Fatalf("10-minute timer message answered %d with timerMaxDelaySec=60", code)
	}
}

// The limits.go caps apply to the next creation or registration.
func TestLiveLimits(t *testing.T) {
	b, c := startBroker(t, nil)
	expectCode(t, call(t, c, createTopicReq("LiveQ8", 8)), protocol.ResponseSuccess)
	if _, ok, err := b.groups.Get("liveSeed"); !ok || err != nil {
		t.Fatal("seed group", err)
	}
	topics, groups := len(b.topics.Names()), len(b.groups.Names())
	updateConfig(t, c, "maxQueueNums=4\nautoCreateTopicMaxCount="+strconv.Itoa(topics)+
		"\nautoCreateSubscriptionGroupMaxCount="+strconv.Itoa(groups)+"\nmaxProducerGroups=1")
	expectCode(t, call(t, c, createTopicReq("LiveQ8b", 8)), protocol.ResponseSystemError)
	expectCode(t, call(t, c, createTopicReq("LiveQ4", 4)), protocol.ResponseSuccess)
	expectCode(t, produce(t, c, protocol.SendMessage, sendHeader("LiveAuto", 0, ""), []byte("x")), protocol.ResponseTopicNotExist)
	if _, _, err := b.groups.Get("liveNewGroup"); err == nil {
		t.Fatal("group auto-created beyond autoCreateSubscriptionGroupMaxCount")
	}
	expectCode(t, call(t, c, heartbeatReq(t, "", "livePG1")), protocol.ResponseSuccess)
	expectCode(t, call(t, c, heartbeatReq(t, "", "livePG2")), protocol.ResponseSystemError)
	updateConfig(t, c, "autoCreateTopicMaxCount=10000\nautoCreateSubscriptionGroupMaxCount=10000\nmaxProducerGroups=10")
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("LiveAuto", 0, ""), []byte("x")))
	if _, ok, err := b.groups.Get("liveNewGroup"); !ok || err != nil {
		t.Fatalf("group not auto-created after raising the cap: %v", err)
	}
	expectCode(t, call(t, c, heartbeatReq(t, "", "livePG2")), protocol.ResponseSuccess)
}

// autoCreateTopicEnable turns TBW102's inheritance off and on, as a start
// with the key would.
func TestLiveAutoCreateTopic(t *testing.T) {
	b, c := startBroker(t, nil)
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("LiveNew1", 0, ""), []byte("x")))
	updateConfig(t, c, "autoCreateTopicEnable=false")
	expectCode(t, produce(t, c, protocol.SendMessage, sendHeader("LiveNew2", 0, ""), []byte("x")), protocol.ResponseTopicNotExist)
	if tc, _ := b.topics.Get(TopicAutoCreate); tc.Perm&protocol.PermInherit != 0 {
		t.Fatalf("TBW102 perm %d still inherits", tc.Perm)
	}
	updateConfig(t, c, "autoCreateTopicEnable=true")
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("LiveNew2", 0, ""), []byte("x")))
	if brokerConfig(t, c)["autoCreateTopicEnable"] != "true" {
		t.Fatal("GET_BROKER_CONFIG")
	}
}

// syncFlushMinGapMicros takes effect at a restart, so an update is checked
// against the flush settings it would start with: a gap at or above
// syncFlushTimeout, which the store would refuse to open with, is refused
// now, and nothing is stored.
func TestUpdateSyncFlushMinGap(t *testing.T) {
	b, c := startBroker(t, nil)
	remark := updateConfig(t, c, "syncFlushMinGapMicros=700")
	if !strings.Contains(remark, "takes effect when the broker restarts: syncFlushMinGapMicros") {
		t.Fatalf("remark %q", remark)
	}
	for _, bad := range []string{"syncFlushMinGapMicros=5000\nsyncFlushTimeout=5", "syncFlushTimeout=0\nsyncFlushMinGapMicros=-3", "syncFlushMinGapMicros=20000"} {
		req := protocol.NewRequest(protocol.UpdateBrokerConfig, nil)
		req.Body = []byte(bad)
		if r := call(t, c, req); r.Code != protocol.ResponseSystemError {
			t.Errorf("%q answered %d %q", bad, r.Code, r.Remark)
		}
	}
	stored, err := os.ReadFile(filepath.Join(b.cfg.Store.Dir, "config", "broker.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), "syncFlushMinGapMicros=700") || strings.Contains(string(stored), "syncFlushTimeout") {
		t.Fatalf("stored overrides:\n%s", stored)
	}
}
