package bench

// The producer's connection: a lean, pipelined RocketMQ sender.
//
// Requests are pre-encoded once per queue as frame templates (the JSON
// header the protocol package writes, with a fixed-width placeholder for
// each field that changes) and patched in place per send: the opaque (10
// digits, kept in [1e9, 2e9) so its width never changes), bornTimestamp (13
// digits), the tail of UNIQ_KEY/KEYS and a 16-byte stamp at the start of the
// body (magic + intended unix ns, read back by the e2e consumer). A send
// therefore costs a few copies and no allocation; the scheduler goroutine
// writes every due request of a wake-up with one writev, and one reader
// goroutine per connection matches replies to a small pending table by
// opaque. Replies are parsed with a prefix scan of mqd's (and the Go
// client's) JSON header layout, falling back to protocol.DecodeFrame for
// anything else (binary headers, Java's key order).

import (
	"bufio"
	"bytes"
	"encoding/binary"
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
	"golang.org/x/sys/unix"
)

// Body stamp written at the start of every body of at least stampLen bytes:
// stampMagic, the phase the producer counted the message in (stampWarmup or
// stampMeasured), and the unix ns its latency starts from (the earlier of
// its intended and its actual send time, sendConn.issue). The receiver
// takes the phase from the stamp rather than comparing that time with the
// phase's start: a send made early within the scheduler's slack is stamped
// before the measured phase starts even when the producer counts it in that
// phase (e2e once reported up to 10 such messages "not_received"), and an
// unthrottled producer decides the phase before it waits for a window slot.
const (
	stampLen      = 16
	stampMagic    = "mqbench"
	stampWarmup   = 'w'
	stampMeasured = 'm'
)

// putStamp writes the stamp (magic, phase, unix ns) into b[:16].
func putStamp(b []byte, unixNs int64, measured bool) {
	copy(b, stampMagic)
	b[7] = stampWarmup
	if measured {
		b[7] = stampMeasured
	}
	binary.BigEndian.PutUint64(b[8:], uint64(unixNs))
}

// readStamp returns a stamped body's unix ns and whether its send was
// counted in the measured phase.
func readStamp(b []byte) (unixNs int64, measured, ok bool) {
	if len(b) < stampLen || string(b[:7]) != stampMagic || b[7] != stampWarmup && b[7] != stampMeasured {
		return 0, false, false
	}
	return int64(binary.BigEndian.Uint64(b[8:])), b[7] == stampMeasured, true
}

// Opaques travel as exactly 10 decimal digits in [opaqueBase, 2*opaqueBase).
const opaqueBase = 1_000_000_000

// bornPlaceholder is a 13-digit ms timestamp (fixed width until 2286).
const bornPlaceholder = "1000000000000"

const idTailLen = 16 // lower-case hex counter at the end of UNIQ_KEY / KEYS

// inlineMax: body remainders up to this size are copied into the write
// buffer; larger ones go out as their own writev segment.
const inlineMax = 16 << 10

// flushAt: the write buffer is flushed once it holds this much.
const flushAt = 256 << 10

// msgTemplate is one message unit: pre (patched), body, post (patched).
// For a single send pre is the whole frame head; for a batch it is the
// 20-byte entry prefix and post the entry's properties.
type msgTemplate struct {
	pre, post         []byte
	preUniq, postUniq int // offset of the UNIQ_KEY tail in pre/post, -1 if none
	preKeys, postKeys int // offset of the KEYS tail, -1 if none
}

// reqTemplate is one request for one queue.
type reqTemplate struct {
	head      []byte // frame length + type + header (batch); nil for single sends
	opaqueOff int    // in head (batch) or in msg.pre (single)
	bornOff   int
	msg       msgTemplate
}

// templateSpec is what the templates are built from.
type templateSpec struct {
	code                  int16
	topic, group          string
	queue                 int32
	bodyLen, batch        int
	keys, tags, oneway    bool
	idPrefix              string // 16 upper-case hex characters
	language              string
	version               int16
	defaultTopic          string
	defaultTopicQueueNums int32
}

