package ha

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/flush"
)

// Server is the master side: it accepts slaves and streams the log to them.
type Server struct {
	cfg Config
	src Source
	ln  net.Listener
	log *slog.Logger

	mu      sync.Mutex
	conns   map[*serverConn]struct{}
	acked   int64 // push2SlaveMaxOffset: highest offset any slave reported
	waiters flush.Queue
	// abandoned marks timed-out waiters still queued (isr.go dropWaiter)
	abandoned map[*flush.Waiter]struct{}
	closed    bool
	fenced    bool        // fence.go: no waiter is released
	lease     time.Time   // fence.go: no waiter is released after it (zero: no lease)
	isr       *isrState   // isr.go: all-in-sync acknowledgement; nil: the 4.x rule
	isrOn     atomic.Bool // isr != nil, read without mu (EnoughInSync)
	wg        sync.WaitGroup
}

type serverConn struct {
	c        net.Conn
	acked    int64           // guarded by Server.mu
	report   time.Time       // last offset report, guarded by Server.mu
	brokerID int64           // from a v2 hello (0: not given)
	ready    []*flush.Waiter // the report reader's buffer of waiters to release
}

// NewServer serves src on ln; call Serve to start.
func NewServer(ln net.Listener, src Source, cfg Config) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, src: src, ln: ln, log: cfg.Logger, conns: map[*serverConn]struct{}{}}
}

// Addr is the HA listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// BatchSize is the most frame bytes one data message carries
// (Config.BatchSize after its default).
func (s *Server) BatchSize() int { return s.cfg.BatchSize }

// Serve accepts slaves until Close.
func (s *Server) Serve() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1) // under mu: never after Close started waiting
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			s.log.Warn("ha: accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// Close stops accepting, drops every slave and fails the waiters.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for sc := range s.conns {
		sc.c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	s.releaseAll(ErrSlaveNotAvailable)
	return err
}

// Status is what the master knows of its slaves.
type Status struct {
	Slaves   int
	Acked    int64     // highest offset a slave acknowledged
	Replicas []Replica // one per connected slave, by brokerId
	// Confirmed (all-in-sync mode) is the highest send end released
	// (isr.go, Server.Confirmed).
	Confirmed int64
}

// Replica is one connected slave.
type Replica struct {
	BrokerID int64  // from its hello (0: an older slave that sends none)
	Addr     string // the remote address of its HA connection
	Acked    int64  // the offset it last acknowledged
}

// Status reports the connected slaves and the acknowledged offsets.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Slaves: len(s.conns), Acked: s.acked}
	if s.isr != nil {
		st.Confirmed = s.isr.confirmed
	}
	for sc := range s.conns {
		st.Replicas = append(st.Replicas, Replica{BrokerID: sc.brokerID, Addr: sc.c.RemoteAddr().String(), Acked: sc.acked})
	}
	slices.SortFunc(st.Replicas, func(a, b Replica) int { return cmp.Compare(a.BrokerID, b.BrokerID) })
	return st
}

// SlaveStatus is one connected slave's replication (for metrics).
type SlaveStatus struct {
	Addr       string    // the slave's remote address
	Acked      int64     // its last reported offset
	LastReport time.Time // when it reported it
}

// Slaves reports each connected slave.
func (s *Server) Slaves() []SlaveStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SlaveStatus, 0, len(s.conns))
	for sc := range s.conns {
		out = append(out, SlaveStatus{Addr: sc.c.RemoteAddr().String(), Acked: sc.acked, LastReport: sc.report})
	}
	return out
}

// WaitAck waits until a slave acknowledged every byte below end
// (SYNC_MASTER). It fails at once with ErrSlaveNotAvailable when no slave
// is connected or the acknowledged offset is more than FallBehindMax
// behind end, and with ErrSlaveTimeout after timeout. Waiters are released
// by each report, so one replication round releases every send it covers.
// In all-in-sync mode (SetSyncSet) every slave of the in-sync set must
// have acknowledged instead (isr.go).
func (s *Server) WaitAck(end int64, timeout time.Duration) error {
	s.mu.Lock()
	if decided, err := s.decideLocked(end); decided {
		s.mu.Unlock()
		return err
	}
	w := s.waiters.Add(end)
	s.mu.Unlock()
	err := w.Wait(timeout)
	if errors.Is(err, flush.ErrTimeout) {
		s.dropWaiter(w) // isr.go
		return ErrSlaveTimeout
	}
	return err
}

// AckDone is told the outcome of a WaitAckAsync once: nil, or WaitAck's
// error. It must not block. It runs on the goroutine that reads a slave's
// reports, a timer's (ErrSlaveTimeout), or the one that releases every
// waiter or changes whose acks count: Close, Fence, the last slave
// leaving, SetSyncSet.
type AckDone interface{ AckDone(err error) }

