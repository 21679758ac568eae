package bench

// Over-the-wire workloads for mqbench: an open-loop producer, a long-polling
// consumer and both together (end to end), speaking the RocketMQ 4.x
// remoting protocol directly. This file holds the configuration, the flag
// value parsers, the rate schedule and the statistics/report formats; the
// producer's connection is in wireconn.go, the workloads in wirerun.go and
// the control-plane requests (route, topic creation, heartbeat) in
// wireadmin.go.
//
// Open loop: send i of a run is due at t0 + i/tps whatever happened to the
// sends before it, and its latency is measured from that intended time, so
// a stalled broker shows up as latency (and as in-flight requests), never as
// a quietly lower offered rate. The generator's own lateness (issue time −
// intended time) is reported separately as lag.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/mqd/mqd/internal/protocol"
)

// SendMode is how the producer issues its requests.
type SendMode int

const (
	// ModeSync: each request waits for its reply before its slot is reused;
	// at most Inflight (default 16) per connection, issued on schedule.
	ModeSync SendMode = iota
	// ModeAsync: pipelined, up to Inflight (default 4096) per connection.
	ModeAsync
	// ModeOneway: flag bit 1 set, the broker sends no reply; only the send
	// rate is measured.
	ModeOneway
	// ModeBatch: SEND_BATCH_MESSAGE (320) with Batch messages per request,
	// pipelined like async.
	ModeBatch
)

