package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Unit tests of mqbench's pure parts (no broker): flag values, the rate
// schedule, report formats, request templates, reply parsing; and one
// produce run against a fake in-process nameserver+broker.

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"512": 512, "1k": 1024, "4K": 4096, "1m": 1 << 20, "1kb": 1024,
		"4KiB": 4096, "0": 0, " 2k ": 2048} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "1x", "-1", "1.5k", "99999999m"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"1000": 1000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000,
		"2.5k": 2500, "max": 0, "0": 0, "MAX": 0} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-5", "2g", "2000m"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestParseModeAndSwitch(t *testing.T) {
	cases := []struct {
		in    string
		mode  SendMode
		batch int
	}{{"sync", ModeSync, 1}, {"async", ModeAsync, 1}, {"oneway", ModeOneway, 1}, {"batch:32", ModeBatch, 32},
		{"batch", ModeBatch, 32}, {"Batch:1", ModeBatch, 1}}
	for _, c := range cases {
		m, b, err := ParseMode(c.in)
		if err != nil || m != c.mode || b != c.batch {
			t.Errorf("ParseMode(%q) = %v, %d, %v", c.in, m, b, err)
		}
	}
	for _, in := range []string{"", "batch:0", "batch:x", "fire"} {
		if _, _, err := ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) accepted", in)
		}
	}
	if v, err := ParseOnOff("on"); !v || err != nil {
		t.Error("on")
	}
	if v, err := ParseOnOff("off"); v || err != nil {
		t.Error("off")
	}
	if _, err := ParseOnOff("maybe"); err == nil {
		t.Error("maybe accepted")
	}
	if got := SplitAddrs("a:1;b:2, c:3"); strings.Join(got, "|") != "a:1|b:2|c:3" {
		t.Errorf("SplitAddrs = %q", got)
	}
}

func TestIntendedOffset(t *testing.T) {
	cases := []struct {
		i, tps int64
		want   time.Duration
	}{
		{0, 100_000, 0}, {1, 100_000, 10 * time.Microsecond}, {100_000, 100_000, time.Second},
		{150_000, 100_000, 1500 * time.Millisecond}, {1, 3, 333_333_333}, {2, 3, 666_666_666}, {3, 3, time.Second},
		{7, 0, 0}, // unthrottled
		// 10^12 requests at 1 per ns-ish rates: i*1e9 would overflow int64
		{1_000_000_000_000, 1_000_000_000, 1000 * time.Second},
		{9_000_000_000_000, 7_000_000, 1_285_714*time.Second + 285_714_285},
	}
	for _, c := range cases {
		if got := IntendedOffset(c.i, c.tps); got != c.want {
			t.Errorf("IntendedOffset(%d, %d) = %v, want %v", c.i, c.tps, got, c.want)
		}
	}
	// monotonic and evenly spaced: every gap is floor or ceil of 1e9/tps
	const tps = 30_000
	prev := IntendedOffset(0, tps)
	for i := int64(1); i < 100_000; i++ {
		cur := IntendedOffset(i, tps)
		if gap := cur - prev; gap < 33_333 || gap > 33_334 {
			t.Fatalf("gap %v at %d", gap, i)
		}
		prev = cur
	}
}

func TestPlannedCounts(t *testing.T) {
	if w, m := PlannedCounts(100_000, 1, 2*time.Second, 10*time.Second, 0); w != 200_000 || m != 1_000_000 {
		t.Errorf("single: %d %d", w, m)
	}
	if w, m := PlannedCounts(100_000, 32, time.Second, 10*time.Second, 0); w != 3125 || m != 31_250 {
		t.Errorf("batch: %d %d", w, m)
	}
	if _, m := PlannedCounts(1000, 32, 0, time.Hour, 100); m != 4 { // count wins, rounded up to whole batches
		t.Errorf("count: %d", m)
	}
}

