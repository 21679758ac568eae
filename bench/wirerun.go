package bench

// The three workloads of mqbench: Produce, Consume and E2E.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
)

// producer is an open-loop producer over a set of sendConns.
type producer struct {
	cfg   *WireConfig
	clock *runClock
	conns []*sendConn

	tps           int64 // messages/s; 0 = unthrottled
	warm, total   int64 // requests (tps > 0)
	start, mStart int64 // run clock: first due request, first measured one
	end, hardEnd  int64 // nominal end; nothing is issued after hardEnd
	issuedM       atomic.Int64
	stopped       atomic.Bool // interrupted: issue nothing more

	seenMu sync.Mutex
	seen   map[int]bool // error codes whose remark was logged
}

// setupProducer resolves (or creates) the topic, dials the connections
// and builds their templates.
func setupProducer(ctx context.Context, cfg *WireConfig, adm *wireAdmin, clock *runClock) (*producer, error) {
	names := cfg.TopicNames()
	routes, err := adm.ensureTopics(ctx, names) // wiretopics.go
	if err != nil {
		return nil, err
	}
	byAddr, addrs := spreadPairs(names, routes)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("topic %s has no writable queue on a master", cfg.Topic)
	}
	npairs := 0
	for _, pairs := range byAddr {
		npairs += len(pairs)
	}
	for _, addr := range addrs {
		if err := adm.heartbeat(ctx, addr, true, false); err != nil {
			return nil, err
		}
	}
	p := &producer{cfg: cfg, clock: clock, tps: cfg.TPS, seen: map[int]bool{}}
	nconns := max(cfg.Conns, len(addrs))
	body := make([]byte, cfg.Size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	code, lang, version := protocol.SendMessage, protocol.LanguageGo, protocol.VersionGoClient
	switch {
	case cfg.Mode == ModeBatch:
		code = protocol.SendBatchMessage
	case cfg.V2:
		code, lang, version = protocol.SendMessageV2, protocol.LanguageJava, protocol.VersionV4_9_7
	}
	shares := connShares(byAddr, addrs, nconns, len(names) > 1)
	for k := range nconns {
		addr := addrs[k%len(addrs)]
		var tmpls []*reqTemplate
		for _, q := range shares[k] {
			t, err := buildTemplate(templateSpec{
				code: code, topic: q.topic, group: cfg.ProducerGroup, queue: q.queue,
				bodyLen: cfg.Size, batch: cfg.Batch, keys: cfg.Keys, tags: cfg.Tags,
				oneway: cfg.Mode == ModeOneway, idPrefix: idPrefix(k), language: lang, version: version,
				defaultTopic: defaultTopicKey, defaultTopicQueueNums: 4,
			})
			if err != nil {
				p.close()
				return nil, err
			}
			tmpls = append(tmpls, t)
		}
		d := net.Dialer{Timeout: 3 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("dial broker %s: %w", addr, err)
		}
		c := newSendConn(k, nc, clock, tmpls, body, cfg)
		c.onErr = p.logRemark
		p.conns = append(p.conns, c)
	}
	fmt.Fprintf(cfg.Log, "producing to %s (%d topic(s)): %d queues on %d broker(s), %d connection(s)\n", cfg.Topic, len(names), npairs, len(addrs), nconns)
	return p, nil
}

// logRemark logs the remark of the first reply with each error code.
func (p *producer) logRemark(code int, frame []byte) {
	p.seenMu.Lock()
	first := !p.seen[code]
	p.seen[code] = true
	p.seenMu.Unlock()
	if !first {
		return
	}
	remark := ""
	if cmd, err := protocol.DecodeFrame(frame); err == nil {
		remark = cmd.Remark
	}
	fmt.Fprintf(p.cfg.Log, "first %s reply: %q\n", ErrName(code), remark)
}

func (p *producer) close() {
	for _, c := range p.conns {
		c.die(errors.New("closed"))
	}
}