// buildTemplate encodes a request with placeholders and locates them.
func buildTemplate(s templateSpec) (*reqTemplate, error) {
	placeholderID := s.idPrefix + string(bytes.Repeat([]byte{'0'}, idTailLen))
	props := map[string]string{}
	if s.tags {
		props[message.PropTags] = "TagA"
	}
	if s.keys {
		props[message.PropUniqKey] = placeholderID
		props[message.PropKeys] = "mqb" + placeholderID
	}
	propStr := message.EncodeProperties(props)
	h := protocol.SendMessageRequestHeader{
		ProducerGroup: s.group, Topic: s.topic, DefaultTopic: s.defaultTopic,
		DefaultTopicQueueNums: s.defaultTopicQueueNums, QueueID: s.queue,
		BornTimestamp: 1_000_000_000_000,
	}
	cmd := &protocol.Command{Code: s.code, Language: s.language, Version: s.version, Opaque: opaqueBase}
	if s.oneway {
		cmd.Flag = protocol.FlagOneway
	}
	var bodyLen int
	var msg msgTemplate
	switch s.code {
	case protocol.SendMessage, protocol.SendMessageV2:
		h.Properties = propStr
		if s.code == protocol.SendMessage {
			cmd.ExtFields = h.Encode()
		} else {
			cmd.ExtFields = h.EncodeV2()
		}
		bodyLen = s.bodyLen
	case protocol.SendBatchMessage:
		h.Batch = true
		cmd.ExtFields = h.EncodeV2()
		// entry: TOTALSIZE MAGIC BODYCRC FLAG BODYLEN body PROPLEN props (Java's MessageDecoder.encodeMessages)
		entryLen := 20 + s.bodyLen + 2 + len(propStr)
		pre := make([]byte, 20)
		binary.BigEndian.PutUint32(pre[0:], uint32(entryLen))
		binary.BigEndian.PutUint32(pre[16:], uint32(s.bodyLen))
		post := binary.BigEndian.AppendUint16(nil, uint16(len(propStr)))
		post = append(post, propStr...)
		msg = msgTemplate{pre: pre, post: post, preUniq: -1, preKeys: -1,
			postUniq: idTail(post, message.PropUniqKey+"\x01", s.keys),
			postKeys: idTail(post, message.PropKeys+"\x01", s.keys)}
		bodyLen = s.batch * entryLen
	default:
		return nil, fmt.Errorf("unsupported send code %d", s.code)
	}
	head, err := cmd.AppendHead(nil)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(head, uint32(len(head)-4+bodyLen))
	t := &reqTemplate{}
	t.opaqueOff = after(head, `"opaque":`)
	bornKey := `"bornTimestamp":"`
	if s.code != protocol.SendMessage {
		bornKey = `"g":"`
	}
	t.bornOff = after(head, bornKey)
	if t.opaqueOff < 0 || t.bornOff < 0 ||
		string(head[t.opaqueOff:t.opaqueOff+10]) != strconv.Itoa(opaqueBase) ||
		string(head[t.bornOff:t.bornOff+13]) != bornPlaceholder {
		return nil, errors.New("send template: placeholders not found in the encoded header")
	}
	if s.code == protocol.SendBatchMessage {
		t.head, t.msg = head, msg
	} else {
		t.msg = msgTemplate{pre: head, postUniq: -1, postKeys: -1,
			preUniq: idTail(head, message.PropUniqKey+`\u0001`, s.keys),
			preKeys: idTail(head, message.PropKeys+`\u0001mqb`, s.keys)}
	}
	if s.keys && (t.msg.preUniq < 0 && t.msg.postUniq < 0 || t.msg.preKeys < 0 && t.msg.postKeys < 0) {
		return nil, errors.New("send template: key placeholders not found")
	}
	return t, nil
}

// after returns the index just past the first occurrence of marker, or -1.
func after(b []byte, marker string) int {
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return -1
	}
	return i + len(marker)
}

// idTail locates the 16-character counter tail of the id after marker.
func idTail(b []byte, marker string, want bool) int {
	if !want {
		return -1
	}
	i := after(b, marker)
	if i < 0 {
		return -1
	}
	return i + 16
}

const digits = "0123456789"
const hexLower = "0123456789abcdef"

// putDigits writes v as exactly len(dst) decimal digits.
func putDigits(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v%10]
		v /= 10
	}
}

// putHex16 writes v as 16 lower-case hex digits.
func putHex16(dst []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		dst[i] = hexLower[v&15]
		v >>= 4
	}
}

// idPrefix is the fixed upper-case part of UNIQ_KEY-like ids: IPv4
// 127.0.0.1, pid and connection number (Go/Java put IP, pid and a class
// loader id there, Java's MessageClientIDSetter).
func idPrefix(conn int) string {
	return fmt.Sprintf("7F000001%04X%04X", os.Getpid()&0xFFFF, conn&0xFFFF)
}

// runClock is the run's monotonic clock: ns since base.
type runClock struct {
	base     time.Time
	baseUnix int64 // base as unix ns
}