func TestPercentilesAndSummaryLine(t *testing.T) {
	h := NewLatencyHistogram()
	for us := int64(1); us <= 10_000; us++ { // 1 µs .. 10 ms, uniform
		_ = h.RecordValue(us)
	}
	p := PercentilesOf(h)
	within := func(name string, got, want float64) {
		if got < want*0.999 || got > want*1.001 {
			t.Errorf("%s = %v ms, want %v ms ±0.1%% (3 significant digits)", name, got, want)
		}
	}
	within("p50", p.P50, 5.0)
	within("p99", p.P99, 9.9)
	within("p999", p.P999, 9.99)
	within("max", p.Max, 10.0)
	if p.Count != 10_000 {
		t.Errorf("count %d", p.Count)
	}
	if z := PercentilesOf(NewLatencyHistogram()); z != (Percentiles{}) {
		t.Errorf("empty histogram: %+v", z)
	}
	if clampUs(-5) != 1 || clampUs(1<<40) != maxLatencyUs {
		t.Error("clampUs")
	}

	s := Summary{Kind: "produce", TPS: 99_999.6, Sent: 1_000_000, Acked: 999_990,
		Errors:   map[int]int64{int(protocol.ResponseSystemBusy): 7, ErrTimeout: 3},
		Duration: 10*time.Second + 5*time.Millisecond,
		Latency:  Percentiles{P50: 0.2134, P99: 1.5, P999: 12.25, Max: 250},
		Extra:    []string{"mode=async size=1024"}}
	want := "tps=100000 p50_ms=0.213 p99_ms=1.500 p999_ms=12.250 max_ms=250.000 errors=10 sent=1000000 acked=999990 duration_s=10.01 mode=async size=1024"
	if got := s.Line(); got != want {
		t.Errorf("summary line\n got %s\nwant %s", got, want)
	}
	s.Kind, s.Received = "consume", 42
	if got := s.Line(); !strings.Contains(got, " errors=10 received=42 duration_s=") || strings.Contains(got, "sent=") {
		t.Errorf("consume line %s", got)
	}
	if got := FormatErrors(s.Errors); got != "SYSTEM_BUSY:7,timeout:3" {
		t.Errorf("FormatErrors = %s", got)
	}
	if FormatErrors(nil) != "0" {
		t.Error("no errors")
	}
}

// encodeOne builds a template and encodes request 0 through a sendConn's
// encoder, returning the decoded command.
func encodeOne(t *testing.T, spec templateSpec, bodyLen int, unixNs int64) (*protocol.Command, *sendConn) {
	t.Helper()
	spec.bodyLen = bodyLen
	tmpl, err := buildTemplate(spec)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, bodyLen)
	for i := range body {
		body[i] = 'x'
	}
	clock := &runClock{base: time.Now(), baseUnix: 0}
	cfg := WireConfig{Batch: max(spec.batch, 1), Inflight: 4}
	c := newSendConn(3, nil, clock, []*reqTemplate{tmpl}, body, &cfg)
	c.opSeq = 41
	c.idSeq = 0xabc - 1
	op := c.encode(0, unixNs, true)
	frame := append([]byte(nil), c.buf...)
	for _, s := range c.segs { // re-assemble writev segments
		frame = append(frame[:s.end:s.end], append(s.ext, c.buf[s.end:]...)...)
	}
	if n := int(binary.BigEndian.Uint32(frame)); n != len(frame)-4 {
		t.Fatalf("frame length field %d, frame has %d bytes after it", n, len(frame)-4)
	}
	cmd, err := protocol.DecodeFrame(frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Opaque != op || op != opaqueBase+42 {
		t.Errorf("opaque %d, encode returned %d", cmd.Opaque, op)
	}
	return cmd, c
}

