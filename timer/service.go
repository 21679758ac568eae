// Package timer delivers messages at an arbitrary time (RocketMQ 5.x timer
// messages, Java's 5.x TimerMessageStore): the broker stores a message carrying
// TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS in Topic with
// TIMER_OUT_MS = its due time; this package files each such record in an
// on-disk three-level wheel of append-only files (by hour, minute, second;
// FORMAT.md), cascades far entries to finer files as their time nears and,
// when a second begins, loads that second and re-puts each message at its
// due millisecond to REAL_TOPIC / REAL_QID. A pending message costs 24
// bytes of disk per level and no memory until its second.
//
// One goroutine (Run) owns the files' tails, the enqueue offset (the next
// entry of Topic's consume queue to file), the cascade counters and the
// current second. Messages further away than RollWindow are parked at
// now + RollWindow and then re-put to Topic (a fresh commit-log record), so
// no pending message depends on a commit-log segment older than RollWindow.
//
// Crash safety: Checkpoint returns the state only after the files are
// synced and every re-put it covers is durable; after a crash, records
// past the saved enqueue offset are filed again and cascades repeated (the
// repeats land in the same second file and are dropped on reading it), and
// the saved second is delivered again from its saved done-before time: at
// most about one checkpoint interval of deliveries can repeat; none is
// lost.
package timer

