package broker

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// brokerConnOf is the broker side of client c's connection.
func brokerConnOf(t *testing.T, b *Broker, c *remoting.Client) *remoting.Conn {
	t.Helper()
	for _, sc := range b.server.Conns() {
		if sc.RemoteAddrString() == c.LocalAddr().String() {
			return sc
		}
	}
	t.Fatal("no broker-side connection for the client")
	return nil
}

func TestTransportLimitKeys(t *testing.T) {
	cfg := NewConfig()
	ignored, err := ApplyProperties(map[string]string{
		"maxConnections": "7", "maxQueuedBytesPerConnection": "1048576", "maxParkedPullsPerConnection": "3",
		"maxInboundBytes": "2097152",
	}, &cfg)
	if err != nil || len(ignored) != 0 {
		t.Fatalf("ignored %v, err %v", ignored, err)
	}
	if cfg.MaxConnections != 7 || cfg.MaxQueuedBytesPerConnection != 1<<20 || cfg.MaxParkedPullsPerConnection != 3 ||
		cfg.MaxInboundBytes != 2<<20 {
		t.Fatalf("%+v", cfg)
	}
	if _, err := ApplyProperties(map[string]string{"maxConnections": "many"}, &cfg); err == nil {
		t.Fatal("bad value accepted")
	}
}