// WaitAckAsync is WaitAck for a caller that does not block (issue 14: no
// goroutine parked per SYNC_MASTER send). When the outcome is known at
// once it returns pending false and the outcome; otherwise done is told
// it later, exactly once.
func (s *Server) WaitAckAsync(end int64, timeout time.Duration, done AckDone) (pending bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if decided, err := s.decideLocked(end); decided {
		return false, err
	}
	a := ackWaiterPool.Get().(*ackWaiter)
	a.s, a.done = s, done
	a.w = s.waiters.AddAsync(end, timeout, a)
	return true, nil
}

// decideLocked answers a wait for end that needs no queueing (decided
// true): refused, or already acknowledged (nil). s.mu is held.
func (s *Server) decideLocked(end int64) (decided bool, err error) {
	switch {
	case s.closed:
		return true, ErrSlaveNotAvailable
	case !s.holdsLocked(time.Now()):
		return true, ErrFenced
	case s.isr != nil:
		return s.decideISRLocked(end) // isr.go
	case len(s.conns) == 0 || end-s.acked >= s.cfg.FallBehindMax:
		return true, ErrSlaveNotAvailable
	case s.acked >= end:
		return true, nil
	}
	return false, nil
}

// ackWaiter is WaitAckAsync's waiter: it maps the queue's timeout to
// ErrSlaveTimeout and forgets the expired waiter, as WaitAck does.
type ackWaiter struct {
	s    *Server
	w    *flush.Waiter // set under s.mu right after queueing
	done AckDone
}

var ackWaiterPool = sync.Pool{New: func() any { return new(ackWaiter) }}

func (a *ackWaiter) Complete(_ int64, err error) {
	s, done := a.s, a.done
	if errors.Is(err, flush.ErrTimeout) {
		s.mu.Lock()             // a.w is set under s.mu right after queueing
		s.dropWaiterLocked(a.w) // isr.go; an expired waiter is never recycled (flush.Waiter)
		s.mu.Unlock()
		err = ErrSlaveTimeout
	}
	*a = ackWaiter{}
	ackWaiterPool.Put(a)
	done.AckDone(err)
}

// ack records a slave's report and releases the waiters it covers, after
// unlocking: an asynchronous waiter's answer is built as it is released.
func (s *Server) ack(sc *serverConn, off int64) {
	s.mu.Lock()
	ready := s.ackLocked(sc, off, sc.ready[:0])
	s.mu.Unlock()
	release(ready)
	clear(ready) // released waiters are recycled by their owners
	sc.ready = ready[:0]
}

// ackLocked records the report and appends the waiters it covers to dst.
// The queue is not strictly in offset order (blocking sends queue after
// their own append returns), so every waiter is looked at.
func (s *Server) ackLocked(sc *serverConn, off int64, dst []*flush.Waiter) []*flush.Waiter {
	now := time.Now()
	sc.acked, sc.report = off, now
	if s.isr != nil {
		s.acked = max(s.acked, off)
		return s.takeCoveredISRLocked(dst) // isr.go: every in-sync slave must have it
	}
	if off <= s.acked || !s.holdsLocked(now) {
		return dst
	}
	s.acked = off
	return s.waiters.TakeThrough(off, dst)
}

// release tells taken waiters their bytes are acknowledged.
func release(ws []*flush.Waiter) { flush.Release(ws, 1<<63-1, nil) }

func (s *Server) releaseAll(err error) {
	s.mu.Lock()
	ws := s.waiters.Take(nil)
	s.mu.Unlock()
	flush.Release(ws, 0, err)
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	log := s.log.With("slave", c.RemoteAddr().String())
	c.SetDeadline(time.Now().Add(s.cfg.Housekeeping))
	h, err := readHello(c)
	if err != nil {
		log.Warn("ha: bad slave hello", "err", err)
		return
	}
	var ext []byte // the v2 reply extension (truncate.go)
	var id int64   // the slave's brokerId (v2)
	if h.version == versionEpochs {
		var done bool
		if ext, id, done = s.epochHello(c, h, log); done {
			return
		}
	}
	if err := s.admit(h); err != nil {
		log.Error("ha: refusing slave", "err", err)
		c.Write(reply{status: statusRefuse, masterEnd: s.src.WrittenOffset(), remark: err.Error()}.encode())
		return
	}
	r, err := s.src.OpenReader(h.offset)
	if err != nil {
		log.Error("ha: refusing slave", "err", err)
		c.Write(reply{status: statusRefuse, masterEnd: s.src.WrittenOffset(), remark: err.Error()}.encode())
		return
	}
	defer r.Close()
	if _, err := c.Write(append(reply{status: statusOK, masterEnd: s.src.WrittenOffset()}.encode(), ext...)); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	// The hello's offset is where the stream resumes, not an
	// acknowledgement: it is the slave's log end, which may hold bytes not
	// yet written (or, with AckDurable, not yet synced). The slave's first
	// report, sent as soon as it is accepted, acknowledges what it may.
	sc := &serverConn{c: c, brokerID: id}
	if !s.join(sc) {
		return
	}
	defer s.leave(sc)
	log.Info("ha: slave connected", "from", h.offset, "masterEnd", s.src.WrittenOffset())
	done := make(chan error, 1)
	go func() { done <- s.readReports(sc) }()
	var z *compressor // compress.go: only for a slave that asked
	if h.compress {
		z = &compressor{}
	}
	err = s.send(c, r, done, z)
	log.Info("ha: slave disconnected", "err", err)
}