func newRunClock() *runClock {
	now := time.Now()
	return &runClock{base: now, baseUnix: now.UnixNano()}
}

func (c *runClock) now() int64 { return int64(time.Since(c.base)) }

// pend is one request in flight.
type pend struct {
	intended int64 // run clock ns
	issued   int64
	n        int32 // messages
	measured bool
}

type segment struct {
	end int    // buffer offset where the inline bytes before ext end
	ext []byte // external slice written after them
}

// sendConn is one producer connection.
type sendConn struct {
	idx   int
	nc    net.Conn
	clock *runClock
	tmpls []*reqTemplate // by position in queues
	body  []byte         // body pattern (its first 16 bytes get the stamp)
	batch int
	stamp bool
	hist  *lockedHist
	lag   *hdrhistogram.Histogram // measured phase, owned by the scheduler
	onErr func(code int, f []byte)

	lagMax   atomic.Int64 // µs since the last tick
	sent     atomic.Int64 // messages, all phases
	acked    atomic.Int64
	sentM    atomic.Int64 // messages, measured phase
	ackedM   atomic.Int64
	inflight atomic.Int64 // requests
	lastDone atomic.Int64 // run clock of the last measured completion/issue

	pmu     sync.Mutex
	pending map[int32]pend
	window  chan struct{}
	dead    chan struct{}
	dieOnce sync.Once
	err     error

	opSeq  uint64
	idSeq  uint64
	buf    []byte
	segs   []segment
	vec    net.Buffers
	wdl    int64 // run clock when the write deadline was last pushed
	oneway bool
}

func newSendConn(idx int, nc net.Conn, clock *runClock, tmpls []*reqTemplate, body []byte, cfg *WireConfig) *sendConn {
	return &sendConn{
		idx: idx, nc: nc, clock: clock, tmpls: tmpls, body: body, batch: cfg.Batch,
		stamp: len(body) >= stampLen, hist: newLockedHist(), lag: NewLatencyHistogram(),
		pending: make(map[int32]pend, cfg.Inflight), window: make(chan struct{}, cfg.Inflight),
		dead: make(chan struct{}), oneway: cfg.Mode == ModeOneway,
		buf: make([]byte, 0, flushAt+64<<10),
	}
}

// nextOpaque returns the next opaque as a number of exactly 10 digits.
func (c *sendConn) nextOpaque() int32 {
	c.opSeq++
	return int32(opaqueBase + c.opSeq%opaqueBase)
}

// putMsg appends one message unit to the write buffer.
func (c *sendConn) putMsg(m *msgTemplate, unixNs int64, measured bool, id uint64) {
	pre := len(c.buf)
	c.buf = append(c.buf, m.pre...)
	if m.preUniq >= 0 {
		putHex16(c.buf[pre+m.preUniq:], id)
		putHex16(c.buf[pre+m.preKeys:], id)
	}
	rest := c.body
	if c.stamp {
		n := len(c.buf)
		c.buf = append(c.buf, c.body[:stampLen]...)
		putStamp(c.buf[n:], unixNs, measured)
		rest = c.body[stampLen:]
	}
	if len(rest) <= inlineMax {
		c.buf = append(c.buf, rest...)
	} else {
		c.segs = append(c.segs, segment{end: len(c.buf), ext: rest})
	}
	if len(m.post) > 0 {
		post := len(c.buf)
		c.buf = append(c.buf, m.post...)
		if m.postUniq >= 0 {
			putHex16(c.buf[post+m.postUniq:], id)
			putHex16(c.buf[post+m.postKeys:], id)
		}
	}
}

// encode appends request number q (queue position), stamped with origin
// (run clock: when its latency starts) and its phase, and returns its
// opaque.
func (c *sendConn) encode(q int, origin int64, measured bool) int32 {
	t := c.tmpls[q]
	op := c.nextOpaque()
	unixNs := c.clock.baseUnix + origin
	bornMs := uint64(unixNs / int64(time.Millisecond))
	if t.head != nil { // batch
		h := len(c.buf)
		c.buf = append(c.buf, t.head...)
		putDigits(c.buf[h+t.opaqueOff:h+t.opaqueOff+10], uint64(op))
		putDigits(c.buf[h+t.bornOff:h+t.bornOff+13], bornMs)
		for range c.batch {
			c.idSeq++
			c.putMsg(&t.msg, unixNs, measured, c.idSeq)
		}
		return op
	}
	h := len(c.buf)
	c.idSeq++
	c.putMsg(&t.msg, unixNs, measured, c.idSeq)
	putDigits(c.buf[h+t.opaqueOff:h+t.opaqueOff+10], uint64(op))
	putDigits(c.buf[h+t.bornOff:h+t.bornOff+13], bornMs)
	return op
}

