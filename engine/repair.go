package engine

import (
	"fmt"

	"github.com/mqd/mqd/commitlog"
)

// RepairResult is what Repair did.
type RepairResult struct {
	Offset int64    // the commit log now ends here
	Kept   []string // files holding what was cut away (.broken copies)
}

// Repair is the operator's answer to Open failing with ErrCorrupt: with
// the store closed (it takes the store's lock) it cuts the commit log at
// truncateAt, a record boundary behind intact records (usually the offset
// the error names), keeping every byte it cuts in .broken files, and lowers
// the checkpoint to it. The abort file is left in place, so the next Open
// recovers as after a crash: consume-queue entries and index files past the
// new end are dropped and the records before it dispatched again.
// Records at and after truncateAt are no longer served, acknowledged or
// not; the .broken copies keep them for inspection. cmd/mqd wires this as
// `mqd repair --store DIR --truncate-at OFFSET` (commitlog/FORMAT.md).
func Repair(cfg Config, truncateAt int64) (RepairResult, error) {
	cfg.defaults()
	s := &Store{cfg: cfg, log: cfg.Logger}
	if err := s.openFS(); err != nil {
		return RepairResult{}, err
	}
	defer s.release()
	var err error
	if s.cp, err = openCheckpoint(s.fs, s.path("checkpoint")); err != nil {
		return RepairResult{}, err
	}
	clcfg := commitlog.Config{Dir: s.path("commitlog"), SegmentSize: cfg.MappedFileSizeCommitLog, Logger: s.log}
	plan, err := commitlog.CheckTruncate(s.fs, clcfg, truncateAt)
	if err != nil {
		return RepairResult{}, fmt.Errorf("engine: repair: %w", err) // nothing changed
	}
	// The abort file before the cut: should the repair be interrupted, the
	// next Open must not take the clean path over a half-cut log.
	if err := s.createAbortFile(); err != nil {
		return RepairResult{}, err
	}
	// The checkpoint is lowered before the cut too: recovery trusts the
	// log below the checkpoint, so a crash after the cut but before a
	// later checkpoint write would leave a log end above zeroed bytes.
	// Lowered first, a crash before the cut only makes recovery scan the
	// intact records again.
	c := s.cp.last
	if c.PhysicOffset > plan.Offset {
		c.PhysicOffset, c.PhysicTimestamp = plan.Offset, plan.Timestamp
	}
	if c.DispatchedOffset > plan.Offset {
		c.DispatchedOffset, c.LogicsTimestamp = plan.Offset, min(c.LogicsTimestamp, plan.Timestamp)
	}
	c.IndexTimestamp = min(c.IndexTimestamp, plan.Timestamp) // index files past the cut are rebuilt
	if err := s.cp.write(c); err != nil {
		return RepairResult{}, err
	}
	cut, err := commitlog.TruncateAt(s.fs, clcfg, truncateAt)
	if err != nil {
		return RepairResult{Kept: cut.Kept}, fmt.Errorf("engine: repair: %w", err)
	}
	s.log.Warn("engine: store repaired: commit log truncated", "offset", cut.Offset, "kept", cut.Kept)
	return RepairResult{Offset: cut.Offset, Kept: cut.Kept}, nil
}