// admit checks a slave's hello: same segment size; its log ends at or
// below ours, not below our oldest byte, and on the same frame (equal
// CRC-32C trailers before the join point).
func (s *Server) admit(h hello) error {
	if h.segmentSize != s.src.SegmentSize() {
		return fmt.Errorf("slave mappedFileSizeCommitLog %d differs from the master's %d", h.segmentSize, s.src.SegmentSize())
	}
	end := s.src.WrittenOffset()
	if h.offset > end {
		return fmt.Errorf("slave's commit log ends at %d, beyond the master's end %d: it holds bytes the master never had; move the slave's store aside and let it copy the master", h.offset, end)
	}
	if minOff := s.src.MinPhysOffset(); h.offset < minOff {
		return fmt.Errorf("slave's commit log ends at %d, below the master's oldest offset %d (deleted by retention); a slave can only start from an empty store when the master still holds offset 0", h.offset, minOff)
	}
	crc, ok, err := s.src.TrailerBefore(h.offset)
	if err != nil {
		return fmt.Errorf("reading the master's frame before %d: %w", h.offset, err)
	}
	if ok != h.hasTrailer || crc != h.trailer {
		return fmt.Errorf("slave's commit log diverges from the master's at offset %d (frame checksums %#x vs %#x): it holds bytes the master never had", h.offset, h.trailer, crc)
	}
	return nil
}

func (s *Server) join(sc *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[sc] = struct{}{}
	return true
}

func (s *Server) leave(sc *serverConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	last := len(s.conns) == 0
	s.mu.Unlock()
	if last {
		s.releaseAll(ErrSlaveNotAvailable)
	}
}

// readReports reads 8-byte offset reports until the link fails or stays
// silent for Housekeeping.
func (s *Server) readReports(sc *serverConn) error {
	var b [reportSize]byte
	for {
		sc.c.SetReadDeadline(time.Now().Add(s.cfg.Housekeeping))
		if _, err := io.ReadFull(sc.c, b[:]); err != nil {
			sc.c.Close()
			return err
		}
		off := int64(binary.BigEndian.Uint64(b[:]))
		if end := s.src.WrittenOffset(); off < 0 || off > end {
			sc.c.Close()
			return fmt.Errorf("ha: slave reported offset %d beyond the master's end %d", off, end)
		}
		s.ack(sc, off)
	}
}

// send streams frames from r, a batch at a time, and a heartbeat when
// nothing was written for Heartbeat. Memory: one buffer of about BatchSize
// plus the largest record.
func (s *Server) send(c net.Conn, r Reader, done <-chan error, z *compressor) error {
	buf := make([]byte, frameHead, frameHead+s.cfg.BatchSize+64<<10)
	lastSend := time.Now()
	hb := time.NewTicker(s.cfg.Heartbeat / 2)
	defer hb.Stop()
	for {
		adv := s.src.Advanced() // before reading, so no advance is missed
		from := r.Offset()
		out, next, err := r.Read(buf[:frameHead], s.cfg.BatchSize)
		if err != nil {
			return err
		}
		buf = out[:cap(out)][:len(out)]
		if len(out) > frameHead || time.Since(lastSend) >= s.cfg.Heartbeat {
			putFrameHead(out, from, s.src.WrittenOffset(), len(out)-frameHead)
			c.SetWriteDeadline(time.Now().Add(s.cfg.Housekeeping))
			wire := out
			if z != nil {
				wire = z.pack(out)
			}
			if _, err := c.Write(wire); err != nil {
				return err
			}
			lastSend = time.Now()
			if len(out) > frameHead {
				_ = next
				continue
			}
		}
		select {
		case err := <-done:
			return err
		case <-adv:
		case <-hb.C:
		}
	}
}