// flush writes the buffered requests with one writev.
func (c *sendConn) flush() error {
	if len(c.buf) == 0 && len(c.segs) == 0 {
		return nil
	}
	if now := c.clock.now(); now-c.wdl > int64(100*time.Millisecond) {
		c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.wdl = now
	}
	var err error
	if len(c.segs) == 0 {
		_, err = c.nc.Write(c.buf)
	} else {
		vec, start := c.vec[:0], 0
		for _, s := range c.segs {
			if s.end > start {
				vec = append(vec, c.buf[start:s.end])
			}
			vec = append(vec, s.ext)
			start = s.end
		}
		if start < len(c.buf) {
			vec = append(vec, c.buf[start:])
		}
		c.vec = vec
		bufs := vec
		_, err = bufs.WriteTo(c.nc)
		clear(c.vec[:cap(c.vec)])
	}
	c.buf, c.segs = c.buf[:0], c.segs[:0]
	if err != nil {
		c.die(fmt.Errorf("write: %w", err))
	}
	return err
}

// acquire takes a window slot, flushing first if it has to wait. It
// reports false when the connection died.
func (c *sendConn) acquire() bool {
	select {
	case c.window <- struct{}{}:
		return true
	default:
	}
	if c.flush() != nil {
		return false
	}
	select {
	case c.window <- struct{}{}:
		return true
	case <-c.dead:
		return false
	}
}