func TestSendTemplateCode10(t *testing.T) {
	const unixNs = 1_700_000_000_123_456_789
	spec := templateSpec{code: protocol.SendMessage, topic: "T1", group: "pg", queue: 5, keys: true, tags: true,
		idPrefix: "7F00000112340003", language: "GO", version: 317, defaultTopic: "TBW102", defaultTopicQueueNums: 4}
	for _, size := range []int{1024, 8, inlineMax + 100} {
		cmd, _ := encodeOne(t, spec, size, unixNs)
		var h protocol.SendMessageRequestHeader
		if err := h.Decode(cmd.ExtFields); err != nil {
			t.Fatal(err)
		}
		if cmd.Code != 10 || protocol.IsSendV2Header(cmd.ExtFields) || h.Topic != "T1" || h.QueueID != 5 ||
			h.BornTimestamp != 1_700_000_000_123 || h.ProducerGroup != "pg" || h.DefaultTopic != "TBW102" || cmd.Flag != 0 {
			t.Errorf("header %+v code %d flag %d", h, cmd.Code, cmd.Flag)
		}
		props := message.ParseProperties(h.Properties)
		if props["UNIQ_KEY"] != "7F000001123400030000000000000abc" || props["KEYS"] != "mqb"+props["UNIQ_KEY"] || props["TAGS"] != "TagA" {
			t.Errorf("properties %q", props)
		}
		if len(cmd.Body) != size {
			t.Fatalf("body %d bytes, want %d", len(cmd.Body), size)
		}
		if ns, measured, ok := readStamp(cmd.Body); ok != (size >= stampLen) || ok && (ns != unixNs || !measured) {
			t.Errorf("stamp %d %v %v", ns, measured, ok)
		}
	}
}

func TestSendTemplateV2OnewayNoKeys(t *testing.T) {
	spec := templateSpec{code: protocol.SendMessageV2, topic: "T2", group: "pg", queue: 12, oneway: true,
		idPrefix: "7F00000100000000", language: "JAVA", version: 407, defaultTopic: "TBW102", defaultTopicQueueNums: 4}
	cmd, _ := encodeOne(t, spec, 100, 1_600_000_000_000_000_000)
	var h protocol.SendMessageRequestHeader
	if err := h.Decode(cmd.ExtFields); err != nil {
		t.Fatal(err)
	}
	if !protocol.IsSendV2Header(cmd.ExtFields) || h.QueueID != 12 || h.BornTimestamp != 1_600_000_000_000 || !cmd.IsOneway() || h.Properties != "" {
		t.Errorf("V2 header %+v flag %d", h, cmd.Flag)
	}
}

func TestSendTemplateBatch(t *testing.T) {
	spec := templateSpec{code: protocol.SendBatchMessage, topic: "T3", group: "pg", queue: 1, batch: 3, keys: true,
		idPrefix: "7F00000100000001", language: "GO", version: 317, defaultTopic: "TBW102", defaultTopicQueueNums: 4}
	cmd, _ := encodeOne(t, spec, 64, 1_700_000_000_000_000_000)
	var h protocol.SendMessageRequestHeader
	if err := h.Decode(cmd.ExtFields); err != nil {
		t.Fatal(err)
	}
	if cmd.Code != 320 || !h.Batch {
		t.Fatalf("batch header %+v", h)
	}
	b := cmd.Body
	for k := range 3 { // Java's MessageDecoder.encodeMessages entries
		total := int(binary.BigEndian.Uint32(b))
		bodyLen := int(binary.BigEndian.Uint32(b[16:]))
		body := b[20 : 20+bodyLen]
		pl := int(binary.BigEndian.Uint16(b[20+bodyLen:]))
		props := message.ParseProperties(string(b[22+bodyLen : 22+bodyLen+pl]))
		if total != 22+bodyLen+pl || bodyLen != 64 {
			t.Fatalf("entry %d: total %d body %d props %d", k, total, bodyLen, pl)
		}
		if want := "7F00000100000001" + strconv.FormatUint(uint64(0xabc+k), 16); !strings.HasSuffix(props["UNIQ_KEY"], want[16:]) || len(props["UNIQ_KEY"]) != 32 {
			t.Errorf("entry %d UNIQ_KEY %q", k, props["UNIQ_KEY"])
		}
		if _, _, ok := readStamp(body); !ok {
			t.Errorf("entry %d: no stamp", k)
		}
		b = b[total:]
	}
	if len(b) != 0 {
		t.Errorf("%d trailing bytes", len(b))
	}
}