func (m SendMode) String() string {
	switch m {
	case ModeSync:
		return "sync"
	case ModeAsync:
		return "async"
	case ModeOneway:
		return "oneway"
	case ModeBatch:
		return "batch"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// WireConfig configures a produce, consume or e2e run.
type WireConfig struct {
	Namesrv []string // nameserver addresses
	Topic   string
	Topics  int // produce: spread over this many topics (TopicNames); ≤ 1: Topic alone
	Queues  int // queues of a topic mqbench creates

	Size     int      // message body bytes
	TPS      int64    // target messages/s; 0 = as fast as the window allows
	Conns    int      // producer connections (spread over the brokers)
	Mode     SendMode // sync, async, oneway, batch
	Batch    int      // messages per batch request (ModeBatch)
	Inflight int      // per-connection request window; 0 = mode default
	Keys     bool     // UNIQ_KEY and KEYS properties (indexed by the broker)
	Tags     bool     // TAGS property
	V2       bool     // SEND_MESSAGE_V2 (310) instead of SEND_MESSAGE (10)
	// Slack: one wake-up of the scheduler sends every request due within
	// this window, the later ones early and then measured from their actual
	// send time (default 200 µs; negative disables). It bounds the
	// generator's wake-ups, which cost ~20-40 µs of CPU each on a VM.
	Slack time.Duration

	Duration time.Duration // measured phase (when Count is 0)
	Count    int64         // measured messages (overrides Duration)
	Warmup   time.Duration // unmeasured phase before it
	Timeout  time.Duration // per request (default 3 s, like the Go client)

	ProducerGroup string
	ConsumerGroup string
	FromFirst     bool // consume: start at the queues' min offset, not max

	Out    io.Writer // per-second lines and the summary (default io.Discard)
	Series *Series   // per-second rows as CSV (nil: none)
	Log    io.Writer // diagnostics (default io.Discard)
}

// Defaults fills the zero fields.
func (c *WireConfig) Defaults() {
	if len(c.Namesrv) == 0 {
		c.Namesrv = []string{"127.0.0.1:9876"}
	}
	if c.Topic == "" {
		c.Topic = "mqbench"
	}
	if c.Queues <= 0 {
		c.Queues = 8
	}
	if c.Size <= 0 {
		c.Size = 1024
	}
	if c.Conns <= 0 {
		c.Conns = 4
	}
	if c.Mode == ModeBatch && c.Batch <= 0 {
		c.Batch = 32
	}
	if c.Mode != ModeBatch {
		c.Batch = 1
	}
	if c.Inflight <= 0 {
		c.Inflight = 4096
		if c.Mode == ModeSync {
			c.Inflight = 16
		}
	}
	if c.Slack == 0 {
		c.Slack = 200 * time.Microsecond
	} else if c.Slack < 0 {
		c.Slack = 0
	}
	if c.Duration <= 0 && c.Count <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.ProducerGroup == "" {
		c.ProducerGroup = "mqbench_pg"
	}
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = "mqbench_cg"
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// maxBody is the broker's default maxMessageSize (Java's CommitLog.DefaultAppendMessageCallback).
const maxBody = 4 << 20

// Validate rejects configurations the broker would refuse wholesale.
func (c *WireConfig) Validate() error {
	switch {
	case c.Size > maxBody:
		return fmt.Errorf("size %d exceeds the broker's 4 MiB message limit", c.Size)
	case c.Mode == ModeBatch && c.Batch*(c.Size+80) > maxBody:
		return fmt.Errorf("batch of %d × %d bytes exceeds the broker's 4 MiB body limit", c.Batch, c.Size)
	case c.TPS < 0:
		return errors.New("tps must be ≥ 0")
	case len(c.Topic) > 127:
		return errors.New("topic longer than 127 bytes")
	case c.Topics < 0 || c.Topics > MaxTopics:
		return fmt.Errorf("topics %d: want 1..%d", c.Topics, MaxTopics)
	case c.Topics > 1 && len(c.Topic)+1+len(strconv.Itoa(c.Topics-1)) > 127:
		return errors.New("topic plus its _N suffix longer than 127 bytes")
	}
	return nil
}

// ParseSize parses a byte count: 512, 1k, 4k, 1m (binary multiples: 1k =
// 1024), with an optional trailing b/B/iB.
func ParseSize(s string) (int, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > math.MaxInt32/mult {
		return 0, fmt.Errorf("bad size %q: want e.g. 512, 1k, 4k, 1m", s)
	}
	return n * mult, nil
}

// ParseRate parses a rate in messages/s: 1000, 10k, 100k, 1m (decimal
// multiples: 1k = 1000). "max" and 0 mean unthrottled.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	if t == "max" || t == "0" {
		return 0, nil
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1e6, t[:len(t)-1]
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f*mult > 1e9 {
		return 0, fmt.Errorf("bad rate %q: want e.g. 1000, 10k, 100k, 1m or max", s)
	}
	return int64(math.Round(f * mult)), nil
}

// ParseMode parses sync, async, oneway or batch:N.
func ParseMode(s string) (SendMode, int, error) {
	switch t := strings.ToLower(strings.TrimSpace(s)); {
	case t == "sync":
		return ModeSync, 1, nil
	case t == "async":
		return ModeAsync, 1, nil
	case t == "oneway":
		return ModeOneway, 1, nil
	case t == "batch":
		return ModeBatch, 32, nil
	case strings.HasPrefix(t, "batch:"):
		n, err := strconv.Atoi(t[len("batch:"):])
		if err != nil || n < 1 || n > 10000 {
			return 0, 0, fmt.Errorf("bad mode %q: batch size must be 1..10000", s)
		}
		return ModeBatch, n, nil
	}
	return 0, 0, fmt.Errorf("bad mode %q: want sync, async, oneway or batch:N", s)
}

// ParseOnOff parses on/off (also true/false, yes/no, 1/0).
func ParseOnOff(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("bad switch %q: want on or off", s)
}

// SplitAddrs splits a nameserver list on ';' or ','.
func SplitAddrs(s string) []string {
	var out []string
	for _, a := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		out = append(out, a)
	}
	return out
}

// IntendedOffset is when request i of a run at tps requests/s is due,
// measured from the start of the run: i/tps seconds, computed without
// overflow for any i and tps ≤ 1e9. tps ≤ 0 (unthrottled) gives 0.
func IntendedOffset(i, tps int64) time.Duration {
	if tps <= 0 || i <= 0 {
		return 0
	}
	whole, rest := i/tps, i%tps
	return time.Duration(whole)*time.Second + time.Duration(rest*int64(time.Second)/tps)
}

// PlannedCounts returns how many requests the warmup and the measured phase
// hold at tps (count, when set, fixes the measured phase). Requests carry
// batch messages each; counts are in requests.
func PlannedCounts(tps int64, batch int, warmup, duration time.Duration, count int64) (warm, measured int64) {
	if batch < 1 {
		batch = 1
	}
	perSec := float64(tps) / float64(batch)
	warm = int64(math.Round(perSec * warmup.Seconds()))
	if count > 0 {
		measured = (count + int64(batch) - 1) / int64(batch)
	} else {
		measured = int64(math.Round(perSec * duration.Seconds()))
	}
	return warm, measured
}

// Error keys that are not response codes.
const (
	ErrTimeout   = -1 // no reply within the timeout
	ErrConn      = -2 // connection failed with the request in flight
	ErrUnsent    = -3 // due but never issued (run ended or connection died)
	ErrBadRecord = -4 // consume: a record in a pull body did not parse
	ErrRequest   = -5 // consume: pull/heartbeat failed at the transport
)

// ErrName is the report name of an error key: a response code's Java name
// or one of timeout, conn_error, unsent, bad_record, request_error.
func ErrName(code int) string {
	switch code {
	case ErrTimeout:
		return "timeout"
	case ErrConn:
		return "conn_error"
	case ErrUnsent:
		return "unsent"
	case ErrBadRecord:
		return "bad_record"
	case ErrRequest:
		return "request_error"
	}
	return protocol.ResponseCodeName(int16(code))
}

// FormatErrors renders error counts as NAME:n,NAME:n sorted by name, or 0.
func FormatErrors(errs map[int]int64) string {
	var parts []string
	for k, n := range errs {
		if n > 0 {
			parts = append(parts, ErrName(k)+":"+strconv.FormatInt(n, 10))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func sumErrors(errs map[int]int64) int64 {
	var n int64
	for _, v := range errs {
		n += v
	}
	return n
}

// Latencies are recorded in microseconds, 1 µs to 60 s (NewLatencyHistogram).
const maxLatencyUs = 60_000_000

func clampUs(us int64) int64 {
	if us < 1 {
		return 1
	}
	if us > maxLatencyUs {
		return maxLatencyUs
	}
	return us
}

// Percentiles are the reported points of a latency histogram, in ms.
type Percentiles struct {
	P50, P99, P999, Max float64
	Count               int64
}

// PercentilesOf reads p50/p99/p99.9/max of a microsecond histogram, in ms.
// An empty histogram gives zeros.
func PercentilesOf(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Percentiles{
		P50: ms(h.ValueAtQuantile(50)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Count: h.TotalCount(),
	}
}

// fmtMs formats milliseconds with 3 decimals (µs resolution).
func fmtMs(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// KV writes key=value pairs separated by spaces.
type KV struct{ b strings.Builder }

// Add appends one pair.
func (k *KV) Add(key, value string) *KV {
	if k.b.Len() > 0 {
		k.b.WriteByte(' ')
	}
	k.b.WriteString(key)
	k.b.WriteByte('=')
	k.b.WriteString(value)
	return k
}

// Int appends an integer pair.
func (k *KV) Int(key string, v int64) *KV { return k.Add(key, strconv.FormatInt(v, 10)) }

// Ms appends a millisecond pair with 3 decimals.
func (k *KV) Ms(key string, v float64) *KV { return k.Add(key, fmtMs(v)) }

// Lat appends prefix+p50_ms … max_ms.
func (k *KV) Lat(prefix string, p Percentiles) *KV {
	return k.Ms(prefix+"p50_ms", p.P50).Ms(prefix+"p99_ms", p.P99).Ms(prefix+"p999_ms", p.P999).Ms(prefix+"max_ms", p.Max)
}

func (k *KV) String() string { return k.b.String() }

// Summary is the result of a run; Line renders the final report line.
type Summary struct {
	Kind     string  // produce, consume or e2e
	TPS      float64 // messages/s of the measured phase (acked, received or, oneway, sent)
	Sent     int64   // produce, e2e: messages issued in the measured phase
	Acked    int64   // produce, e2e: messages acknowledged with SUCCESS
	Received int64   // consume, e2e: messages received
	Errors   map[int]int64
	Duration time.Duration // measured phase: its first due request to its last completion
	Latency  Percentiles   // send latency (produce), store→receipt (consume), born→receipt (e2e)
	Extra    []string      // key=value pairs appended to the line
}

// Line is `tps=… p50_ms=… p99_ms=… p999_ms=… max_ms=… errors=…` then
// sent= acked= (produce, e2e), received= (consume, e2e), duration_s= and
// the extra pairs.
func (s *Summary) Line() string {
	var kv KV
	kv.Int("tps", int64(math.Round(s.TPS))).Lat("", s.Latency).Int("errors", sumErrors(s.Errors))
	if s.Kind != "consume" {
		kv.Int("sent", s.Sent).Int("acked", s.Acked)
	}
	if s.Kind != "produce" {
		kv.Int("received", s.Received)
	}
	kv.Add("duration_s", strconv.FormatFloat(s.Duration.Seconds(), 'f', 2, 64))
	for _, e := range s.Extra {
		kv.b.WriteByte(' ')
		kv.b.WriteString(e)
	}
	return kv.String()
}

// lockedHist is a histogram pair shared by one recording goroutine and the
// reporter: tick is drained every second, total keeps the measured phase.
type lockedHist struct {
	mu    sync.Mutex
	tick  *hdrhistogram.Histogram
	total *hdrhistogram.Histogram
	errs  map[int]int64 // since the last tick
	errsT map[int]int64 // measured phase
}

func newLockedHist() *lockedHist {
	return &lockedHist{tick: NewLatencyHistogram(), total: NewLatencyHistogram(),
		errs: map[int]int64{}, errsT: map[int]int64{}}
}

// record adds n values of us microseconds; measured ones also go to total.
func (l *lockedHist) record(us, n int64, measured bool) {
	us = clampUs(us)
	l.mu.Lock()
	_ = l.tick.RecordValues(us, n)
	if measured {
		_ = l.total.RecordValues(us, n)
	}
	l.mu.Unlock()
}

func (l *lockedHist) recordErr(code int, n int64, measured bool) {
	l.mu.Lock()
	l.errs[code] += n
	if measured {
		l.errsT[code] += n
	}
	l.mu.Unlock()
}

// drain moves the tick histogram and errors into the given accumulators.
func (l *lockedHist) drain(into *hdrhistogram.Histogram, errs map[int]int64) {
	l.mu.Lock()
	into.Merge(l.tick)
	l.tick.Reset()
	for k, v := range l.errs {
		errs[k] += v
		delete(l.errs, k)
	}
	l.mu.Unlock()
}

// final merges the measured-phase histogram and errors.
func (l *lockedHist) final(into *hdrhistogram.Histogram, errs map[int]int64) {
	l.mu.Lock()
	into.Merge(l.total)
	for k, v := range l.errsT {
		errs[k] += v
	}
	l.mu.Unlock()
}