// plan fixes the schedule, starting startDelay from now.
func (p *producer) plan(startDelay time.Duration) {
	cfg := p.cfg
	p.start = p.clock.now() + int64(startDelay)
	batch := int64(cfg.Batch)
	if p.tps > 0 {
		warm, measured := PlannedCounts(p.tps, cfg.Batch, cfg.Warmup, cfg.Duration, cfg.Count)
		p.warm, p.total = warm, warm+measured
		p.mStart = p.start + int64(IntendedOffset(warm*batch, p.tps))
		p.end = p.start + int64(IntendedOffset(p.total*batch, p.tps))
	} else {
		p.mStart = p.start + int64(cfg.Warmup)
		p.end = p.mStart + int64(cfg.Duration)
		if cfg.Count > 0 { // bounded by count, and by time at 10 µs a message
			p.end = p.mStart + int64(max(cfg.Duration, time.Duration(cfg.Count)*10*time.Microsecond))
		}
	}
	p.hardEnd = p.end + int64(cfg.Timeout) + int64(2*time.Second)
}

// chunkMax bounds the requests one wake-up hands to one connection.
const chunkMax = 64

// schedule is the single scheduler: request i is due at start + i·batch/tps.
// Each wake-up issues every request due by now+slack (at most chunkMax, or
// a full write buffer) on the next connection in rotation and writes them
// with one syscall; then it sleeps until the next request is due. So one
// wake-up serves a slack's worth of requests. A request sent early is measured from its actual send time, one
// sent late from its intended time, so the generator's own lateness and any
// back-pressure (a full window, a blocked socket) count as latency.
func (p *producer) schedule() {
	preciseTimerThread()
	defer runtime.UnlockOSThread()
	clock, batch, slack := p.clock, int64(p.cfg.Batch), int64(p.cfg.Slack)
	conns := p.conns
	qpos := make([]int, len(conns))
	sleepUntil(clock, p.start)
	var i int64 // next request
	for w, alive := 0, len(conns); alive > 0 && !p.stopped.Load(); w = (w + 1) % len(conns) {
		now := clock.now()
		if now > p.hardEnd {
			break
		}
		if p.tps > 0 {
			if i >= p.total {
				break
			}
			if next := p.start + int64(IntendedOffset(i*batch, p.tps)); next > now+slack {
				sleepUntil(clock, next)
				w-- // the same connection takes the next chunk
				continue
			}
		} else if now >= p.end {
			break
		}
		c := conns[w]
		if c.isDead() {
			alive = p.alive()
			continue
		}
		for k := 0; k < chunkMax && len(c.buf) < flushAt; k++ {
			var intended int64
			var measured bool
			if p.tps > 0 {
				if i >= p.total {
					break
				}
				if intended = p.start + int64(IntendedOffset(i*batch, p.tps)); intended > now+slack {
					break
				}
				measured = i >= p.warm
			} else {
				if measured = now >= p.mStart; measured && p.cfg.Count > 0 && p.issuedM.Add(batch) > p.cfg.Count {
					p.stopped.Store(true)
					break
				}
			}
			if !c.oneway && !c.acquire() {
				break
			}
			now = clock.now()
			if p.tps <= 0 {
				intended = now // unthrottled: measured from the send, window waits excluded
			}
			c.issue(qpos[w], min(intended, now), now, intended, measured)
			qpos[w] = (qpos[w] + 1) % len(c.tmpls)
			i++
		}
		c.flush()
		if p.tps <= 0 && p.cfg.Count > 0 && p.stopped.Load() {
			break
		}
	}
	for _, c := range conns {
		c.flush()
	}
}

func (p *producer) alive() int {
	n := 0
	for _, c := range p.conns {
		if !c.isDead() {
			n++
		}
	}
	return n
}

// sweeper times out requests of every connection until stop is closed.
func (p *producer) sweeper(stop <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			for _, c := range p.conns {
				c.sweep(p.cfg.Timeout, false, ErrTimeout)
			}
		}
	}
}

// run issues the whole schedule and waits for the replies (at most the
// timeout after the last request).
func (p *producer) run() {
	stop := make(chan struct{})
	go p.sweeper(stop)
	for _, c := range p.conns {
		go c.readLoop()
	}
	p.schedule()
	deadline := time.Now().Add(p.cfg.Timeout + 200*time.Millisecond)
	for p.inflight() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	for _, c := range p.conns {
		c.sweep(0, true, ErrTimeout)
	}
}

// stopOn stops issuing when ctx ends; the returned function releases it.
func (p *producer) stopOn(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { p.stopped.Store(true) })
}

func (p *producer) inflight() int64 {
	var n int64
	for _, c := range p.conns {
		n += c.inflight.Load()
	}
	return n
}

// tick is one second of producer figures.
type prodTick struct {
	sent, acked int64
	errs        map[int]int64
	hist        *hdrhistogram.Histogram
	inflight    int64
	lagMaxUs    int64
}

