// Package controller is mqd's failover controller (RocketMQ 5's controller
// mode, facts-2 §21): three or more controllers form a Raft group
// (github.com/hashicorp/raft with a raft-boltdb store, TCP transport) whose
// replicated State holds, per broker name, the replica set (id, address,
// HA address), the master, the master epoch and the in-sync set
// (SyncStateSet).
//
// Brokers talk to the leader over the RocketMQ remoting protocol with the
// 5.x controller codes and JSON bodies (internal/protocol/controller.go):
// CONTROLLER_REGISTER_BROKER (1003) assigns an id (≥ 1, kept per address),
// BROKER_HEARTBEAT (904) reports liveness, epoch and max offset and is
// answered with the committed replica set, CONTROLLER_ALTER_SYNC_STATE_SET
// (1001) carries the master's in-sync slaves. A follower answers
// CONTROLLER_NOT_LEADER (2007) with the leader's address.
//
// # Decisions
//
// Only the leader decides, and only through the log: it keeps a heartbeat
// table (liveness.go, not replicated), applies the election rule (Decide,
// elect.go) every ScanInterval and proposes an elect op that the State
// applies only if the master epoch is still the one the leader saw
// (compare-and-set) and the new master is in the in-sync set (unless the
// op is unclean, Config.Unclean = enableElectUncleanMaster). Brokers learn
// the new master and epoch from heartbeat answers, which the leader gives
// only after VerifyLeader: an answer is committed state of a leader a
// quorum still follows. A controller without a quorum answers nothing as
// leader and elects nobody.
//
// # Acknowledgement (allAckInSyncStateSet, the default)
//
// A SYNC_MASTER master acknowledges a send only once EVERY member of its
// in-sync set has acknowledged the bytes over an HA connection to it
// (ha/isr.go; Java's allAckInSyncStateSet), and refuses sends while the
// set, itself counted, is below minInSyncReplicas (default 2). The set it
// waits for is the committed one united with every change it proposed
// whose outcome it does not know and every slave it is admitting
// (controller/agent/isr.go): the in-sync set of a master epoch changes
// only by that master's proposals, so the committed set is always within
// it. A slave joins a proposal only once the master already waits for it
// and its acknowledgement reached what had been acknowledged when the
// waiting began, so it holds every send acknowledged so far.
//
// Outcomes are learnt from committed facts only, never from time: every
// proposal carries a sequence number (Op.Seq); the state machine refuses
// one at or below the highest it applied from the master at its epoch
// (BrokerSet.AlterSeq), and every answer it gives, success or refusal,
// carries the set after the op. By Raft's log order, once the state
// machine answered Seq n, every earlier proposal either shows in that set
// or never takes effect, however long its request sat in a controller or
// its entry stayed uncommitted. A master with unresolved proposals sends
// one every interval (the committed set itself when it wants no change:
// a seal). An answer naming another master epoch or no master fences the
// master and switches it at once. A broker made master by the first role
// of its run (it may have proposed at that epoch before a restart) waits
// for every replica until its first seal is answered. The leader requires
// only the members a proposal adds to be alive: keeping a member the
// leader sees dead never makes the set less safe.
//
// Consumers see a message only once the in-sync set has it: such a master
// dispatches consume-queue entries only below its confirm offset, the
// least offset every slave it waits for acknowledged (Java's
// confirmOffset; engine.Store.SetDispatchLimit), so no consumer commits
// an offset past a message a failover may lose and whose queue offset
// the next master may reuse.
//
// Invariant: every acknowledged message is in the log of every member of
// the committed in-sync set of its epoch, below where that member's next
// epoch begins. Hence a clean election (new master from the committed
// set) never loses an acknowledged message, without any lease:
//
//   - Old master M cut from the controllers and from its slaves: it
//     collects no acknowledgement, so it acknowledges nothing.
//   - M cut from the controllers only: the new master N was in the
//     committed set, hence in the set M waits for. M can acknowledge a
//     send only while N (and every other member) still replicates from M
//     and has it. N switches on learning the election: it stops
//     replicating from M and begins its epoch at its log end, above every
//     byte it acknowledged to M. From then on M cannot complete a send.
//     The same holds for any slave switching master mid-round: what it
//     acknowledged to M is in its log below the new epoch; what it had
//     not, M did not acknowledge.
//   - Election racing an in-flight acknowledgement: N acknowledged the
//     bytes to M before switching (then N has them) or did not (then M
//     never acknowledges them; the producer sees FLUSH_SLAVE_TIMEOUT or
//     its own timeout, the message may or may not survive).
//   - Expansion racing an election: the elect op and the in-sync op are
//     ordered by the Raft log. In-sync op first: the joining slave held
//     every acknowledged byte when proposed and was waited for since, so
//     it may be elected. Elect op first: the in-sync op is refused (fenced
//     master epoch); N came from the older set, which M waited for.
//   - Shrink racing an election: M waits for a removed slave until it
//     learns the shrink committed; an election before that may pick the
//     removed slave, which has everything. After it, the removed slave is
//     no longer a clean candidate.
//   - Controllers without a quorum: nothing is elected and no in-sync
//     change commits, so a master whose whole set acknowledges goes on
//     acknowledging (the data path survives the controllers), and one
//     whose set member died times out its sends rather than acknowledging
//     with a smaller set (a timed-out send leaves the wait queue).
//   - A master's proposal racing its own retries, a restart of the
//     master, or a new controller leader: resolved by sequence numbers
//     and seals (above), never by a guess about time.
//   - Cold restart (every broker down, the controllers keep the set): the
//     master is cleared when its heartbeats stop; whichever member of the
//     committed set comes back first may be elected, since each holds
//     every acknowledged message.
//
// A master still stops acknowledging as soon as it learns of another
// master or a newer epoch (the agent fences it before switching role) or
// of no master at all. The guarantee does not hold for an unclean
// election (Config.Unclean) and, for a power loss of the machines, needs
// haSlaveAckDurable on the slaves (and SYNC_FLUSH on the master). Consume
// visibility has one gap: a broker reopens its store in each role and
// recovery dispatches the whole recovered log, so a master restarted
// within the heartbeat timeout (same epoch) exposes its unreplicated tail
// to consumers until a slave truncates it after a later failover; and a
// slave dispatches everything it replicated (Java limits it to the
// master's confirm offset), so consumers reading from a slave may see a
// message not yet on every in-sync member.
//
// # Lease (controllerLeaseMills; without allAckInSyncStateSet, or for an ASYNC_MASTER)
//
// With allAckInSyncStateSet=false a SYNC_MASTER acknowledges with one
// slave's ack (4.x), and an ASYNC_MASTER with none; either is safe against
// two masters acknowledging only with a lease, on by default in those
// modes: a master counts its lease from when
// it SENT its last answered heartbeat; it must stop acknowledging writes
// once the lease (shorter than its controllerHeartBeatTimeoutMills) runs
// out. The leader elects a replacement only after that timeout passed
// since it RECEIVED the master's last heartbeat, which is later than the
// send; a new leader seeds every replica as alive for SeedTimeout. So the
// old master is fenced before anyone else is elected. Without a quorum
// such a master fences its writes too.
package controller
