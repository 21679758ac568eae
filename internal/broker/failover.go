package broker

// Hooks for role changes decided outside the broker (package
// internal/failover restarts the broker in-process with a new role): the
// store's epoch file (ha/FORMAT.md §6), the master's epoch begun before
// the first write is accepted, and fencing.

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mqd/mqd/ha"
)

// EpochFileName is the epoch file in the store directory.
const EpochFileName = "epochs"

// openEpochs opens the store's epoch history and, for a master given an
// epoch (HAConfig.Epoch), begins it at the log end, durably, before the
// broker accepts any write (New calls it before Start).
func (b *Broker) openEpochs() error {
	e, err := ha.OpenEpochFile(filepath.Join(b.cfg.Store.Dir, EpochFileName))
	if err != nil {
		return err
	}
	end := b.store.WrittenOffset()
	// An epoch recorded after the log's recovered end has no byte here (a
	// slave recorded it, then lost the unsynced bytes that followed):
	// forget it, its bytes will be replicated again with it.
	if err := e.TruncateAfter(end + 1); err != nil {
		return err
	}
	b.ha.epochs = e
	epoch := b.cfg.HA.Epoch
	if b.isSlave() || epoch == 0 {
		return nil
	}
	switch last := e.Last(); {
	case epoch == last.Epoch:
		return nil // a restart of this epoch's master
	case epoch < last.Epoch:
		return fmt.Errorf("broker: master epoch %d is below this store's last epoch %d: %w", epoch, last.Epoch, ha.ErrStaleEpoch)
	}
	if err := e.Begin(epoch, end); err != nil {
		return err
	}
	b.log.Info("broker: master epoch begun", "epoch", epoch, "start", end)
	return nil
}

// Epochs is the store's epoch history.
func (b *Broker) Epochs() *ha.Epochs { return b.ha.epochs }

// LogEnd is the commit log's written end.
func (b *Broker) LogEnd() int64 { return b.store.WrittenOffset() }

// SetFenced makes a master refuse new sends (SERVICE_NOT_AVAILABLE, with
// engine.ErrFenced as the remark) and fail every SYNC_MASTER send waiting
// for a slave, until called with false.
func (b *Broker) SetFenced(on bool) {
	b.store.SetFenced(on)
	if b.ha.server != nil {
		b.ha.server.Fence(on)
	}
	b.ha.fenced.Store(on)
	b.fenceRoutes(on) // fenceroutes.go
	b.log.Warn("broker: fence changed", "fenced", on)
}

// SetLease bounds when this master may acknowledge SYNC_MASTER writes
// (ha.Server.SetLease): the controller agent renews it with each answered
// heartbeat; the zero time removes it.
func (b *Broker) SetLease(until time.Time) {
	b.ha.lease.Store(&until)
	if b.ha.server != nil {
		b.ha.server.SetLease(until)
	}
}

// SetSyncStateSet names the slaves (controller ids, the master's own left
// out) whose acknowledgement a SYNC_MASTER send needs with
// allAckInSyncStateSet (HAConfig.AllAck; ha.Server.SetSyncSet): the
// controller's committed in-sync set and the slaves of proposals not
// resolved yet. Without AllAck it is only remembered.
func (b *Broker) SetSyncStateSet(committed, pending []int64) {
	ss := ha.SyncSet{Committed: committed, Pending: pending, MinInSync: b.cfg.HA.MinInSync, OnConfirm: b.store.KickDispatch}
	b.ha.syncSet.Store(&ss)
	if b.ha.server != nil && b.allAck() {
		b.ha.server.SetSyncSet(ss)
	}
}

// allAck reports whether this broker acknowledges by the whole in-sync set.
func (b *Broker) allAck() bool { return b.cfg.HA.AllAck && b.cfg.HA.Role == RoleSyncMaster }

// syncSet is the last SetSyncStateSet, or an empty in-sync set.
func (b *Broker) syncSet() ha.SyncSet {
	if p := b.ha.syncSet.Load(); p != nil {
		return *p
	}
	return ha.SyncSet{MinInSync: b.cfg.HA.MinInSync, OnConfirm: b.store.KickDispatch}
}

// Fenced reports whether the broker is fenced.
func (b *Broker) Fenced() bool { return b.ha.fenced.Load() }

// IsTruncate reports whether err (from Fatal) orders this slave to
// truncate its log, and where.
func IsTruncate(err error) (*ha.TruncateError, bool) {
	var t *ha.TruncateError
	ok := errors.As(err, &t)
	return t, ok
}
