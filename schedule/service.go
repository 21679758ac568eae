// Package schedule delivers delay-level messages (Java's ScheduleMessageService.DeliverDelayedMessageTimerTask, Java's
// ScheduleMessageService): one goroutine per level reads the level's
// queue of engine.ScheduleTopic in order and, when the head message is
// due, re-puts it to its REAL_TOPIC / REAL_QID.
//
// Timing: a level's goroutine sleeps until its head message is due (a
// runtime timer, not a fixed poll); an empty level sleeps until the
// engine's dispatcher reports a new record in it (Service is an
// engine.Dispatcher). Messages of one level are due in store order, so the
// head is always the next one due.
//
// Durability: the re-put does not wait for the flush (it returns once the
// copy is in the log's memory), so a level never stalls for an fsync while
// more messages fall due; the store still makes the copy visible to
// consumers only once it is durable under SYNC_FLUSH (the dispatcher
// follows the durable offset, and SYNC_FLUSH syncs every appended byte at
// once). A level's in-memory offset therefore may run ahead of
// durability; the offsets the owner saves (Checkpoint) are only those
// whose re-puts are all below the durable offset. A crash re-delivers
// what was delivered after the last saved checkpoint, never loses it.
package schedule

import (
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// Store is what the service needs from the engine.
type Store interface {
	GetMessage(topic string, queueID int32, offset int64, maxMsgNums int, filter engine.MessageFilter) *engine.GetResult
	PutMessageWait(m *message.Message, wait bool) engine.PutResult
	PutMessagesWait(ms []*message.Message, wait bool) engine.PutResult
	MinOffsetInQueue(topic string, queueID int32) int64
	MaxOffsetInQueue(topic string, queueID int32) int64
	MaxPhysOffset() int64
	DurableOffset() int64
}

// Config configures a Service.
type Config struct {
	Levels []time.Duration // messageDelayLevel, level n at index n−1
	Logger *slog.Logger
}

// Tunables (Java: 100 ms after a failed put, 10 s after an exception).
const (
	retryAfterFailure = 100 * time.Millisecond
	maxRetryBackoff   = 5 * time.Second
	readMessages      = 32  // per GetMessage
	batchMessages     = 512 // per delivery put
	batchBytes        = 1 << 20
)

// Service delivers due delay-level messages.
type Service struct {
	cfg    Config
	store  Store
	levels []*level

	mu      sync.Mutex
	pending []checkpoint // snapshots waiting for their re-puts to be durable
}

type level struct {
	n         int // 1-based
	delay     time.Duration
	offset    atomic.Int64 // next consume-queue offset to deliver
	wake      chan struct{}
	delivered atomic.Int64 // messages re-put since start
	skipped   atomic.Int64 // unreadable schedule records skipped
	lateMs    atomic.Int64 // lateness of the last delivery
}

// New returns a service for cfg.Levels; SetStore must be called before Run.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg}
	for i, d := range cfg.Levels {
		s.levels = append(s.levels, &level{n: i + 1, delay: d, wake: make(chan struct{}, 1)})
	}
	return s
}

// SetStore attaches the opened store. offsets are the saved per-level
// offsets (level → next offset); they are corrected into each queue's
// [min, max] as Java does.
func (s *Service) SetStore(st Store, offsets map[int]int64) {
	s.store = st
	for _, l := range s.levels {
		q := int32(l.n - 1)
		off := offsets[l.n]
		lo, hi := st.MinOffsetInQueue(engine.ScheduleTopic, q), st.MaxOffsetInQueue(engine.ScheduleTopic, q)
		off = max(min(off, hi), lo)
		l.offset.Store(off)
	}
}

// Dispatch wakes the level a new schedule record belongs to. It runs on
// the engine's dispatch goroutine after the consume queue was written.
func (s *Service) Dispatch(r *engine.DispatchRequest) error {
	if r.Topic != engine.ScheduleTopic || r.QueueID < 0 || int(r.QueueID) >= len(s.levels) {
		return nil
	}
	select {
	case s.levels[r.QueueID].wake <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers until stop is closed; it returns when every level's
// goroutine has stopped.
func (s *Service) Run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for _, l := range s.levels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runLevel(l, stop)
		}()
	}
	wg.Wait()
}

// waitForWake means "nothing to do until a new record arrives".
const waitForWake = time.Duration(-1)

