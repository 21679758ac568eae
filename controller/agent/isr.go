package agent

// The master's in-sync set under allAckInSyncStateSet (Config.AllAck;
// facts-2 §21.6; the safety argument is in controller/doc.go).
//
// The master sends a send's acknowledgement only once every slave the
// broker was told (Replica.SyncStateSet) has acknowledged it. It tells the
// broker the committed set (from the controller's answers) and every
// slave of a proposal whose outcome it does not know: the controller's
// set at this master epoch changes only by this master's proposals, so
// the committed set is always within what the broker waits for. An
// expansion therefore counts from the moment it is proposed, a shrink
// only once an answer shows it committed.
//
// Every proposal carries a sequence number (Seq) above every earlier one;
// the controller's state machine refuses a proposal whose Seq is not
// above the highest it applied from this master at this epoch
// (controller.BrokerSet.AlterSeq), and every answer its state machine
// gives (success or refusal) carries the set after the op. Proposals are
// resolved only by committed facts, never by time (a request may sit in
// a controller, and a log entry uncommitted, for any time):
//   - an answer of the state machine to Seq n: every proposal up to n
//     either shows in the set it carries or never takes effect; the
//     master adopts that set and forgets its proposals. While proposals
//     are unresolved the master sends one every Interval, the committed
//     set itself when it wants no change (refused "unchanged": a seal);
//   - an answer with a newer set epoch or another master epoch: a
//     proposal at the older base can never commit (the state machine
//     compares both epochs);
//   - a refusal before the log (a member not alive) of a proposal no
//     attempt of which went unanswered.
//
// An answer naming another master epoch or no master (FENCED_MASTER_EPOCH,
// INVALID_MASTER) is applied like a heartbeat answer: the master fences
// and follows the new master at once.
//
// A slave joins a proposal only once the broker waits for it and its HA
// acknowledgement reached what had been acknowledged (Status.Confirmed)
// when the broker began waiting: sends released since needed its
// acknowledgement, so it then holds every acknowledged byte (Java's
// confirmOffset rule, kept true under sustained writes). A slave that
// does not get there within InSyncLag is no longer waited for.