// Parked pulls with junk bodies: the bodies are not held, a connection
// parks at most maxParkedPullsPerConnection pulls (the rest get
// SYSTEM_BUSY), and what the parked ones hold is charged to the
// connection's budget until they end.
func TestParkedPullsWithJunkBodiesBounded(t *testing.T) {
	const limit, n = 8, 12
	b, c := startBroker(t, func(cfg *Config) { cfg.MaxParkedPullsPerConnection = limit })
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	junk := make([]byte, 1<<20)
	var chans []<-chan *protocol.Command
	for i := 0; i < n; i++ {
		req := pullReq("g", TopicSelfTest, 0, 0, 32, protocol.PullFlagSuspend, 20000)
		req.Body = junk
		chans = append(chans, invokeAsync(c, req))
	}
	// Requests run concurrently, so which n-limit pulls are refused is not
	// fixed: exactly n-limit answer SYSTEM_BUSY while the others stay parked
	// (their suspend timeout is 20 s).
	answered := make([]bool, n)
	deadline := time.Now().Add(15 * time.Second)
	for busy := 0; busy < n-limit; {
		for i, ch := range chans {
			if answered[i] {
				continue
			}
			select {
			case resp := <-ch:
				answered[i] = true
				if resp.Code != protocol.ResponseSystemBusy || !strings.Contains(resp.Remark, "OVERLOAD") {
					t.Fatalf("pull beyond the limit: %d %q", resp.Code, resp.Remark)
				}
				busy++
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pulls beyond the limit answered SYSTEM_BUSY", busy, n-limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "parked pulls", func() bool { return b.pulls.Len() == limit })
	b.pulls.mu.Lock()
	for _, list := range b.pulls.queues {
		for _, h := range list {
			if h.req.Body != nil {
				t.Error("a parked pull holds its body")
			}
		}
	}
	b.pulls.mu.Unlock()
	sc := brokerConnOf(t, b, c)
	if got := sc.BufferedBytes(); got < limit*heldRequestOverhead || got > limit*4<<10 {
		t.Fatalf("connection charged %d bytes for %d parked pulls", got, limit)
	}
	c.Close()
	waitFor(t, "dropped pulls", func() bool { return b.pulls.Len() == 0 })
	// Responses still queued are released right after the pulls.
	waitFor(t, "charges released", func() bool { return sc.BufferedBytes() == 0 })
}

// Parked pulls whose headers are large are charged to the connection's
// budget: once over it the broker stops reading that connection until
// pulls end, so what they hold stays near the budget.
func TestParkedPullsCountAgainstByteBudget(t *testing.T) {
	const budget, junk, n = 2 << 20, 768 << 10, 8
	b, c := startBroker(t, func(cfg *Config) { cfg.MaxQueuedBytesPerConnection = budget })
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	var chans []<-chan *protocol.Command
	for i := 0; i < n; i++ {
		req := pullReq("g", TopicSelfTest, 0, 0, 32, protocol.PullFlagSuspend, 300)
		req.ExtFields["junk"] = strings.Repeat("x", junk)
		chans = append(chans, invokeAsync(c, req))
	}
	for i, ch := range chans {
		select {
		case resp := <-ch:
			if resp.Code != protocol.ResponsePullNotFound {
				t.Fatalf("pull %d: %d %s", i, resp.Code, resp.Remark)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("pull %d not answered", i)
		}
	}
	sc := brokerConnOf(t, b, c)
	if sc.Stalls() == 0 {
		t.Fatal("the connection was never paused for its budget")
	}
	if peak := sc.PeakBufferedBytes(); peak > budget+junk+4<<10 {
		t.Fatalf("peak %d bytes, budget %d", peak, budget)
	}
}

// Issue 8: pipelined QUERY_MESSAGE requests whose replies are never read
// queued every reply (40 × 8 MB). Now queries run one at a time per
// connection and only while its output is at most half the budget, so
// what the broker buffers for that peer stays near the budget, and it
// keeps answering other connections.
func TestPipelinedQueriesNeverReadStayInBudget(t *testing.T) {
	const budget, msgs, size, n = 4 << 20, 8, 256 << 10, 40
	b, c := startBroker(t, func(cfg *Config) { cfg.MaxQueuedBytesPerConnection = budget })
	body := make([]byte, size)
	for range msgs {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("QT", 0, "KEYS\x01big\x02"), body))
	}
	awaitCond(t, "index", func() bool { return len(queryByKey(t, c, "QT", "big", false).Body) > msgs*size })

	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	h := &protocol.QueryMessageRequestHeader{Topic: "QT", Key: "big", MaxNum: 64,
		EndTimestamp: time.Now().Add(time.Hour).UnixMilli()}
	for i := range n {
		req := protocol.NewRequest(protocol.QueryMessage, h)
		req.Opaque = int32(i + 1)
		frame, err := req.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	var sc *remoting.Conn
	awaitCond(t, "the raw connection", func() bool {
		for _, x := range b.server.Conns() {
			if x.RemoteAddrString() == nc.LocalAddr().String() {
				sc = x
			}
		}
		return sc != nil
	})
	awaitCond(t, "responses queued", func() bool { return sc.PeakBufferedBytes() > 0 })
	time.Sleep(300 * time.Millisecond)
	if got := queryByKey(t, c, "QT", "big", false); got.Code != protocol.ResponseSuccess {
		t.Fatalf("other connection: %d %s", got.Code, got.Remark)
	}
	peak := sc.PeakBufferedBytes()
	t.Logf("%d pipelined queries of %d bytes each, never read: peak buffered %d bytes (budget %d)",
		n, msgs*size, peak, budget)
	// A query reserves the whole budget: it runs alone, once the output is
	// at most half the budget.
	if bound := int64(budget/2 + msgs*(size+1024)); peak > bound {
		t.Fatalf("peak buffered %d bytes, bound %d (budget %d)", peak, bound, budget)
	}
	if sc.Stalls() == 0 {
		t.Fatal("the broker never paused reading the connection")
	}
}

// A query on a connection whose parked pulls hold a little of its budget
// (a push consumer's client queries on its one broker connection) is not
// held back by the query's whole-budget reservation.
func TestQueryBesideParkedPulls(t *testing.T) {
	b, c := startBroker(t, nil)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: TopicSelfTest, expr: "*"})
	invokeAsync(c, pullReq("g", TopicSelfTest, 0, 0, 32, protocol.PullFlagSuspend, 20000))
	waitFor(t, "parked pull", func() bool { return b.pulls.Len() == 1 })
	if brokerConnOf(t, b, c).BufferedBytes() == 0 {
		t.Fatal("the parked pull is not charged")
	}
	start := time.Now()
	resp := queryByKey(t, c, "QT", "none", false)
	if resp.Code != protocol.ResponseQueryNotFound || time.Since(start) > 2*time.Second {
		t.Fatalf("query beside a parked pull: code %d after %v", resp.Code, time.Since(start))
	}
}
