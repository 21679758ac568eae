package controller

import (
	"context"
	"errors"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// server answers brokers on the controller's remoting port. Only the
// leader answers requests about broker sets; a follower answers
// CONTROLLER_NOT_LEADER with the leader's address in ext field
// leaderAddr, and the broker asks there.
type server struct {
	n  *Node
	rs *remoting.Server
}

func newServer(n *Node) (*server, error) {
	ln := n.cfg.Listener
	limits := map[int16]int32{}
	for _, c := range []int16{protocol.RequestBrokerHeartbeat, protocol.RequestControllerAlterSyncState,
		protocol.RequestControllerElectMaster, protocol.RequestControllerRegisterBroker,
		protocol.RequestControllerGetReplicaInfo, protocol.RequestControllerGetMetadata} {
		limits[c] = protocol.MaxControllerBody
	}
	rs := remoting.NewServer(remoting.ServerConfig{Addr: n.self.Addr, Listener: ln, Logger: n.log,
		MaxFrame: 1 << 20, MaxRequestBody: limits, MaxConns: 4096})
	s := &server{n: n, rs: rs}
	rs.Handle(protocol.RequestBrokerHeartbeat, s.leaderOnly(s.heartbeat))
	rs.Handle(protocol.RequestControllerRegisterBroker, s.leaderOnly(s.register))
	rs.Handle(protocol.RequestControllerAlterSyncState, s.leaderOnly(s.alterSync))
	rs.Handle(protocol.RequestControllerElectMaster, s.leaderOnly(s.electMaster))
	rs.Handle(protocol.RequestControllerGetReplicaInfo, s.leaderOnly(s.replicaInfo))
	rs.Handle(protocol.RequestControllerGetMetadata, s.metadata)
	if err := rs.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.rs.Shutdown(ctx)
	s.rs.Close()
}

type handler func(req *protocol.Command) *protocol.Command

// leaderOnly answers CONTROLLER_NOT_LEADER unless this node is the leader,
// caught up, and still confirmed by a quorum (VerifyLeader): a deposed
// leader cut off from the others must not answer heartbeats, or a
// fenced-off master would keep believing it holds its lease.
func (s *server) leaderOnly(h handler) remoting.Handler {
	return func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		n := s.n
		if !n.IsLeader() || !n.live.ready.Load() || n.raft.VerifyLeader().Error() != nil {
			resp := protocol.NewResponse(req, protocol.ResponseControllerNotLeader, "not the controller leader")
			_, addr := n.LeaderAddr()
			if addr == n.self.Addr {
				addr = "" // we believe we lead but cannot prove it: ask again later
			}
			resp.ExtFields = map[string]string{protocol.ControllerExtLeader: addr}
			return resp
		}
		return h(req)
	}
}

func invalid(req *protocol.Command, err error) *protocol.Command {
	return protocol.NewResponse(req, protocol.ResponseControllerInvalidRequest, err.Error())
}

func (s *server) heartbeat(req *protocol.Command) *protocol.Command {
	hb, err := protocol.DecodeBrokerHeartbeat(req.Body)
	if err != nil {
		s.n.log.Warn("controller: bad heartbeat", "err", err)
		return invalid(req, err)
	}
	s.n.electMu.Lock() // Node.electMu: never answered from a state an election decided against
	defer s.n.electMu.Unlock()
	bs, ok := s.n.fsm.get(hb.Cluster, hb.BrokerName)
	r, found := bs.Replica(hb.BrokerID)
	if !ok || !found || r.Addr != hb.BrokerAddr {
		return protocol.NewResponse(req, protocol.ResponseControllerNeedRegister, "register first")
	}
	if r.HAAddr != hb.HAAddr {
		return protocol.NewResponse(req, protocol.ResponseControllerNeedRegister, "HA address changed: register again")
	}
	s.n.live.beat(hb.Cluster, hb.BrokerName, hb.BrokerID, liveOf(hb))
	if bs.MasterID == 0 {
		s.n.kickScan()
	}
	return s.infoResponse(req, bs, hb.BrokerID)
}

func liveOf(hb protocol.BrokerHeartbeatBody) Live {
	t := time.Duration(hb.TimeoutMs) * time.Millisecond
	if t <= 0 {
		t = 10 * time.Second // controllerHeartBeatTimeoutMills default
	}
	return Live{Last: time.Now(), Timeout: t, Epoch: hb.Epoch, MaxOffset: hb.MaxOffset, Priority: hb.Priority}
}

func (s *server) register(req *protocol.Command) *protocol.Command {
	hb, err := protocol.DecodeBrokerHeartbeat(req.Body)
	if err != nil {
		s.n.log.Warn("controller: bad registration", "err", err)
		return invalid(req, err)
	}
	res, err := s.n.Propose(Op{Kind: OpRegister, Cluster: hb.Cluster, Name: hb.BrokerName, Addr: hb.BrokerAddr, HAAddr: hb.HAAddr,
		TimeoutMs: hb.TimeoutMs})
	if resp := s.failed(req, res, err); resp != nil {
		return resp
	}
	s.n.live.beat(hb.Cluster, hb.BrokerName, res.ID, liveOf(hb))
	s.n.kickScan()
	return s.infoResponse(req, res.Set, res.ID)
}

func (s *server) failed(req *protocol.Command, res Result, err error) *protocol.Command {
	switch {
	case errors.Is(err, ErrNotLeader):
		return protocol.NewResponse(req, protocol.ResponseControllerNotLeader, err.Error())
	case err != nil:
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	case res.Code != protocol.ResponseSuccess:
		return protocol.NewResponse(req, res.Code, res.Remark)
	}
	return nil
}