func (s *Service) runLevel(l *level, stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	backoff := retryAfterFailure
	for {
		wait, err := s.deliverDue(l)
		if err != nil {
			s.cfg.Logger.Error("schedule: delivery failed; will retry", "level", l.n, "offset", l.offset.Load(),
				"retryIn", backoff, "err", err)
			wait, backoff = backoff, min(2*backoff, maxRetryBackoff)
		} else {
			backoff = retryAfterFailure
		}
		if wait == waitForWake {
			select {
			case <-stop:
				return
			case <-l.wake:
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-stop:
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// deliverDue re-puts every due message at the head of l's queue and
// returns how long to sleep until the next one is due.
func (s *Service) deliverDue(l *level) (time.Duration, error) {
	for {
		batch, next, wait, err := s.collectDue(l)
		if err != nil || len(batch) == 0 && next < 0 {
			return wait, err
		}
		if len(batch) > 0 {
			if err := s.put(batch); err != nil {
				return 0, err
			}
			l.delivered.Add(int64(len(batch)))
		}
		if next >= 0 {
			l.offset.Store(next)
		}
		if wait != 0 && len(batch) == 0 {
			return wait, nil
		}
		// After a put, look again: wait was measured before it.
	}
}

// collectDue reads l's queue from its offset and builds the messages due
// now, up to one batch. next is the offset after the last consumed entry
// (−1: none); wait is 0 when more may be due right away, else how long
// until the head is due (or waitForWake).
func (s *Service) collectDue(l *level) (batch []*message.Message, next int64, wait time.Duration, err error) {
	next, size := int64(-1), 0
	for off := l.offset.Load(); ; {
		c := chunk{batch: batch, next: next, size: size}
		wait, err = s.scanChunk(l, off, &c)
		batch, next, size = c.batch, c.next, c.size
		if err != nil || wait != 0 || c.full || next < 0 || next == off {
			return batch, next, wait, err
		}
		off = next
	}
}

// chunk accumulates one delivery batch across reads.
type chunk struct {
	batch []*message.Message
	next  int64 // offset after the last consumed entry, −1: none
	size  int   // bytes of records in batch
	full  bool  // batch limit reached
}

// scanChunk reads one GetMessage worth of l's queue at off into c.
func (s *Service) scanChunk(l *level, off int64, c *chunk) (time.Duration, error) {
	r := s.store.GetMessage(engine.ScheduleTopic, int32(l.n-1), off, readMessages, nil)
	defer r.Release()
	switch r.Status {
	case engine.Found:
	case engine.OffsetTooSmall, engine.OffsetOverflowBadly:
		s.cfg.Logger.Warn("schedule: offset out of the queue; corrected", "level", l.n, "offset", off, "to", r.NextBeginOffset)
		c.next = r.NextBeginOffset
		return 0, nil
	case engine.OffsetFoundNull:
		if r.NextBeginOffset != off {
			c.next = r.NextBeginOffset
			return 0, nil
		}
		return retryAfterFailure, nil // entry not readable yet
	default: // empty queue, or caught up
		if len(c.batch) > 0 || c.next >= 0 {
			return 0, nil
		}
		return waitForWake, nil
	}
	now := time.Now().UnixMilli()
	for _, rec := range r.Messages {
		v, err := message.Parse(rec)
		if err != nil {
			return 0, err // stop before it; the caller retries
		}
		if due := deliverAt(s.cfg.Levels, l, &v, now); due > now {
			return time.Duration(due-now) * time.Millisecond, nil
		} else if c.size += len(rec); len(c.batch) >= batchMessages || len(c.batch) > 0 && c.size > batchBytes {
			c.full = true
			return 0, nil
		} else if m, ok := redelivery(&v); ok {
			l.lateMs.Store(now - due)
			c.batch = append(c.batch, m)
		} else {
			l.skipped.Add(1)
			s.cfg.Logger.Error("schedule: record without a usable REAL_TOPIC/REAL_QID skipped",
				"level", l.n, "queueOffset", v.QueueOffset, "physOffset", v.PhysOffset)
		}
		c.next = v.QueueOffset + 1
	}
	return 0, nil
}

// deliverAt is the record's due time; a due time further away than the
// level's delay (the clock went back) is treated as now, as Java does.
func deliverAt(levels []time.Duration, l *level, v *message.View, now int64) int64 {
	lv, _ := strconv.Atoi(propOr(v, message.PropDelay, strconv.Itoa(l.n)))
	due := engine.DeliverTimestamp(levels, lv, v.StoreTimestamp)
	if due > now+l.delay.Milliseconds() {
		return now
	}
	return due
}

func propOr(v *message.View, key, def string) string {
	if s, ok := v.Property(key); ok {
		return s
	}
	return def
}

// redelivery builds the message to put at the due time (Java's
// messageTimeup): topic and queue from REAL_TOPIC / REAL_QID; body, flag,
// sysFlag, born and store hosts, born time, reconsume count and the
// properties string copied. As in Java, the stored properties keep DELAY,
// REAL_TOPIC and REAL_QID (Java clears DELAY only from its in-memory map
// after building the string); WAIT is dropped so the put honours the flush
// policy. ok is false when the record cannot be routed.
func redelivery(v *message.View) (*message.Message, bool) {
	topic, ok := v.Property(message.PropRealTopic)
	if !ok {
		return nil, false
	}
	qs, _ := v.Property(message.PropRealQueueID)
	qid, err := strconv.ParseInt(qs, 10, 32)
	if err != nil || qid < 0 {
		return nil, false
	}
	return &message.Message{
		Topic: topic, QueueID: int32(qid), Flag: v.Flag,
		SysFlag:       v.SysFlag &^ (message.FlagBornHostV6 | message.FlagStoreHostV6),
		BornTimestamp: v.BornTimestamp, BornHost: v.BornHost(), StoreHost: v.StoreHost(),
		ReconsumeTimes: v.ReconsumeTimes, Body: append([]byte(nil), v.Body...),
		Properties: message.RemoveProperty(v.PropertiesString(), message.PropWait),
	}, true
}