func TestParseReplyHead(t *testing.T) {
	req := &protocol.Command{Opaque: 1234567890}
	for _, st := range []protocol.SerializeType{protocol.SerializeJSON, protocol.SerializeRocketMQ} {
		req.SerializeType = st
		resp := protocol.NewResponse(req, protocol.ResponseFlushDiskTimeout, "slow disk \"quoted\"")
		resp.SetHeader(&protocol.SendMessageResponseHeader{MsgID: "X", QueueID: 1, QueueOffset: 2})
		frame, err := resp.Encode()
		if err != nil {
			t.Fatal(err)
		}
		code, op, flag, ok := parseReplyHead(frame[4:])
		if !ok || code != 10 || op != 1234567890 || flag != protocol.FlagResponse {
			t.Errorf("%v: %d %d %d %v", st, code, op, flag, ok)
		}
	}
	// Java's key order is not the fast path's: the caller falls back.
	java := []byte(`{"code":0,"extFields":{"opaque":"9"},"flag":1,"language":"JAVA","opaque":5,"version":407}`)
	f := binary.BigEndian.AppendUint32(nil, uint32(len(java)))
	if _, _, _, ok := parseReplyHead(append(f, java...)); ok {
		t.Error("fast path accepted a Java-ordered header")
	}
	for _, bad := range [][]byte{nil, {0, 0, 0, 9}, {0, 0, 0, 2, '{', '}'}} {
		if _, _, _, ok := parseReplyHead(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

// fakeCluster is an in-process nameserver + broker answering route,
// create-topic, heartbeat and send requests; every dropEvery-th send gets
// no reply (0: none dropped).
type fakeCluster struct {
	srv       *remoting.Server
	addr      string
	sends     atomic.Int64
	created   atomic.Bool
	dropEvery int64

	mu       sync.Mutex
	topics   map[string]bool  // created
	perQueue map[string]int64 // sends by "topic/queue"
}

func startFake(t *testing.T, dropEvery int64) *fakeCluster {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCluster{srv: remoting.NewServer(remoting.ServerConfig{Listener: ln}), addr: ln.Addr().String(), dropEvery: dropEvery,
		topics: map[string]bool{}, perQueue: map[string]int64{}}
	ok := func(req *protocol.Command) *protocol.Command { return protocol.NewResponse(req, 0, "") }
	f.srv.Handle(protocol.GetRouteInfoByTopic, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		topic := req.Ext("topic")
		f.mu.Lock()
		known := f.topics[topic]
		f.mu.Unlock()
		if topic != defaultTopicKey && !known {
			return protocol.NewResponse(req, protocol.ResponseTopicNotExist, "No topic route info")
		}
		r := protocol.TopicRouteData{
			QueueDatas:  []protocol.QueueData{{BrokerName: "b", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}},
			BrokerDatas: []protocol.BrokerData{{Cluster: "c", BrokerName: "b", BrokerAddrs: map[int64]string{0: f.addr}}},
		}
		resp := ok(req)
		resp.Body = r.AppendJSON(nil)
		return resp
	})
	f.srv.Handle(protocol.UpdateAndCreateTopic, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		f.created.Store(true)
		f.mu.Lock()
		f.topics[req.Ext("topic")] = true
		f.mu.Unlock()
		return ok(req)
	})
	f.srv.Handle(protocol.HeartBeat, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		if _, err := protocol.DecodeHeartbeatData(req.Body); err != nil {
			return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
		}
		return ok(req)
	})
	f.srv.Handle(protocol.SendMessage, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		var h protocol.SendMessageRequestHeader
		if err := h.Decode(req.ExtFields); err != nil || len(req.Body) != 256 {
			return protocol.NewResponse(req, protocol.ResponseSystemError, "bad send")
		}
		f.mu.Lock()
		f.perQueue[h.Topic+"/"+strconv.Itoa(int(h.QueueID))]++
		f.mu.Unlock()
		if n := f.sends.Add(1); f.dropEvery > 0 && n%f.dropEvery == 0 {
			return nil // never answered: the producer must time it out
		}
		resp := ok(req)
		resp.SetHeader(&protocol.SendMessageResponseHeader{MsgID: "X", QueueID: h.QueueID})
		return resp
	})
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func TestProduceAgainstFake(t *testing.T) {
	f := startFake(t, 50)
	var out bytes.Buffer
	s, err := Produce(context.Background(), WireConfig{
		Namesrv: []string{f.addr}, Topic: "FakeTopic", Size: 256, TPS: 2000, Conns: 2, Mode: ModeAsync,
		Keys: true, Tags: true, Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Timeout: 300 * time.Millisecond, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !f.created.Load() {
		t.Error("topic was not created")
	}
	// 1000 measured sends (2000/s for 0.5 s), every 50th unanswered → timeout
	if s.Sent != 1000 || s.Acked+s.Errors[ErrTimeout] != 1000 || s.Errors[ErrTimeout] < 15 || s.Errors[ErrTimeout] > 25 {
		t.Errorf("sent %d acked %d errors %v", s.Sent, s.Acked, s.Errors)
	}
	if f.sends.Load() != 1400 {
		t.Errorf("fake broker saw %d sends, want 1400 (warmup 400 + 1000)", f.sends.Load())
	}
	if s.Duration < 450*time.Millisecond || s.Duration > 1500*time.Millisecond || s.Latency.P50 <= 0 {
		t.Errorf("duration %v latency %+v", s.Duration, s.Latency)
	}
	last := strings.TrimSpace(out.String())
	last = last[strings.LastIndexByte(last, '\n')+1:]
	if !strings.HasPrefix(last, "tps=") || !strings.Contains(last, " sent=1000 ") || !strings.Contains(last, "error_codes=timeout:") {
		t.Errorf("summary line: %s", last)
	}
}

// BenchmarkWireEncode is the per-send cost of the producer's encoder (a
// 1 KiB code-10 send with keys and tags): copies and patches, no allocation.
func BenchmarkWireEncode(b *testing.B) {
	tmpl, err := buildTemplate(templateSpec{code: protocol.SendMessage, topic: "BenchTopic", group: "pg", queue: 3,
		bodyLen: 1024, keys: true, tags: true, idPrefix: "7F00000100010002", language: "GO", version: 317,
		defaultTopic: "TBW102", defaultTopicQueueNums: 4})
	if err != nil {
		b.Fatal(err)
	}
	cfg := WireConfig{Batch: 1, Inflight: 4}
	c := newSendConn(0, nil, newRunClock(), []*reqTemplate{tmpl}, make([]byte, 1024), &cfg)
	b.ReportAllocs()
	b.SetBytes(int64(len(tmpl.msg.pre) + 1024))
	for i := 0; b.Loop(); i++ {
		c.encode(0, int64(i), true)
		if len(c.buf) >= flushAt {
			c.buf = c.buf[:0]
		}
	}
}

// TestStampPhase: the stamp carries the phase the producer counted the
// send in, whatever its time (an early send at the phase boundary is
// stamped before the phase starts).
func TestStampPhase(t *testing.T) {
	b := make([]byte, stampLen)
	for _, measured := range []bool{false, true} {
		putStamp(b, 1234, measured)
		if ns, m, ok := readStamp(b); !ok || ns != 1234 || m != measured {
			t.Fatalf("putStamp(1234, %v) read back as %d, %v, %v", measured, ns, m, ok)
		}
	}
	b[7] = 'x'
	if _, _, ok := readStamp(b); ok {
		t.Fatal("a stamp with an unknown phase byte was accepted")
	}
}

// TestE2EPhaseFromStamp: the e2e consumer counts a message in the phase its
// stamp names, not by comparing the stamp's time with the phase's start: a
// measured send stamped just before that start (an early send within the
// slack) is measured, as is one after it; a warmup send is not.
func TestE2EPhaseFromStamp(t *testing.T) {
	c := &consumer{clock: &runClock{base: time.Now(), baseUnix: 0}, e2e: true, hist: newLockedHist()}
	c.setMeasureStart(int64(time.Second))
	var body []byte
	for _, s := range []struct {
		at       int64
		measured bool
	}{{c.mUnix - 100_000, true}, {c.mUnix + 100_000, true}, {c.mUnix - 200_000, false}} {
		m := BenchMessage("e2e", 0, 64)
		putStamp(m.Body, s.at, s.measured)
		rec := make([]byte, m.Size())
		m.Encode(rec, message.BodyCRC(m.Body), 0, 0, 0)
		body = append(body, rec...)
	}
	c.records(body, 2*int64(time.Second))
	if c.recv.Load() != 3 || c.recvM.Load() != 2 {
		t.Fatalf("received %d, measured %d; want 3 and 2", c.recv.Load(), c.recvM.Load())
	}
}
