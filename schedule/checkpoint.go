package schedule

import "github.com/mqd/mqd/engine"

// checkpoint is a snapshot of every level's offset and the commit-log
// tail when it was taken: every re-put the offsets cover lies below tail.
type checkpoint struct {
	offsets map[int]int64
	tail    int64
}

// maxPending bounds the snapshots kept while the log is not durable yet.
const maxPending = 64

// Checkpoint returns the newest per-level offsets (level → next offset to
// deliver) whose delivered copies are all durable, and whether there is
// one to save. The owner saves it as delayOffset.json; until then a crash
// re-delivers what was delivered after the previous save.
func (s *Service) Checkpoint() (map[int]int64, bool) {
	snap := checkpoint{offsets: s.Offsets()}
	snap.tail = s.store.MaxPhysOffset() // after the snapshot: covers every put it counts
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, snap)
	if len(s.pending) > maxPending {
		s.pending = s.pending[len(s.pending)-maxPending:]
	}
	durable := s.store.DurableOffset()
	best := -1
	for i, c := range s.pending {
		if c.tail <= durable {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	out := s.pending[best].offsets
	s.pending = s.pending[best+1:]
	return out, true
}

// Offsets is every level's next offset to deliver.
func (s *Service) Offsets() map[int]int64 {
	out := make(map[int]int64, len(s.levels))
	for _, l := range s.levels {
		out[l.n] = l.offset.Load()
	}
	return out
}

// LevelStats describes one level.
type LevelStats struct {
	Level     int
	Delivered int64 // next offset to deliver (Java's delay offset)
	Max       int64 // max offset of the level's queue
	Pending   int64 // Max − Delivered
	Sent      int64 // messages re-put since start
	Skipped   int64 // unroutable schedule records skipped since start
	LateMs    int64 // lateness of the level's last delivery
}

// Stats reports every level.
func (s *Service) Stats() []LevelStats {
	out := make([]LevelStats, 0, len(s.levels))
	for _, l := range s.levels {
		st := LevelStats{Level: l.n, Delivered: l.offset.Load(), Sent: l.delivered.Load(),
			Skipped: l.skipped.Load(), LateMs: l.lateMs.Load()}
		if s.store != nil {
			st.Max = s.store.MaxOffsetInQueue(engine.ScheduleTopic, int32(l.n-1))
		}
		st.Pending = max(st.Max-st.Delivered, 0)
		out = append(out, st)
	}
	return out
}