// prodCounters are the cumulative counters the ticks are differences of.
type prodCounters struct{ sent, acked int64 }

func (p *producer) tick(prev *prodCounters, h *hdrhistogram.Histogram) prodTick {
	t := prodTick{errs: map[int]int64{}, hist: h}
	h.Reset()
	var cur prodCounters
	for _, c := range p.conns {
		cur.sent += c.sent.Load()
		cur.acked += c.acked.Load()
		c.hist.drain(h, t.errs)
		t.inflight += c.inflight.Load()
		t.lagMaxUs = max(t.lagMaxUs, c.lagMax.Swap(0))
	}
	t.sent, t.acked = cur.sent-prev.sent, cur.acked-prev.acked
	*prev = cur
	return t
}

// summary collects the measured phase.
func (p *producer) summary() *Summary {
	cfg := p.cfg
	s := &Summary{Kind: "produce", Errors: map[int]int64{}}
	lat, lag := NewLatencyHistogram(), NewLatencyHistogram()
	var last int64
	for _, c := range p.conns {
		s.Sent += c.sentM.Load()
		s.Acked += c.ackedM.Load()
		c.hist.final(lat, s.Errors)
		lag.Merge(c.lag)
		last = max(last, c.lastDone.Load())
	}
	if p.tps > 0 {
		planned := (p.total - p.warm) * int64(cfg.Batch)
		if cfg.Count > 0 {
			planned = cfg.Count
		}
		if unsent := planned - s.Sent; unsent > 0 {
			s.Errors[ErrUnsent] += unsent
		}
	}
	if last > p.mStart {
		s.Duration = time.Duration(last - p.mStart)
	}
	n := s.Acked
	if cfg.Mode == ModeOneway {
		n = s.Sent
	}
	if s.Duration > 0 {
		s.TPS = float64(n) / s.Duration.Seconds()
	}
	if cfg.Mode != ModeOneway {
		s.Latency = PercentilesOf(lat)
	}
	lp := PercentilesOf(lag)
	mode := cfg.Mode.String()
	if cfg.Mode == ModeBatch {
		mode += ":" + strconv.Itoa(cfg.Batch)
	}
	target := "max"
	if p.tps > 0 {
		target = strconv.FormatInt(p.tps, 10)
	}
	var kv KV
	kv.Add("mode", mode).Int("size", int64(cfg.Size)).Add("target_tps", target).Int("conns", int64(len(p.conns))).
		Int("inflight", int64(cfg.Inflight)).Ms("lag_p99_ms", lp.P99).Ms("lag_max_ms", lp.Max)
	if sumErrors(s.Errors) > 0 {
		kv.Add("error_codes", FormatErrors(s.Errors))
	}
	s.Extra = append(s.Extra, kv.String())
	return s
}

// Produce runs the open-loop producer and returns its summary; per-second
// lines and the summary line go to cfg.Out.
func Produce(ctx context.Context, cfg WireConfig) (*Summary, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	adm := newWireAdmin(&cfg)
	defer adm.close()
	clock := newRunClock()
	p, err := setupProducer(ctx, &cfg, adm, clock)
	if err != nil {
		return nil, err
	}
	defer p.close()
	p.plan(50 * time.Millisecond)
	defer p.stopOn(ctx)()
	stopRep := reportEverySecond(cfg.Out, clock, p.start, p.line(nil))
	p.run()
	stopRep()
	s := p.summary()
	fmt.Fprintln(cfg.Out, s.Line())
	return s, nil
}

// line returns the per-second line builder of a produce (cons nil) or e2e
// run.
func (p *producer) line(cons *consumer) func(sec int) string {
	var prev prodCounters
	var prevRecv int64
	h, ch := NewLatencyHistogram(), NewLatencyHistogram()
	return func(sec int) string {
		t := p.tick(&prev, h)
		var kv KV
		kv.Int("t", int64(sec)).Int("sent/s", t.sent).Int("acked/s", t.acked)
		var recvSec int64
		if cons != nil {
			recv := cons.recv.Load()
			recvSec = recv - prevRecv
			kv.Int("recv/s", recvSec)
			prevRecv = recv
			ch.Reset()
			cons.hist.drain(ch, t.errs)
		}
		kv.Add("errors", FormatErrors(t.errs))
		row := SeriesRow{Second: sec, Sent: t.sent, Acked: t.acked, Errors: sumErrors(t.errs), Latency: PercentilesOf(t.hist)}
		if cons != nil {
			row.Latency = PercentilesOf(ch)
			row.Received = recvSec
			kv.Lat("", row.Latency).Ms("send_p99_ms", PercentilesOf(t.hist).P99)
		} else {
			kv.Lat("", row.Latency)
		}
		kv.Int("inflight", t.inflight).Ms("lag_max_ms", float64(t.lagMaxUs)/1000)
		if row.Warmup = p.start+int64(sec)*int64(time.Second) <= p.mStart; row.Warmup {
			kv.Add("phase", "warmup")
		}
		p.cfg.Series.Add(row)
		return kv.String()
	}
}

