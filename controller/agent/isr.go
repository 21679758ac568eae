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
// A proposal is resolved by:
//   - an answer with a newer set epoch (or another master epoch): every
//     proposal at the older base either is that set or can never commit
//     (the controller compares the set epoch);
//   - a refusal the controller's state machine made (the op went through
//     the log and changed nothing; a copy of the same body sent earlier
//     would be refused the same way), or a liveness refusal of a proposal
//     never sent without an answer;
//   - for a proposal some attempt of which got no answer: a heartbeat
//     sent Timeout after that attempt, answered with the same base. This
//     assumes the controller handles a request within
//     controllerHeartBeatTimeoutMills or never; until then the broker
//     keeps waiting for the proposal's slaves (safe, at worst slow).
//
// A slave joins a proposal only if, once the broker already waits for
// it, its HA acknowledgement covers every send acknowledged so far
// (Status.Confirmed, Java's confirmOffset rule): from the proposal on it
// holds every acknowledged byte, so electing it loses nothing.

import (
	"context"
	"slices"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// proposals are the in-sync changes proposed at one base (master epoch,
// set epoch) whose outcome is not known.
type proposals struct {
	masterEpoch, syncEpoch int32
	sets                   []proposal
}

type proposal struct {
	set     []int64   // sorted, the master included
	unknown time.Time // last attempt that got no answer; zero: none
}

func (p *proposals) find(set []int64) int {
	return slices.IndexFunc(p.sets, func(q proposal) bool { return slices.Equal(q.set, set) })
}

func (p *proposals) remove(i int) { p.sets = slices.Delete(p.sets, i, i+1) }

// union is every member of every proposal.
func (p *proposals) union() []int64 {
	var u []int64
	for _, q := range p.sets {
		u = append(u, q.set...)
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

// resolve applies a committed answer (heartbeat, registration) to the
// proposals, then tells the broker the set (apply, master only). sent is
// when the answered request was sent.
func (a *Agent) resolve(sent time.Time) {
	if a.props.masterEpoch != a.info.MasterEpoch || a.props.syncEpoch != a.info.SyncStateSetEpoch {
		a.props = proposals{}
	} else {
		a.props.sets = slices.DeleteFunc(a.props.sets, func(q proposal) bool {
			return !q.unknown.IsZero() && sent.Sub(q.unknown) > a.cfg.Timeout
		})
	}
	a.installSync()
}

// reportAllAck proposes the master's view of its in-sync set when it
// differs from the committed one (CONTROLLER_ALTER_SYNC_STATE_SET).
func (a *Agent) reportAllAck(ctx context.Context, now time.Time) {
	set := a.inSync(now)
	if slices.Equal(set, a.info.SyncStateSet) {
		return
	}
	if len(a.props.sets) == 0 {
		a.props.masterEpoch, a.props.syncEpoch = a.info.MasterEpoch, a.info.SyncStateSetEpoch
	}
	i := a.props.find(set)
	if i < 0 {
		if set = a.admit(set); slices.Equal(set, a.info.SyncStateSet) {
			return
		}
		if i = a.props.find(set); i < 0 {
			a.props.sets = append(a.props.sets, proposal{set: set})
			i = len(a.props.sets) - 1
			a.installSync()
		}
	}
	body := protocol.AlterSyncStateSetBody{Cluster: a.cfg.Cluster, BrokerName: a.cfg.BrokerName, MasterID: a.id,
		MasterEpoch: a.props.masterEpoch, SyncStateSetEpoch: a.props.syncEpoch, SyncStateSet: set}
	info, refused, err := a.call(ctx, protocol.RequestControllerAlterSyncState, body)
	switch {
	case err != nil || refused != nil && !definitive(refused.Code, a.props.sets[i].unknown.IsZero()):
		a.props.sets[i].unknown = now
		if refused != nil {
			a.log.Warn("agent: in-sync change not confirmed", "set", set, "code", refused.Code, "remark", refused.Remark)
		}
	case refused != nil:
		a.log.Warn("agent: in-sync change refused", "set", set, "code", refused.Code, "remark", refused.Remark)
		a.props.remove(i)
		a.installSync()
	default:
		a.info = info
		a.props = proposals{}
		a.installSync()
		a.log.Info("agent: in-sync set changed", "set", info.SyncStateSet, "epoch", info.SyncStateSetEpoch)
	}
}

// admit drops from set the slaves that would join the in-sync set without
// holding every acknowledged send: the broker first waits for them (so
// Confirmed can only grow with their acknowledgement), then their
// acknowledged offsets are compared with Confirmed.
func (a *Agent) admit(set []int64) []int64 {
	var added []int64
	for _, id := range set {
		if !slices.Contains(a.info.SyncStateSet, id) && !slices.Contains(a.props.union(), id) {
			added = append(added, id)
		}
	}
	if len(added) == 0 {
		return set
	}
	a.props.sets = append(a.props.sets, proposal{set: set})
	a.installSync()
	st := a.r.Status()
	a.props.remove(len(a.props.sets) - 1)
	out := slices.DeleteFunc(slices.Clone(set), func(id int64) bool {
		if !slices.Contains(added, id) || st.Acked == nil {
			return false
		}
		off, ok := st.Acked[id]
		return !ok || off < st.Confirmed
	})
	if len(out) != len(set) {
		a.installSync()
	}
	return out
}

// definitive reports whether a refusal means the proposal never takes
// effect: the state machine refused it (the same body is refused at the
// same base whenever it is applied), or a member was not alive and no
// earlier attempt is outstanding. A fenced set epoch means the set
// changed (by an earlier attempt): the next answer tells how.
func definitive(code int16, noEarlierAttempt bool) bool {
	switch code {
	case protocol.ResponseControllerAlterSyncFailed, protocol.ResponseControllerInvalidReplicas,
		protocol.ResponseControllerInvalidMaster, protocol.ResponseControllerFencedMasterEpoch,
		protocol.ResponseControllerInvalidRequest:
		return true
	case protocol.ResponseControllerBrokerNotAlive:
		return noEarlierAttempt
	}
	return false
}
