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
// # Fencing contract with brokers
//
// A master counts its lease from when it SENT its last answered heartbeat;
// it must stop acknowledging writes once the lease (shorter than its
// controllerHeartBeatTimeoutMills) runs out. The leader elects a
// replacement only after that timeout passed since it RECEIVED the
// master's last heartbeat, which is later than the send; a new leader
// seeds every replica as alive for SeedTimeout. So the old master is
// fenced before anyone else is elected.
package controller