// reportEverySecond writes line(sec) to out every second after start (run
// clock) until the returned stop function is called.
func reportEverySecond(out io.Writer, clock *runClock, start int64, line func(sec int) string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for sec := 1; ; sec++ {
			wait := time.Duration(start + int64(sec)*int64(time.Second) - clock.now())
			select {
			case <-done:
				return
			case <-time.After(wait):
			}
			fmt.Fprintln(out, line(sec))
		}
	})
	return func() { close(done); wg.Wait() }
}

// consumer pulls every read queue of the topic with long polling.
type consumer struct {
	cfg    *WireConfig
	adm    *wireAdmin
	clock  *runClock
	queues []brokerQueue
	offs   []int64
	e2e    bool
	mStart int64 // run clock; e2e uses the producer's
	mUnix  int64 // mStart as unix ns

	hist        *lockedHist
	recv, recvM atomic.Int64 // messages: all, measured phase
	bytesM      atomic.Int64 // body bytes, measured phase
	last        atomic.Int64 // run clock of the last measured receipt
}

// setupConsumer heartbeats the consumer group to every broker of the topic
// and reads the starting offsets (max, or min with FromFirst).
func setupConsumer(ctx context.Context, cfg *WireConfig, adm *wireAdmin, clock *runClock, e2e bool) (*consumer, error) {
	r, err := adm.ensureTopic(ctx)
	if err != nil {
		return nil, err
	}
	c := &consumer{cfg: cfg, adm: adm, clock: clock, e2e: e2e, hist: newLockedHist(), queues: routeQueues(r, false)}
	if len(c.queues) == 0 {
		return nil, fmt.Errorf("topic %s has no readable queue", cfg.Topic)
	}
	done := map[string]bool{}
	for _, q := range c.queues {
		if !done[q.addr] {
			done[q.addr] = true
			if err := adm.heartbeat(ctx, q.addr, e2e, true); err != nil {
				return nil, err
			}
		}
		off, err := adm.queueOffset(ctx, q, !cfg.FromFirst)
		if err != nil {
			return nil, fmt.Errorf("offset of %s queue %d on %s: %w", cfg.Topic, q.queue, q.addr, err)
		}
		c.offs = append(c.offs, off)
	}
	fmt.Fprintf(cfg.Log, "consuming %s as %s: %d queues\n", cfg.Topic, cfg.ConsumerGroup, len(c.queues))
	return c, nil
}

// setMeasureStart sets when the measured phase starts (run clock).
func (c *consumer) setMeasureStart(t int64) {
	c.mStart, c.mUnix = t, c.clock.baseUnix+t
}

// run pulls until ctx ends (or Count messages were measured: then cancel
// is called), heartbeating every 20 s.
func (c *consumer) run(ctx context.Context, cancel func()) {
	var wg sync.WaitGroup
	for i, q := range c.queues {
		wg.Go(func() { c.pullLoop(ctx, cancel, q, c.offs[i]) })
	}
	wg.Go(func() {
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, addr := range uniqueAddrs(c.queues) {
					_ = c.adm.heartbeat(ctx, addr, c.e2e, true)
				}
			}
		}
	})
	wg.Wait()
}

func uniqueAddrs(qs []brokerQueue) []string {
	var out []string
	seen := map[string]bool{}
	for _, q := range qs {
		if !seen[q.addr] {
			seen[q.addr] = true
			out = append(out, q.addr)
		}
	}
	return out
}

// Pull settings of the Go push consumer (Java's PullMessageProcessor).
const (
	pullBatch          = 32
	pullSuspendMillis  = 20000
	pullRequestTimeout = 30 * time.Second
)

