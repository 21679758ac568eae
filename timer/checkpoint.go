package timer

import "time"

const maxPending = 64

// Checkpoint returns the newest state safe to save: the slot files are
// synced (every record before EnqueueOffset is filed durably) and every
// re-put of the seconds before ReadSecond is durable. ok is false when no
// snapshot is durable yet.
func (s *Service) Checkpoint() (State, bool, error) {
	snap := snapshot{st: s.state()}
	snap.tail = s.store.MaxPhysOffset()
	if err := s.slots.sync(); err != nil {
		return State{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, snap)
	if len(s.pending) > maxPending {
		s.pending = s.pending[len(s.pending)-maxPending:]
	}
	durable, best := s.store.DurableOffset(), -1
	for i, c := range s.pending {
		if c.tail <= durable {
			best = i
		}
	}
	if best < 0 {
		return State{}, false, nil
	}
	st := s.pending[best].st
	s.pending = s.pending[best+1:]
	return st, true, nil
}

// state reads the progress counters. Each is monotonic and valid on its
// own, so reading them one by one is safe.
func (s *Service) state() State {
	st := State{ReadSecond: s.curSec.Load()}
	st.EnqueueOffset = s.enqOffset.Load() // before DoneBeforeMs: an entry filed later is filed again
	st.MinuteCascaded, st.HourCascaded = s.minSafe.Load(), s.hourSafe.Load()
	st.DoneBeforeMs = s.doneBefore.Load()
	return st
}

// Saved tells the service a state was saved: slot files of earlier
// seconds are no longer needed.
func (s *Service) Saved(st State) error {
	return s.slots.removeBefore(st.ReadSecond, st.MinuteCascaded, st.HourCascaded)
}

// Stats describes the timer.
type Stats struct {
	EnqueueBehind int64 // timer records not filed yet
	ReadSecond    int64 // epoch second being delivered
	DequeueBehind time.Duration
	Filed, Sent   int64 // since start
	Rolled, Skip  int64
}

// Stats reports the service's progress (safe from any goroutine).
func (s *Service) Stats() Stats {
	st := Stats{ReadSecond: s.curSec.Load(), Filed: s.filed.Load(), Sent: s.delivered.Load(),
		Rolled: s.rolled.Load(), Skip: s.skipped.Load()}
	if s.store != nil {
		st.EnqueueBehind = max(s.store.MaxOffsetInQueue(Topic, 0)-s.enqOffset.Load(), 0)
	}
	st.DequeueBehind = max(time.Since(time.Unix(st.ReadSecond+1, 0)), 0)
	return st
}

// FinalState syncs the slot files and returns the current state, for a
// clean shutdown after the store has flushed everything.
func (s *Service) FinalState() (State, error) {
	return s.state(), s.slots.sync()
}