import (
	"context"
	"slices"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// proposals are the in-sync changes proposed at one base (master epoch,
// set epoch) whose outcome is not known, and the slaves being admitted.
type proposals struct {
	masterEpoch, syncEpoch int32
	sets                   []proposal
	joining                map[int64]joiner
	// retryAt holds back a slave given up as a joiner until then, so a
	// slave that keeps stalling does not stall the sends again every round.
	retryAt map[int64]time.Time
}

type proposal struct {
	set     []int64 // sorted, the master included
	unknown bool    // an attempt got no answer from the state machine
}

// joiner is a slave the broker waits for before it is proposed.
type joiner struct {
	floor int64     // Confirmed once the broker waited for it
	since time.Time // when the broker began waiting for it
}

func (p *proposals) find(set []int64) int {
	return slices.IndexFunc(p.sets, func(q proposal) bool { return slices.Equal(q.set, set) })
}

func (p *proposals) remove(i int) { p.sets = slices.Delete(p.sets, i, i+1) }

// union is every member of every proposal and every joining slave.
func (p *proposals) union() []int64 {
	var u []int64
	for _, q := range p.sets {
		u = append(u, q.set...)
	}
	for id := range p.joining {
		u = append(u, id)
	}
	slices.Sort(u)
	return slices.Compact(u)
}

// without returns ids without id.
func without(ids []int64, id int64) []int64 {
	return slices.DeleteFunc(slices.Clone(ids), func(x int64) bool { return x == id })
}

// installSync tells the broker whose acknowledgement a send needs.
func (a *Agent) installSync() {
	a.r.SyncStateSet(without(a.info.SyncStateSet, a.id), without(a.props.union(), a.id))
}

// resolve applies a committed answer (heartbeat, registration, a state
// machine's answer) to the proposals, then tells the broker the set
// (apply, master only): only a new base resolves proposals here.
func (a *Agent) resolve() {
	if a.props.masterEpoch != a.info.MasterEpoch || a.props.syncEpoch != a.info.SyncStateSetEpoch {
		a.props.sets = nil
		a.props.masterEpoch, a.props.syncEpoch = a.info.MasterEpoch, a.info.SyncStateSetEpoch
	}
	a.installSync()
}

// unsealed starts a master's proposals when it may have proposed at this
// epoch in an earlier run (the broker restarted within the heartbeat
// timeout and is still master): every replica is waited for until the
// first answer of the state machine seals whatever that run proposed.
func (a *Agent) unsealed(info protocol.ReplicaSetInfo) proposals {
	p := proposals{masterEpoch: info.MasterEpoch, syncEpoch: info.SyncStateSetEpoch}
	all := []int64{a.id}
	for _, r := range info.Replicas {
		all = append(all, r.BrokerID)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if !slices.Equal(all, info.SyncStateSet) {
		p.sets = []proposal{{set: all, unknown: true}}
	}
	return p
}

// nextSeq is a proposal number above every earlier one of this master,
// also across restarts (the wall clock) and above what the controller
// applied.
func (a *Agent) nextSeq() int64 {
	a.seq = max(a.seq+1, a.info.AlterSeq+1, time.Now().UnixNano())
	return a.seq
}

// reportAllAck proposes the master's view of its in-sync set when it
// differs from the committed one, or the committed one while earlier
// proposals are unresolved (CONTROLLER_ALTER_SYNC_STATE_SET).
func (a *Agent) reportAllAck(ctx context.Context, now time.Time) {
	set := a.admit(a.inSync(now), now)
	if slices.Equal(set, a.info.SyncStateSet) && len(a.props.sets) == 0 {
		return
	}
	if len(a.props.sets) == 0 {
		a.props.masterEpoch, a.props.syncEpoch = a.info.MasterEpoch, a.info.SyncStateSetEpoch
	}
	i := a.props.find(set)
	if i < 0 && !slices.Equal(set, a.info.SyncStateSet) {
		a.props.sets = append(a.props.sets, proposal{set: set})
		i = len(a.props.sets) - 1
		a.installSync()
	}
	body := protocol.AlterSyncStateSetBody{Cluster: a.cfg.Cluster, BrokerName: a.cfg.BrokerName, MasterID: a.id,
		MasterEpoch: a.props.masterEpoch, SyncStateSetEpoch: a.props.syncEpoch, SyncStateSet: set, Seq: a.nextSeq()}
	info, refused, err := a.alter(ctx, body)
	if err == nil && refused != nil && len(refused.Body) > 0 {
		info, err = protocol.DecodeReplicaSetInfo(refused.Body)
	}
	switch {
	case err == nil && refused != nil && len(refused.Body) > 0: // the state machine refused it
		a.log.Warn("agent: in-sync change refused", "set", set, "code", refused.Code, "remark", refused.Remark)
		a.sealed(info, now)
	case err == nil && refused == nil:
		a.sealed(info, now)
		a.log.Info("agent: in-sync set changed", "set", a.info.SyncStateSet, "epoch", a.info.SyncStateSetEpoch)
	case i < 0:
	case err == nil && refused.Code == protocol.ResponseControllerBrokerNotAlive && !a.props.sets[i].unknown:
		a.log.Warn("agent: in-sync change refused", "set", set, "code", refused.Code, "remark", refused.Remark)
		a.props.remove(i) // never in the log, and no earlier attempt is outstanding
		a.installSync()
	default:
		a.props.sets[i].unknown = true
		if refused != nil {
			a.log.Warn("agent: in-sync change not confirmed", "set", set, "code", refused.Code, "remark", refused.Remark)
		}
	}
}

// alter sends one proposal (tests replace it with a scripted controller).
func (a *Agent) alter(ctx context.Context, body protocol.AlterSyncStateSetBody) (protocol.ReplicaSetInfo, *protocol.Command, error) {
	if a.alterFn != nil {
		return a.alterFn(ctx, body)
	}
	return a.call(ctx, protocol.RequestControllerAlterSyncState, body)
}

// sealed applies an answer of the state machine: every proposal sent so
// far shows in info or never takes effect. Another master epoch or no
// master fences and switches the broker (apply).
func (a *Agent) sealed(info protocol.ReplicaSetInfo, sent time.Time) {
	a.props.sets = nil
	a.props.masterEpoch, a.props.syncEpoch = info.MasterEpoch, info.SyncStateSetEpoch
	a.apply(info, sent)
}

// joinWait bounds how long sends wait for a joining slave to reach its
// floor: two heartbeat intervals, since a slave within one round of the
// acknowledged sends needs about one to pass them; a slave that stalls
// meanwhile holds every send for at most this long (never the
// haMaxTimeSlaveNotCatchup a member of the set is allowed).
func (a *Agent) joinWait() time.Duration { return min(2*a.cfg.Interval, a.cfg.InSyncLag) }

// holdBack keeps a slave given up as a joiner from joining again for
// haMaxTimeSlaveNotCatchup.
func (a *Agent) holdBack(id int64, now time.Time) {
	if a.props.retryAt == nil {
		a.props.retryAt = map[int64]time.Time{}
	}
	a.props.retryAt[id] = now.Add(a.cfg.InSyncLag)
}

// admit keeps in set the slaves it adds to the committed set and to the
// proposals only once they qualify (the joining rule above); a slave
// within one round of the acknowledged sends (at least the Confirmed of
// the previous report) starts joining: the broker waits for it.
func (a *Agent) admit(set []int64, now time.Time) []int64 {
	st := a.r.Status()
	prev := a.prevConfirmed
	a.prevConfirmed = st.Confirmed
	if st.Acked == nil {
		return set
	}
	known := append(slices.Clone(a.info.SyncStateSet), a.props.union()...)
	changed := false
	for id := range a.props.joining {
		if !slices.Contains(set, id) || now.Sub(a.props.joining[id].since) > a.joinWait() {
			delete(a.props.joining, id) // fell out of sync, or never caught up
			a.holdBack(id, now)
			changed = true
		}
	}
	var fresh []int64
	for _, id := range set {
		if off, ok := st.Acked[id]; !slices.Contains(known, id) && ok && off >= prev && !now.Before(a.props.retryAt[id]) {
			if a.props.joining == nil {
				a.props.joining = map[int64]joiner{}
			}
			a.props.joining[id] = joiner{since: now}
			fresh = append(fresh, id)
		}
	}
	if len(fresh) > 0 || changed {
		a.installSync()
	}
	if len(fresh) > 0 {
		st = a.r.Status() // Confirmed once the broker waits for them
		for _, id := range fresh {
			a.props.joining[id] = joiner{floor: st.Confirmed, since: now}
		}
	}
	return slices.DeleteFunc(slices.Clone(set), func(id int64) bool {
		if slices.Contains(a.info.SyncStateSet, id) || slices.ContainsFunc(a.props.sets, func(q proposal) bool { return slices.Contains(q.set, id) }) {
			return false
		}
		j, ok := a.props.joining[id]
		if !ok || st.Acked[id] < j.floor {
			return true
		}
		delete(a.props.joining, id) // proposed: waited for as a proposal's member
		return false
	})
}