// issue encodes one request and registers it as pending. origin is when
// its latency starts: the earlier of its intended and its actual send time
// (now) — late sends count from when they were due, early ones (within the
// slack) from when they left; the lag now − intended is recorded when
// positive.
func (c *sendConn) issue(q int, origin, now, intended int64, measured bool) {
	op := c.encode(q, origin, measured)
	n := int64(c.batch)
	c.sent.Add(n)
	if measured {
		c.sentM.Add(n)
		lagUs := max(now-intended, 0) / 1000
		_ = c.lag.RecordValue(clampUs(lagUs))
		storeMax(&c.lagMax, lagUs)
		storeMax(&c.lastDone, now)
	}
	if c.oneway {
		return // the template has flag bit 1 set: no reply comes (Java's RemotingCommand (flag bits))
	}
	c.inflight.Add(1)
	c.pmu.Lock()
	open := c.pending != nil
	if open {
		c.pending[op] = pend{intended: origin, issued: now, n: int32(n), measured: measured}
	}
	c.pmu.Unlock()
	if !open { // the connection died meanwhile: nothing will answer
		<-c.window
		c.inflight.Add(-1)
		c.hist.recordErr(ErrConn, n, measured)
	}
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// complete handles the reply to op.
func (c *sendConn) complete(op int32, code int, frame []byte) {
	now := c.clock.now()
	c.pmu.Lock()
	p, ok := c.pending[op]
	if ok {
		delete(c.pending, op)
	}
	c.pmu.Unlock()
	if !ok {
		return // timed out already, or not ours
	}
	<-c.window
	c.inflight.Add(-1)
	n := int64(p.n)
	if code == int(protocol.ResponseSuccess) {
		c.acked.Add(n)
		if p.measured {
			c.ackedM.Add(n)
		}
		c.hist.record((now-p.intended)/1000, n, p.measured)
	} else {
		c.hist.recordErr(code, n, p.measured)
		if c.onErr != nil {
			c.onErr(code, frame)
		}
	}
	if p.measured {
		storeMax(&c.lastDone, now)
	}
}

// sweep fails requests older than timeout (or all of them when all is set).
func (c *sendConn) sweep(timeout time.Duration, all bool, code int) {
	now := c.clock.now()
	var expired []pend
	c.pmu.Lock()
	for op, p := range c.pending {
		if all || now-p.issued > int64(timeout) {
			expired = append(expired, p)
			delete(c.pending, op)
		}
	}
	if all {
		c.pending = nil
	}
	c.pmu.Unlock()
	for _, p := range expired {
		<-c.window
		c.inflight.Add(-1)
		c.hist.recordErr(code, int64(p.n), p.measured)
		if p.measured {
			storeMax(&c.lastDone, now)
		}
	}
}

func (c *sendConn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// die closes the connection once and fails what is in flight.
func (c *sendConn) die(err error) {
	c.dieOnce.Do(func() {
		c.err = err
		close(c.dead)
		c.nc.Close()
		c.sweep(0, true, ErrConn)
	})
}

// readLoop matches replies to pending requests until the connection ends.
func (c *sendConn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var lb [4]byte
	buf := make([]byte, 4096)
	for {
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			c.die(fmt.Errorf("read: %w", err))
			return
		}
		n := int(int32(binary.BigEndian.Uint32(lb[:])))
		if n < 4 || n > protocol.DefaultMaxFrame {
			c.die(fmt.Errorf("read: bad frame length %d", n))
			return
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		f := buf[:n]
		if _, err := io.ReadFull(br, f); err != nil {
			c.die(fmt.Errorf("read: %w", err))
			return
		}
		code, op, flag, ok := parseReplyHead(f)
		if !ok {
			cmd, err := protocol.DecodeFrame(f)
			if err != nil {
				c.die(fmt.Errorf("read: %w", err))
				return
			}
			code, op, flag = cmd.Code, cmd.Opaque, cmd.Flag
		}
		if flag&protocol.FlagResponse == 0 {
			continue // a broker→client request; a producer has nothing to say
		}
		c.complete(op, int(code), f)
	}
}

// parseReplyHead reads code, opaque and flag of a frame (without its
// length field) when the header is binary or JSON in the order mqd and the
// Go client write: {"code":N,"language":"X","version":N,"opaque":N,"flag":N,…
func parseReplyHead(f []byte) (code int16, op, flag int32, ok bool) {
	if len(f) < 4 {
		return 0, 0, 0, false
	}
	word := binary.BigEndian.Uint32(f)
	hl := int(word & 0xFFFFFF)
	if hl > len(f)-4 {
		return 0, 0, 0, false
	}
	h := f[4 : 4+hl]
	switch protocol.SerializeType(word >> 24) {
	case protocol.SerializeRocketMQ:
		if len(h) < 13 {
			return 0, 0, 0, false
		}
		return int16(binary.BigEndian.Uint16(h)), int32(binary.BigEndian.Uint32(h[5:])),
			int32(binary.BigEndian.Uint32(h[9:])), true
	case protocol.SerializeJSON:
		p := jsonPrefix{b: h}
		c := p.key(`{"code":`).int()
		p.key(`,"language":"`).skipString()
		p.key(`,"version":`).int()
		o := p.key(`,"opaque":`).int()
		fl := p.key(`,"flag":`).int()
		if p.bad || c < -1<<15 || c >= 1<<15 {
			return 0, 0, 0, false
		}
		return int16(c), int32(o), int32(fl), true
	}
	return 0, 0, 0, false
}

// jsonPrefix is a tiny cursor for parseReplyHead; any surprise sets bad.
type jsonPrefix struct {
	b   []byte
	bad bool
}

func (p *jsonPrefix) key(k string) *jsonPrefix {
	if !p.bad && bytes.HasPrefix(p.b, []byte(k)) {
		p.b = p.b[len(k):]
	} else {
		p.bad = true
	}
	return p
}

func (p *jsonPrefix) int() int64 {
	if p.bad {
		return 0
	}
	i, neg := 0, false
	if len(p.b) > 0 && p.b[0] == '-' {
		neg, i = true, 1
	}
	var v int64
	start := i
	for ; i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' && i < 12; i++ {
		v = v*10 + int64(p.b[i]-'0')
	}
	if i == start || v > 1<<31 {
		p.bad = true
		return 0
	}
	p.b = p.b[i:]
	if neg {
		v = -v
	}
	return v
}

func (p *jsonPrefix) skipString() {
	if p.bad {
		return
	}
	i := bytes.IndexByte(p.b, '"')
	if i < 0 || bytes.IndexByte(p.b[:i], '\\') >= 0 {
		p.bad = true
		return
	}
	p.b = p.b[i+1:]
}

// sleepUntil waits for run-clock time due: nanosleep on this (locked)
// thread, whose timer slack was lowered, then a short spin. Go's own timers
// overshoot sub-millisecond sleeps by up to a millisecond when the process
// is idle, which an open-loop generator would report as latency.
func sleepUntil(clock *runClock, due int64) {
	for {
		d := due - clock.now()
		if d <= 0 {
			return
		}
		if d < 3000 {
			runtime.Gosched()
			continue
		}
		ts := unix.NsecToTimespec(d)
		_ = unix.Nanosleep(&ts, nil)
	}
}

// preciseTimerThread locks the goroutine to its thread and lowers the
// thread's timer slack from 50 µs to 1 ns (Linux).
func preciseTimerThread() {
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
}