// pullLoop long-polls one queue.
func (c *consumer) pullLoop(ctx context.Context, cancel func(), q brokerQueue, off int64) {
	for ctx.Err() == nil {
		sysFlag := protocol.PullFlagSuspend
		if off > 0 {
			sysFlag |= protocol.PullFlagCommitOffset
		}
		cmd := protocol.NewRequest(protocol.PullMessage, &protocol.PullMessageRequestHeader{
			ConsumerGroup: c.cfg.ConsumerGroup, Topic: c.cfg.Topic, QueueID: q.queue, QueueOffset: off,
			MaxMsgNums: pullBatch, SysFlag: sysFlag, CommitOffset: off, SuspendTimeoutMillis: pullSuspendMillis,
			Subscription: protocol.SubAll, ExpressionType: protocol.ExpressionTypeTag,
		})
		pctx, pcancel := context.WithTimeout(ctx, pullRequestTimeout)
		resp, err := c.adm.pool.Invoke(pctx, q.addr, cmd)
		pcancel()
		now := c.clock.now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.hist.recordErr(ErrRequest, 1, now >= c.mStart)
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		var rh protocol.PullMessageResponseHeader
		headerOK := rh.Decode(resp.ExtFields) == nil
		if debugPull {
			fmt.Fprintf(c.cfg.Log, "pull q=%d off=%d -> %s next=%d body=%d\n", q.queue, off, protocol.ResponseCodeName(resp.Code), rh.NextBeginOffset, len(resp.Body))
		}
		switch resp.Code {
		case protocol.ResponseSuccess:
			c.records(resp.Body, now)
			if headerOK {
				off = rh.NextBeginOffset
			}
		case protocol.ResponsePullNotFound, protocol.ResponsePullRetryImmediately, protocol.ResponsePullOffsetMoved:
			if headerOK {
				off = rh.NextBeginOffset
			}
		default:
			c.hist.recordErr(int(resp.Code), 1, now >= c.mStart)
			sleepCtx(ctx, 200*time.Millisecond)
		}
		if c.cfg.Count > 0 && c.recvM.Load() >= c.cfg.Count && !c.e2e {
			cancel()
		}
	}
}

var debugPull = os.Getenv("MQBENCH_DEBUG_PULL") != ""

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// records parses a pull body and records each message's latency: receipt −
// STORETIMESTAMP (consume) or receipt − born time (e2e; the body stamp
// gives the born time to the nanosecond, else bornTimestamp in ms).
func (c *consumer) records(body []byte, now int64) {
	nowUnix := c.clock.baseUnix + now
	var n, nM, bytesM int64
	var bad int64
	c.hist.mu.Lock()
	defer c.hist.mu.Unlock()
	for len(body) > 0 {
		v, err := message.Parse(body)
		if err != nil {
			bad++
			break
		}
		body = body[len(v.Raw):]
		var us int64
		measured := now >= c.mStart
		switch stamp, stampMeasured, ok := readStamp(v.Body); {
		case c.e2e && ok:
			us, measured = (nowUnix-stamp)/1000, stampMeasured
		case c.e2e:
			us, measured = nowUnix/1000-v.BornTimestamp*1000, v.BornTimestamp*1e6 >= c.mUnix
		default:
			us = nowUnix/1000 - v.StoreTimestamp*1000
		}
		us = clampUs(us)
		_ = c.hist.tick.RecordValue(us)
		n++
		if measured {
			_ = c.hist.total.RecordValue(us)
			nM++
			bytesM += int64(len(v.Body))
		}
	}
	if bad > 0 {
		c.hist.errs[ErrBadRecord] += bad
		c.hist.errsT[ErrBadRecord] += bad
	}
	c.recv.Add(n)
	if nM > 0 {
		c.recvM.Add(nM)
		c.bytesM.Add(bytesM)
		storeMax(&c.last, now)
	}
}

// summary of the measured phase.
func (c *consumer) summary(kind string) *Summary {
	s := &Summary{Kind: kind, Errors: map[int]int64{}, Received: c.recvM.Load()}
	h := NewLatencyHistogram()
	c.hist.final(h, s.Errors)
	s.Latency = PercentilesOf(h)
	if last := c.last.Load(); last > c.mStart {
		s.Duration = time.Duration(last - c.mStart)
		s.TPS = float64(s.Received) / s.Duration.Seconds()
	}
	return s
}

