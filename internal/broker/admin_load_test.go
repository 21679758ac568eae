package broker

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/stat"
)

// javaRuntimeKeys are the keys a 4.9.7 broker's GET_BROKER_RUNTIME_INFO
// has (AdminBrokerProcessor.prepareRuntimeInfo, StoreStatsService and
// DefaultMessageStore.getRuntimeInfo), without the per-path
// commitLogDiskRatio_<dir> and the per-level scheduleMessageOffset_<n>.
var javaRuntimeKeys = []string{"brokerVersionDesc", "brokerVersion", "msgPutTotalYesterdayMorning",
	"msgPutTotalTodayMorning", "msgPutTotalTodayNow", "msgGetTotalYesterdayMorning", "msgGetTotalTodayMorning",
	"msgGetTotalTodayNow", "sendThreadPoolQueueSize", "sendThreadPoolQueueCapacity", "pullThreadPoolQueueSize",
	"pullThreadPoolQueueCapacity", "queryThreadPoolQueueSize", "queryThreadPoolQueueCapacity", "EndTransactionQueueSize",
	"EndTransactionThreadPoolQueueCapacity", "dispatchBehindBytes", "pageCacheLockTimeMills",
	"sendThreadPoolQueueHeadWaitTimeMills", "pullThreadPoolQueueHeadWaitTimeMills", "queryThreadPoolQueueHeadWaitTimeMills",
	"earliestMessageTimeStamp", "startAcceptSendRequestTimeStamp", "remainTransientStoreBufferNumbs",
	"remainHowManyDataToFlush", "commitLogDirCapacity", "bootTimestamp", "runtime", "putMessageEntireTimeMax",
	"putMessageTimesTotal", "putMessageFailedTimes", "putMessageSizeTotal", "putMessageDistributeTime",
	"putMessageAverageSize", "dispatchMaxBuffer", "getMessageEntireTimeMax", "putTps", "getFoundTps", "getMissTps",
	"getTotalTps", "getTransferedTps", "putLatency99", "putLatency999", "commitLogDiskRatio", "consumeQueueDiskRatio",
	"commitLogMinOffset", "commitLogMaxOffset"}

func runtimeTable(t *testing.T, c *remoting.Client) map[string]string {
	t.Helper()
	r := call(t, c, protocol.NewRequest(protocol.GetBrokerRuntimeInfo, nil))
	expectCode(t, r, protocol.ResponseSuccess)
	var kv protocol.KVTable
	if err := json.Unmarshal(r.Body, &kv); err != nil {
		t.Fatal(err)
	}
	return kv.Table
}

func TestRuntimeInfoHasJavaKeys(t *testing.T) {
	_, c := startBroker(t, func(cfg *Config) { cfg.Store.MaxMessageSize = 1024 })
	for i := 0; i < 4; i++ {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("OpsK", 0, ""), []byte("x")))
	}
	// msgCheck refusals are not put failures (Java counts only what the
	// store refused)
	if r := produce(t, c, protocol.SendMessage, sendHeader("OpsK", 999, ""), []byte("x")); r.Code == protocol.ResponseSuccess {
		t.Fatal("send to queue 999 succeeded")
	}
	if r := produce(t, c, protocol.SendMessage, sendHeader("OpsK", 0, ""), make([]byte, 2048)); r.Code != protocol.ResponseMessageIllegal {
		t.Fatalf("oversized send answered %d", r.Code)
	}
	tb := runtimeTable(t, c)
	for _, k := range javaRuntimeKeys {
		if _, ok := tb[k]; !ok {
			t.Errorf("runtime info lacks %s", k)
		}
	}
	if tb["putMessageFailedTimes"] != "1" {
		t.Errorf("putMessageFailedTimes %q after one oversized send", tb["putMessageFailedTimes"])
	}
	var sum int64
	for _, f := range strings.Fields(tb["putMessageDistributeTime"]) {
		_, n, _ := strings.Cut(f, ":")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatalf("putMessageDistributeTime %q", tb["putMessageDistributeTime"])
		}
		sum += v
	}
	if sum != 5 || !strings.HasPrefix(tb["putMessageDistributeTime"], "[<=0ms]:") {
		t.Errorf("putMessageDistributeTime %q counts %d sends, want 5", tb["putMessageDistributeTime"], sum)
	}
	if p, err := strconv.ParseFloat(tb["putLatency99"], 64); err != nil || p <= 0 {
		t.Errorf("putLatency99 %q", tb["putLatency99"])
	}
	if tb["sendThreadPoolQueueSize"] != "0" || tb["remainTransientStoreBufferNumbs"] != "2147483647" {
		t.Errorf("queue keys %v", tb)
	}
}

// counted counts a handler in progress and its longest run.
func TestCountedHandler(t *testing.T) {
	var l ReqLoad
	release, entered := make(chan struct{}), make(chan struct{})
	h := counted(&l, func(context.Context, *remoting.Conn, *protocol.Command) *protocol.Command {
		close(entered)
		<-release
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	done := make(chan struct{})
	go func() { h(context.Background(), nil, nil); close(done) }()
	<-entered
	if n := l.InProgress.Load(); n != 1 {
		t.Fatalf("in progress %d while the handler runs", n)
	}
	close(release)
	<-done
	if n, m := l.InProgress.Load(), l.MaxMillis.Load(); n != 0 || m < 20 {
		t.Fatalf("after the run: in progress %d, max %d ms", n, m)
	}
}

func TestPutDistributionBuckets(t *testing.T) {
	var d putDistribution
	for _, ms := range []int64{0, 1, 9, 10, 49, 50, 999, 1000, 9999, 10000, 60000} {
		d.observe(time.Duration(ms) * time.Millisecond)
	}
	want := "[<=0ms]:1 [0~10ms]:2 [10~50ms]:2 [50~100ms]:1 [100~200ms]:0 [200~500ms]:0 [500ms~1s]:1 [1~2s]:1 " +
		"[2~3s]:0 [3~4s]:0 [4~5s]:0 [5~10s]:1 [10s~]:2 "
	if got := d.String(); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestQuantileMillis(t *testing.T) {
	var h stat.Histogram
	if quantileMillis(&h, 0.99) != 0 {
		t.Fatal("quantile of nothing")
	}
	for i := 0; i < 990; i++ {
		h.Observe(30 * time.Microsecond)
	}
	for i := 0; i < 10; i++ {
		h.Observe(40 * time.Millisecond)
	}
	if p99, p999 := quantileMillis(&h, 0.99), quantileMillis(&h, 0.999); p99 != 0.05 || p999 != 50 {
		t.Fatalf("p99 %v p999 %v", p99, p999)
	}
}