import (
	"container/heap"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// Topic is 5.x's rmq_sys_wheel_timer.
const Topic = "rmq_sys_wheel_timer"

// Message properties (Java's 5.x MessageConst timer properties).
const (
	PropDeliverMs  = "TIMER_DELIVER_MS"
	PropDelaySec   = "TIMER_DELAY_SEC"
	PropDelayMs    = "TIMER_DELAY_MS"
	PropOutMs      = "TIMER_OUT_MS"
	PropDequeueMs  = "TIMER_DEQUEUE_MS"
	PropRollTimes  = "TIMER_ROLL_TIMES"
	defaultRollWin = 2 * 24 * time.Hour // timerRollWindowSlot 172800 × 1 s
)

// Store is what the service needs from the engine.
type Store interface {
	GetMessage(topic string, queueID int32, offset int64, maxMsgNums int, filter engine.MessageFilter) *engine.GetResult
	ReadMessage(phys int64) ([]byte, error)
	PutMessagesWait(ms []*message.Message, wait bool) engine.PutResult
	PutMessageWait(m *message.Message, wait bool) engine.PutResult
	MinOffsetInQueue(topic string, queueID int32) int64
	MaxOffsetInQueue(topic string, queueID int32) int64
	MaxPhysOffset() int64
	DurableOffset() int64
}

// Config configures a Service.
type Config struct {
	Dir        string        // slot files (<store>/timer)
	RollWindow time.Duration // default 2 days
	Logger     *slog.Logger
}

// State is what the owner persists (config/timercheck.json).
type State struct {
	EnqueueOffset int64 `json:"enqueueOffset"` // next entry of Topic's queue 0 to file
	ReadSecond    int64 `json:"readSecond"`    // epoch second being delivered; earlier ones are done
	// Minutes before MinuteCascaded are filed by second, hours before
	// HourCascaded by minute (or second); later ones by minute / hour.
	MinuteCascaded int64 `json:"minuteCascaded"`
	HourCascaded   int64 `json:"hourCascaded"`
	// Entries of ReadSecond due before DoneBeforeMs are delivered.
	DoneBeforeMs int64 `json:"doneBeforeMs"`
}

const (
	enqueuePerRound = 1024
	refileChunk     = 1024 // entries re-filed between deliveries (refile)
	batchMessages   = 512
	retryAfter      = 100 * time.Millisecond
	maxBackoff      = 5 * time.Second
)

// Service files and delivers timer messages.
type Service struct {
	cfg   Config
	store Store
	slots *slots
	wake  chan struct{}

	enqOffset  atomic.Int64
	curSec     atomic.Int64
	doneBefore atomic.Int64   // State.DoneBeforeMs
	minutes    atomic.Int64   // minutes below are filed by second (routing)
	minSafe    atomic.Int64   // State.MinuteCascaded: minutes below are re-filed completely
	hours      atomic.Int64   // hours below are filed by minute or second (routing)
	hourSafe   atomic.Int64   // State.HourCascaded
	cur        entryHeap      // entries of curSec not delivered yet (run goroutine)
	meanwhile  func() error   // delivers what fell due during a cascade (dequeue; tests without a store: none)
	curPhys    map[int64]bool // commit-log offsets of curSec's entries: a record filed again is not queued twice

	delivered, rolled, skipped atomic.Int64
	filed                      atomic.Int64 // entries written since start

	mu      sync.Mutex
	pending []snapshot
}

type snapshot struct {
	st   State
	tail int64
}

// New opens the slot directory.
func New(cfg Config) (*Service, error) {
	if cfg.RollWindow <= 0 {
		cfg.RollWindow = defaultRollWin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sl, err := openSlots(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, slots: sl, wake: make(chan struct{}, 1)}
	s.meanwhile = s.dequeue
	return s, nil
}

// SetStore attaches the opened store and the saved state (nil: fresh).
func (s *Service) SetStore(st Store, saved *State) error {
	s.store = st
	lo, hi := st.MinOffsetInQueue(Topic, 0), st.MaxOffsetInQueue(Topic, 0)
	sec := time.Now().Unix()
	var off, done int64
	mins, hours := floorDiv(sec, 60)+1, floorDiv(sec, 3600)+1
	if saved != nil {
		off, sec, done = saved.EnqueueOffset, saved.ReadSecond, saved.DoneBeforeMs
		mins, hours = max(saved.MinuteCascaded, floorDiv(sec, 60)+1), max(saved.HourCascaded, floorDiv(sec, 3600)+1)
	}
	s.enqOffset.Store(max(min(off, hi), lo))
	s.minutes.Store(mins)
	s.minSafe.Store(mins)
	s.hours.Store(hours)
	s.hourSafe.Store(hours)
	return s.enterSecond(sec, done)
}

// enterSecond makes sec current and loads its slot, except entries due
// before doneBefore (delivered before a restart).
func (s *Service) enterSecond(sec, doneBefore int64) error {
	all, err := s.slots.read(slotKey{levelSecond, sec})
	if err != nil {
		return err
	}
	es := all[:0]
	for _, e := range all {
		if e.target >= doneBefore {
			es = append(es, e)
		}
	}
	s.doneBefore.Store(doneBefore)
	s.cur = entryHeap(es)
	heap.Init(&s.cur)
	s.curPhys = make(map[int64]bool, len(es))
	for _, e := range es {
		s.curPhys[e.phys] = true
	}
	s.curSec.Store(sec)
	return nil
}

// Dispatch wakes the service for a new timer record (engine dispatcher).
func (s *Service) Dispatch(r *engine.DispatchRequest) error {
	if r.Topic == Topic {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Run files and delivers until stop is closed.
func (s *Service) Run(stop <-chan struct{}) {
	defer s.slots.close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	backoff := retryAfter
	for {
		wait, err := s.round()
		if err != nil {
			s.cfg.Logger.Error("timer: round failed; will retry", "retryIn", backoff, "err", err)
			wait, backoff = backoff, min(2*backoff, maxBackoff)
		} else {
			backoff = retryAfter
		}
		if wait <= 0 {
			select {
			case <-stop:
				return
			default:
				continue
			}
		}
		timer.Reset(wait)
		select {
		case <-stop:
			return
		case <-s.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// round files new records and delivers what is due; it returns how long
// nothing is due (0: call again now). What is due is delivered before and
// after filing a chunk, so a backlog of new records (up to enqueuePerRound
// per round) never delays a due delivery by more than one chunk's filing.
func (s *Service) round() (time.Duration, error) {
	if err := s.cascade(time.Now().Unix()); err != nil {
		return 0, err
	}
	if err := s.dequeue(); err != nil {
		return 0, err
	}
	more, err := s.enqueue()
	if err != nil {
		return 0, err
	}
	if err := s.dequeue(); err != nil {
		return 0, err
	}
	if more {
		return 0, nil
	}
	nowMs := time.Now().UnixMilli()
	next := (s.curSec.Load() + 1) * 1000
	if len(s.cur) > 0 {
		next = min(next, s.cur[0].target)
	}
	return time.Duration(next-nowMs) * time.Millisecond, nil
}

// enqueue files up to enqueuePerRound new timer records; more reports
// that the queue has more.
func (s *Service) enqueue() (more bool, err error) {
	for n := 0; n < enqueuePerRound; {
		off := s.enqOffset.Load()
		r := s.store.GetMessage(Topic, 0, off, 32, nil)
		if r.Status == engine.OffsetTooSmall || r.Status == engine.OffsetOverflowBadly ||
			r.Status == engine.OffsetFoundNull && r.NextBeginOffset != off {
			s.enqOffset.Store(r.NextBeginOffset)
			r.Release()
			continue
		}
		if r.Status != engine.Found {
			r.Release()
			return false, nil
		}
		next, err := s.fileAll(r.Messages)
		r.Release()
		if next > off {
			n += int(next - off)
			s.enqOffset.Store(next)
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// fileAll files records; it returns the queue offset after the last one
// filed.
func (s *Service) fileAll(recs [][]byte) (int64, error) {
	next := int64(-1)
	now := time.Now().UnixMilli()
	for _, rec := range recs {
		v, err := message.Parse(rec)
		if err != nil {
			return next, err
		}
		next = v.QueueOffset + 1
		out, err := strconv.ParseInt(propOf(&v, PropOutMs), 10, 64)
		if err != nil {
			s.skipped.Add(1)
			s.cfg.Logger.Error("timer: record without TIMER_OUT_MS skipped", "physOffset", v.PhysOffset)
			continue
		}
		e := entry{target: out, phys: v.PhysOffset, size: int32(len(rec))}
		if out-now > s.cfg.RollWindow.Milliseconds() {
			e.target, e.flags = now+s.cfg.RollWindow.Milliseconds(), flagRoll
		}
		if err := s.place(e); err != nil {
			return v.QueueOffset, err
		}
		s.filed.Add(1)
	}
	return next, nil
}

// place files e by hour when its hour is not cascaded yet, else by minute
// when its minute is not, else by second (no earlier than the current
// one, whose entries also go to the heap).
func (s *Service) place(e entry) error {
	sec := floorDiv(e.target, 1000)
	k := slotKey{levelSecond, max(sec, s.curSec.Load())}
	if h := floorDiv(sec, 3600); h >= s.hours.Load() {
		k = slotKey{levelHour, h}
	} else if m := floorDiv(sec, 60); m >= s.minutes.Load() {
		k = slotKey{levelMinute, m}
	}
	queue := k.level == levelSecond && k.n == s.curSec.Load() && !s.curPhys[e.phys]
	if queue && e.target < s.doneBefore.Load() {
		s.doneBefore.Store(e.target) // before the append: a checkpoint never skips it
	}
	if err := s.slots.append(k, e); err != nil {
		return err
	}
	if queue {
		s.curPhys[e.phys] = true
		heap.Push(&s.cur, e)
	}
	return nil
}

// Cascade windows: seconds are filed individually at least a minute
// ahead, minutes at least an hour ahead.
const (
	secondWindow = 2 * 60
	minuteWindow = 2 * 3600
)

// cascade re-files the hour and minute files that came within their
// windows into finer files. After a crash a cascade may run again; the
// repeated entries land in the same second file and are dropped on read.
func (s *Service) cascade(nowSec int64) error {
	for h := s.hours.Load(); h*3600 < nowSec+minuteWindow; h = s.hours.Load() {
		if err := s.refile(slotKey{levelHour, h}, &s.hours, &s.hourSafe); err != nil {
			return err
		}
	}
	for m := s.minutes.Load(); m*60 < nowSec+secondWindow; m = s.minutes.Load() {
		if err := s.refile(slotKey{levelMinute, m}, &s.minutes, &s.minSafe); err != nil {
			return err
		}
	}
	return nil
}

// refile moves k's entries one level down: the routing counter passes k
// first, so place files them finer; the checkpointed one only once all are
// re-filed (k's file may be deleted after a checkpoint passes it). An hour
// file may hold millions of entries: what falls due meanwhile is delivered
// after every refileChunk of them, so a cascade never holds up delivery for
// longer than filing one chunk.
func (s *Service) refile(k slotKey, counter, safe *atomic.Int64) error {
	counter.Store(k.n + 1)
	err := s.slots.scan(k, func(es []entry) error {
		for i, e := range es {
			if err := s.place(e); err != nil {
				return err
			}
			if (i+1)%refileChunk == 0 {
				if err := s.meanwhile(); err != nil {
					return err
				}
			}
		}
		return s.meanwhile()
	})
	if err != nil {
		counter.Store(k.n) // try again next round; repeats are dropped on read
		return err
	}
	safe.Store(k.n + 1)
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func propOf(v *message.View, key string) string {
	s, _ := v.Property(key)
	return s
}

// dequeue delivers every due entry of the current second and moves on to
// later seconds as they begin.
func (s *Service) dequeue() error {
	for {
		nowMs := time.Now().UnixMilli()
		var batch []entry
		for len(s.cur) > 0 && s.cur[0].target <= nowMs && len(batch) < batchMessages {
			batch = append(batch, heap.Pop(&s.cur).(entry))
		}
		if len(batch) > 0 {
			if err := s.deliver(batch); err != nil {
				for _, e := range batch {
					heap.Push(&s.cur, e)
				}
				return err
			}
			s.doneBefore.Store(math.MaxInt64) // everything queued so far is delivered …
			if len(s.cur) > 0 {
				s.doneBefore.Store(s.cur[0].target) // … up to the earliest left
			}
			continue
		}
		if len(s.cur) > 0 || (s.curSec.Load()+1)*1000 > nowMs {
			return nil
		}
		// The current second is done: go to the next second with a slot
		// file (skipping empty ones), but not past the present one.
		nowSec := floorDiv(nowMs, 1000)
		next := s.slots.next(s.curSec.Load()+1, nowSec)
		if next < 0 {
			next = nowSec
		}
		if err := s.enterSecond(next, 0); err != nil {
			return err
		}
	}
}