// Consume pulls the topic for the warmup plus the duration (or until Count
// messages were received) and reports receipt − store time.
func Consume(ctx context.Context, cfg WireConfig) (*Summary, error) {
	cfg.Defaults()
	adm := newWireAdmin(&cfg)
	defer adm.close()
	clock := newRunClock()
	c, err := setupConsumer(ctx, &cfg, adm, clock, false)
	if err != nil {
		return nil, err
	}
	start := clock.now()
	c.setMeasureStart(start + int64(cfg.Warmup))
	limit := cfg.Warmup + cfg.Duration
	if cfg.Count > 0 {
		limit = cfg.Warmup + max(cfg.Duration, time.Hour)
	}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var prevRecv, prevBytes int64
	h := NewLatencyHistogram()
	stopRep := reportEverySecond(cfg.Out, clock, start, func(sec int) string {
		errs := map[int]int64{}
		h.Reset()
		c.hist.drain(h, errs)
		recv, b := c.recv.Load(), c.bytesM.Load()
		var kv KV
		kv.Int("t", int64(sec)).Int("recv/s", recv-prevRecv).
			Add("MB/s", strconv.FormatFloat(float64(b-prevBytes)/1e6, 'f', 1, 64)).
			Add("errors", FormatErrors(errs)).Lat("", PercentilesOf(h))
		warm := start+int64(sec)*int64(time.Second) <= c.mStart
		if warm {
			kv.Add("phase", "warmup")
		}
		cfg.Series.Add(SeriesRow{Second: sec, Received: recv - prevRecv, Errors: sumErrors(errs), Latency: PercentilesOf(h), Warmup: warm})
		prevRecv, prevBytes = recv, b
		return kv.String()
	})
	c.run(rctx, cancel)
	stopRep()
	s := c.summary("consume")
	var kv KV
	mb := 0.0
	if s.Duration > 0 {
		mb = float64(c.bytesM.Load()) / 1e6 / s.Duration.Seconds()
	}
	kv.Add("mb_s", strconv.FormatFloat(mb, 'f', 1, 64)).Int("queues", int64(len(c.queues))).Add("latency", "store_to_receipt")
	if sumErrors(s.Errors) > 0 {
		kv.Add("error_codes", FormatErrors(s.Errors))
	}
	s.Extra = append(s.Extra, kv.String())
	fmt.Fprintln(cfg.Out, s.Line())
	return s, nil
}

// E2E produces (open loop) and consumes the same topic in one process and
// reports receipt − born time of every message, plus the send figures.
func E2E(ctx context.Context, cfg WireConfig) (*Summary, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Topics > 1 {
		return nil, errors.New("e2e consumes one topic: -topics is for produce")
	}
	cfg.FromFirst = false
	adm := newWireAdmin(&cfg)
	defer adm.close()
	clock := newRunClock()
	p, err := setupProducer(ctx, &cfg, adm, clock)
	if err != nil {
		return nil, err
	}
	defer p.close()
	c, err := setupConsumer(ctx, &cfg, adm, clock, true)
	if err != nil {
		return nil, err
	}
	p.plan(200 * time.Millisecond) // let the first long polls park
	defer p.stopOn(ctx)()
	c.setMeasureStart(p.mStart)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.run(cctx, cancel) })
	stopRep := reportEverySecond(cfg.Out, clock, p.start, p.line(c))
	p.run()
	// let the consumer catch up with what was acknowledged (bounded)
	var ackedAll int64
	for _, sc := range p.conns {
		if cfg.Mode == ModeOneway {
			ackedAll += sc.sent.Load()
		} else {
			ackedAll += sc.acked.Load()
		}
	}
	deadline := time.Now().Add(cfg.Timeout + 2*time.Second)
	for c.recv.Load() < ackedAll && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	stopRep()
	ps := p.summary()
	s := c.summary("e2e")
	s.Sent, s.Acked = ps.Sent, ps.Acked
	for k, v := range ps.Errors {
		s.Errors[k] += v
	}
	s.Duration = max(s.Duration, ps.Duration)
	if s.Duration > 0 {
		s.TPS = float64(s.Received) / s.Duration.Seconds()
	}
	var kv KV
	kv.Add("latency", "born_to_receipt").Lat("send_", ps.Latency)
	if lost := s.Acked - s.Received; lost > 0 {
		kv.Int("not_received", lost)
	}
	s.Extra = append(append(s.Extra, kv.String()), ps.Extra...)
	fmt.Fprintln(cfg.Out, s.Line())
	return s, nil
}