// maxSeqAhead bounds how far a proposal's sequence number may run ahead
// of the leader's clock (AlterSyncStateSetBody.Seq).
const maxSeqAhead = 24 * time.Hour

// alterSync checks that every member the proposal adds to the committed
// set is alive (Java: 2006 CONTROLLER_BROKER_NOT_ALIVE), then commits the
// new set; the FSM checks the master and the epochs. A member the
// committed set already holds needs no liveness: keeping or removing it
// never makes the set less safe, and refusing would keep a master waiting
// for a dead member while another is cut from the controllers. A refusal
// made by the FSM carries the committed set after the op (the master
// resolves its earlier proposals with it, controller/agent/isr.go).
func (s *server) alterSync(req *protocol.Command) *protocol.Command {
	a, err := protocol.DecodeAlterSyncStateSet(req.Body)
	if err != nil {
		s.n.log.Warn("controller: bad in-sync report", "err", err)
		return invalid(req, err)
	}
	now := time.Now()
	if a.Seq < 0 || a.Seq > now.Add(maxSeqAhead).UnixNano() {
		// Seq is the master's clock in ns (agent/isr.go): one far ahead
		// would make the master's next proposals look stale for good
		return protocol.NewResponse(req, protocol.ResponseControllerInvalidRequest, "proposal sequence out of range")
	}
	cur, _ := s.n.fsm.get(a.Cluster, a.BrokerName)
	live := s.n.live.snapshot(a.Cluster, a.BrokerName)
	for _, id := range a.SyncStateSet {
		if l := live[id]; !cur.InSync(id) && (!l.Alive(now) || l.Seeded) {
			return protocol.NewResponse(req, protocol.ResponseControllerBrokerNotAlive, "in-sync member not alive")
		}
	}
	res, err := s.n.Propose(Op{Kind: OpAlterSync, Cluster: a.Cluster, Name: a.BrokerName, MasterID: a.MasterID,
		MasterEpoch: a.MasterEpoch, SyncEpoch: a.SyncStateSetEpoch, SyncStateSet: a.SyncStateSet, Seq: a.Seq})
	if resp := s.failed(req, res, err); resp != nil {
		if err == nil && res.Set.Name != "" {
			resp.Body = protocol.EncodeControllerJSON(Info(res.Set, a.MasterID, live, now))
		}
		return resp
	}
	return s.infoResponse(req, res.Set, a.MasterID)
}

// electMaster is the admin's "elect now": the same rule as the failure
// detector.
func (s *server) electMaster(req *protocol.Command) *protocol.Command {
	e, err := protocol.DecodeElectMaster(req.Body)
	if err != nil {
		return invalid(req, err)
	}
	bs, ok := s.n.fsm.get(e.Cluster, e.BrokerName)
	if !ok {
		return protocol.NewResponse(req, protocol.ResponseControllerInvalidRequest, "broker name not registered")
	}
	op, ok := Decide(bs, s.n.live.snapshot(e.Cluster, e.BrokerName), time.Now(), s.n.cfg.Unclean)
	if !ok {
		if bs.MasterID != 0 {
			return protocol.NewResponse(req, protocol.ResponseControllerMasterStillExist, "the master is alive")
		}
		return protocol.NewResponse(req, protocol.ResponseControllerElectMasterFailed, "no candidate alive")
	}
	res, err := s.n.Propose(op)
	if resp := s.failed(req, res, err); resp != nil {
		return resp
	}
	return s.infoResponse(req, res.Set, 0)
}

func (s *server) replicaInfo(req *protocol.Command) *protocol.Command {
	e, err := protocol.DecodeElectMaster(req.Body) // same names-only body
	if err != nil {
		return invalid(req, err)
	}
	bs, ok := s.n.fsm.get(e.Cluster, e.BrokerName)
	if !ok {
		return protocol.NewResponse(req, protocol.ResponseControllerInvalidRequest, "broker name not registered")
	}
	return s.infoResponse(req, bs, 0)
}

func (s *server) metadata(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	id, addr := s.n.LeaderAddr()
	resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
	resp.Body = protocol.EncodeControllerJSON(protocol.ControllerMetadata{LeaderID: id, LeaderAddr: addr, IsLeader: s.n.IsLeader()})
	return resp
}

// Info converts a committed set and the leader's heartbeat table to the
// wire answer for broker id.
func Info(bs BrokerSet, id int64, live map[int64]Live, now time.Time) protocol.ReplicaSetInfo {
	info := protocol.ReplicaSetInfo{Cluster: bs.Cluster, BrokerName: bs.Name, BrokerID: id, MasterID: bs.MasterID,
		MasterEpoch: bs.MasterEpoch, SyncStateSet: bs.SyncStateSet, SyncStateSetEpoch: bs.SyncStateSetEpoch, AlterSeq: bs.AlterSeq}
	for _, r := range bs.Replicas {
		l := live[r.ID]
		info.Replicas = append(info.Replicas, protocol.ReplicaInfo{BrokerID: r.ID, Addr: r.Addr, HAAddr: r.HAAddr,
			Alive: l.Alive(now) && !l.Seeded, Epoch: l.Epoch, MaxOffset: l.MaxOffset})
		if r.ID == bs.MasterID {
			info.MasterAddr, info.MasterHAAddr = r.Addr, r.HAAddr
		}
	}
	return info
}

func (s *server) infoResponse(req *protocol.Command, bs BrokerSet, id int64) *protocol.Command {
	resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
	resp.Body = protocol.EncodeControllerJSON(Info(bs, id, s.n.live.snapshot(bs.Cluster, bs.Name), time.Now()))
	return resp
}
