package engine

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// RetentionConfig is RocketMQ's file-deletion policy (Java's MessageStoreConfig (deleteWhen, fileReservedTime)).
type RetentionConfig struct {
	FileReservedTime time.Duration // fileReservedTime, 72 h
	DeleteWhen       string        // deleteWhen: hours of day, ";"-separated, "04"
	// DiskMaxUsedSpaceRatio (75%): above it expired files go at once,
	// whatever the hour.
	DiskMaxUsedSpaceRatio float64
	// CleanForciblyRatio (85%): above it the oldest files go even if not
	// expired, a few per round.
	CleanForciblyRatio float64
	// WarningRatio (90%): above it the store refuses writes
	// (SERVICE_NOT_AVAILABLE) before the disk fills; it accepts them again
	// once cleaning brings usage back under.
	WarningRatio float64
	Interval     time.Duration // cleanResourceInterval, 10 s
	// DiskUsage reports the used fraction of the store's file system;
	// tests replace it.
	DiskUsage func(dir string) (float64, error)
	Now       func() time.Time
}

func (c *RetentionConfig) defaults() {
	if c.FileReservedTime == 0 {
		c.FileReservedTime = 72 * time.Hour
	}
	if c.DeleteWhen == "" {
		c.DeleteWhen = "04"
	}
	if c.DiskMaxUsedSpaceRatio == 0 {
		c.DiskMaxUsedSpaceRatio = 0.75
	}
	if c.CleanForciblyRatio == 0 {
		c.CleanForciblyRatio = 0.85
	}
	if c.WarningRatio == 0 {
		c.WarningRatio = 0.90
	}
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
	if c.DiskUsage == nil {
		c.DiskUsage = statfsUsage
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func statfsUsage(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	if st.Blocks == 0 {
		return 0, nil
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks), nil
}

// forciblyPerRound bounds unexpired segments removed per round.
const forciblyPerRound = 10

// diskState.full is set while usage is above WarningRatio; PutMessage
// checks it. The checkpoint loop re-reads usage every second, retention
// every round.
type diskState struct {
	full   atomic.Bool
	policy atomic.Pointer[RetentionPolicy] // SetRetentionPolicy; nil: Config.Retention's
}

// RetentionPolicy is the part of the deletion policy an operator may change
// while the store runs (UPDATE_BROKER_CONFIG): fileReservedTime, deleteWhen
// and diskMaxUsedSpaceRatio. A zero field keeps the configured value.
type RetentionPolicy struct {
	FileReservedTime      time.Duration
	DeleteWhen            string
	DiskMaxUsedSpaceRatio float64
}

// SetRetentionPolicy replaces the changeable part of the deletion policy
// from the next retention round on. Safe to call from any goroutine.
func (s *Store) SetRetentionPolicy(p RetentionPolicy) { s.disk.policy.Store(&p) }

// Retention is the deletion policy in force (defaults and
// SetRetentionPolicy applied).
func (s *Store) Retention() RetentionConfig { return s.retention() }

func (s *Store) retention() RetentionConfig {
	rc := s.cfg.Retention
	if p := s.disk.policy.Load(); p != nil {
		if p.FileReservedTime > 0 {
			rc.FileReservedTime = p.FileReservedTime
		}
		if p.DeleteWhen != "" {
			rc.DeleteWhen = p.DeleteWhen
		}
		if p.DiskMaxUsedSpaceRatio > 0 {
			rc.DiskMaxUsedSpaceRatio = p.DiskMaxUsedSpaceRatio
		}
	}
	return rc
}

// checkDisk refreshes the write refusal from the current disk usage.
func (s *Store) checkDisk() {
	if usage, err := s.cfg.Retention.DiskUsage(s.cfg.Dir); err == nil {
		s.setDiskFull(usage)
	}
}

// retentionLoop runs the file-deletion policy every Interval.
func (s *Store) retentionLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Retention.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.RunRetention(); err != nil {
				s.log.Error("engine: retention failed", "err", err)
			}
		}
	}
}

// RunRetention runs one round of the file-deletion policy: it removes
// expired commit-log segments at deleteWhen or when the disk is above
// diskMaxUsedSpaceRatio, unexpired ones when above the forcible ratio, then
// consume-queue and index files below the new minimum, and updates the
// write refusal. It is safe to call from any goroutine.
func (s *Store) RunRetention() error {
	rc := s.retention()
	usage, err := rc.DiskUsage(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("engine: disk usage: %w", err)
	}
	now := rc.Now()
	segs, err := s.cl.SealedSegments()
	if err != nil {
		return err
	}
	cut := int64(-1)
	timeToDelete := deleteHour(rc.DeleteWhen, now.Hour()) || usage > rc.DiskMaxUsedSpaceRatio
	forced := 0
	for _, seg := range segs {
		expired := now.Sub(seg.ModTime) > rc.FileReservedTime
		switch {
		case expired && timeToDelete:
		case usage > rc.CleanForciblyRatio && forced < forciblyPerRound:
			forced++
		default:
			goto done
		}
		cut = seg.Base + s.cl.SegmentSize()
	}
done:
	// Never remove what the dispatcher has not read yet: a consumer could
	// then never see those records, and the dispatcher would be stranded
	// below the log's new start.
	if d := s.dispatch.done.Load(); cut > d {
		cut = d - d%s.cl.SegmentSize()
	}
	// Nor what a consume queue or the index must be rebuilt from.
	if floor := s.dispatch.lostFloor(); floor >= 0 && cut > floor {
		cut = floor - floor%s.cl.SegmentSize()
	}
	if cut > 0 {
		if _, err := s.cl.RemoveSegmentsBefore(cut); err != nil {
			return err
		}
		if _, err := s.cq.DeleteBelow(s.cl.MinOffset()); err != nil {
			return err
		}
		if _, err := s.idx.DeleteFilesBelow(s.cl.MinOffset()); err != nil {
			return err
		}
		if usage, err = rc.DiskUsage(s.cfg.Dir); err != nil {
			return err
		}
	}
	s.setDiskFull(usage)
	return nil
}

func (s *Store) setDiskFull(usage float64) {
	full := usage > s.cfg.Retention.WarningRatio
	if s.disk.full.Swap(full) != full {
		if full {
			s.log.Error("engine: disk usage above the warning ratio; refusing writes", "usage", usage, "ratio", s.cfg.Retention.WarningRatio)
		} else {
			s.log.Info("engine: disk usage back under the warning ratio; accepting writes", "usage", usage)
		}
	}
}

// deleteHour reports whether hour is listed in deleteWhen ("04" or "01;04").
func deleteHour(when string, hour int) bool {
	for _, h := range strings.Split(when, ";") {
		if v, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && v == hour {
			return true
		}
	}
	return false
}
