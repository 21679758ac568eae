package namesrv

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Remarks the Java namesrv uses.
const (
	remarkCRCMismatch = "crc32 not match"
	// topicNotExistPrefix + topic + topicNotExistSuffix is the 4.9.7
	// remark of TOPIC_NOT_EXIST (FAQUrl.suggestTodo(APPLY_TOPIC_URL)).
	topicNotExistPrefix = "No topic route info in name server for the topic: "
	topicNotExistSuffix = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."
)

func (s *Server) registerHandlers() {
	h := map[int16]remoting.Handler{
		protocol.RegisterBroker:                s.handleRegisterBroker,
		protocol.UnregisterBroker:              s.handleUnregisterBroker,
		protocol.GetRouteInfoByTopic:           s.handleGetRouteInfo,
		protocol.GetBrokerClusterInfo:          s.handleClusterInfo,
		protocol.GetAllTopicListFromNameserver: s.handleAllTopicList,
		protocol.DeleteTopicInNamesrv:          s.handleDeleteTopic,
		protocol.QueryDataVersion:              s.handleQueryDataVersion,
		protocol.GetTopicsByCluster:            s.handleTopicsByCluster,
		protocol.WipeWritePermOfBroker:         s.handleWritePerm,
		protocol.AddWritePermOfBroker:          s.handleWritePerm,
		protocol.PutKVConfig:                   s.handleKV,
		protocol.GetKVConfig:                   s.handleKV,
		protocol.DeleteKVConfig:                s.handleKV,
		protocol.GetKVListByNamespace:          s.handleKV,
		protocol.GetNamesrvConfig:              s.handleGetConfig,    // config_admin.go
		protocol.UpdateNamesrvConfig:           s.handleUpdateConfig, // config_admin.go
	}
	for code, fn := range h {
		s.remote.Handle(code, fn)
	}
}

func success(req *protocol.Command) *protocol.Command {
	return protocol.NewResponse(req, protocol.ResponseSuccess, "")
}

// systemError answers SYSTEM_ERROR with err as remark (Java's answer to an
// exception, e.g. a missing required header field).
func systemError(req *protocol.Command, err error) *protocol.Command {
	return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
}

// bodyCRC is CRC32-IEEE & 0x7FFFFFFF (Java UtilAll.crc32).
func bodyCRC(b []byte) int32 { return int32(crc32.ChecksumIEEE(b) & 0x7FFFFFFF) }

func (s *Server) handleRegisterBroker(_ context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.RegisterBrokerRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return systemError(req, err)
	}
	if h.BodyCrc32 != 0 && bodyCRC(req.Body) != h.BodyCrc32 {
		s.log.Warn("namesrv: register broker: crc32 not match", "remote", c.RemoteAddrString(),
			"broker_name", h.BrokerName, "broker_addr", h.BrokerAddr)
		return protocol.NewResponse(req, protocol.ResponseSystemError, remarkCRCMismatch)
	}
	reg := registration{
		cluster: h.ClusterName, name: h.BrokerName, addr: h.BrokerAddr,
		haServerAddr: h.HaServerAddr, id: h.BrokerID, conn: c,
	}
	// No body (Java: null body) registers a zero DataVersion and no topics.
	if len(req.Body) > 0 {
		body, err := protocol.DecodeRegisterBrokerBodyLimit(req.Body, h.Compressed, s.conf().MaxRegisterTopics)
		if err != nil {
			// Keep the broker's last good registration live rather than
			// letting one bad body drop it from every route.
			kept := s.routes.touch(h.BrokerAddr, time.Now())
			s.log.Error("namesrv: register broker: undecodable body; last registration kept", "err", err,
				"broker_name", h.BrokerName, "broker_addr", h.BrokerAddr, "bytes", len(req.Body),
				"compressed", h.Compressed, "kept", kept, "remote", c.RemoteAddrString())
			return protocol.NewResponse(req, protocol.ResponseSystemError,
				"Failed to decode RegisterBrokerBody: "+err.Error())
		}
		w := body.TopicConfigSerializeWrapper
		s.capQueueNums(w.TopicConfigTable, h.BrokerName)
		reg.version, reg.topics = w.DataVersion, w.TopicConfigTable
		reg.filterServers = body.FilterServerList
	}
	res := s.routes.register(reg, time.Now())
	if res.dropped {
		return nil // the connection is gone; nobody to answer
	}
	resp := success(req)
	if ref := res.refused; ref != nil {
		// Java 5 answers SUCCESS without a master address; the remark,
		// which Java brokers ignore on success, tells ours why.
		resp.Remark = fmt.Sprintf("%s: brokerId %d of %s is held by %s with stateVersion %d > %d",
			protocol.RemarkStaleRegistration, h.BrokerID, h.BrokerName, ref.holder, ref.holderState, ref.state)
		s.log.Warn("namesrv: register broker refused: its brokerId is held with a higher stateVersion (master epoch)",
			"cluster", h.ClusterName, "broker_name", h.BrokerName, "broker_id", h.BrokerID,
			"broker_addr", h.BrokerAddr, "state_version", ref.state, "holder", ref.holder,
			"holder_state_version", ref.holderState, "remote", c.RemoteAddrString())
	} else if res.newAddr {
		s.log.Info("namesrv: broker registered", "cluster", h.ClusterName,
			"broker_name", h.BrokerName, "broker_id", h.BrokerID, "broker_addr", h.BrokerAddr,
			"ha_addr", h.HaServerAddr, "topics", len(reg.topics), "remote", c.RemoteAddrString())
	} else if res.topicsApplied {
		s.log.Debug("namesrv: broker topic table applied", "broker_name", h.BrokerName,
			"broker_addr", h.BrokerAddr, "topics", len(reg.topics),
			"data_version", reg.version.Counter)
	}
	resp.SetHeader(&protocol.RegisterBrokerResponseHeader{
		HaServerAddr: res.masterHAAddr, MasterAddr: res.masterAddr,
	})
	if t, ok := s.kv.list(NamespaceOrderTopicConfig); ok {
		b, err := (&protocol.KVTable{Table: t}).Encode()
		if err != nil {
			return systemError(req, err)
		}
		resp.Body = b
	}
	return resp
}

// capQueueNums bounds the queue numbers a registration advertises to
// MaxQueueNums: routes carry them to every client, which sizes its queue
// tables from them (a topic with 2^31-1 queues makes clients run out of
// memory). Negative numbers, which no broker sends and clients would use
// as a slice length, become 0. Capped topics are logged.
func (s *Server) capQueueNums(topics map[string]protocol.TopicConfig, broker string) {
	limit := int32(min(s.conf().MaxQueueNums, math.MaxInt32))
	for name, tc := range topics {
		if tc.ReadQueueNums >= 0 && tc.WriteQueueNums >= 0 &&
			tc.ReadQueueNums <= limit && tc.WriteQueueNums <= limit {
			continue
		}
		s.log.Error("namesrv: register broker: queue numbers clamped to [0,MaxQueueNums]", "broker_name", broker,
			"topic", name, "read", tc.ReadQueueNums, "write", tc.WriteQueueNums, "limit", limit)
		tc.ReadQueueNums = max(0, min(tc.ReadQueueNums, limit))
		tc.WriteQueueNums = max(0, min(tc.WriteQueueNums, limit))
		topics[name] = tc
	}
}

func (s *Server) handleUnregisterBroker(_ context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.UnregisterBrokerRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return systemError(req, err)
	}
	known := s.routes.unregister(h.ClusterName, h.BrokerAddr, h.BrokerName, h.BrokerID)
	s.log.Info("namesrv: broker unregistered", "cluster", h.ClusterName,
		"broker_name", h.BrokerName, "broker_id", h.BrokerID, "broker_addr", h.BrokerAddr,
		"known", known, "remote", c.RemoteAddrString())
	return success(req)
}

func (s *Server) handleGetRouteInfo(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetRouteInfoRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return systemError(req, err)
	}
	rd, ok := s.routes.route(h.Topic)
	if !ok {
		return protocol.NewResponse(req, protocol.ResponseTopicNotExist,
			topicNotExistPrefix+h.Topic+topicNotExistSuffix)
	}
	if s.conf().OrderMessageEnable {
		rd.OrderTopicConf, _ = s.kv.get(NamespaceOrderTopicConfig, h.Topic)
	}
	resp := success(req)
	resp.Body = rd.AppendJSON(make([]byte, 0, 256))
	return resp
}

func (s *Server) handleClusterInfo(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	resp := success(req)
	resp.Body = s.routes.clusterInfo().AppendJSON(nil)
	return resp
}

func topicListResponse(req *protocol.Command, topics []string) *protocol.Command {
	b, err := (&protocol.TopicList{TopicList: topics}).Encode()
	if err != nil {
		return systemError(req, err)
	}
	resp := success(req)
	resp.Body = b
	return resp
}

func (s *Server) handleAllTopicList(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	return topicListResponse(req, s.routes.topicList())
}

func (s *Server) handleTopicsByCluster(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetTopicsByClusterRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return systemError(req, err)
	}
	return topicListResponse(req, s.routes.topicsByCluster(h.Cluster))
}

func (s *Server) handleDeleteTopic(_ context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.DeleteTopicFromNamesrvRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return systemError(req, err)
	}
	s.routes.deleteTopic(h.Topic, h.ClusterName)
	s.log.Info("namesrv: topic deleted", "topic", h.Topic, "cluster", h.ClusterName,
		"remote", c.RemoteAddrString())
	return success(req)
}

func (s *Server) handleQueryDataVersion(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.QueryDataVersionRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return systemError(req, err)
	}
	var dv protocol.DataVersion
	if len(req.Body) > 0 {
		if err := protocol.DecodeJSON(req.Body, &dv); err != nil {
			return protocol.NewResponse(req, protocol.ResponseSystemError,
				"decode DataVersion: "+err.Error())
		}
	}
	changed, cur := s.routes.queryDataVersion(h.BrokerAddr, dv, time.Now())
	resp := success(req)
	resp.SetHeader(&protocol.QueryDataVersionResponseHeader{Changed: changed})
	if cur != nil {
		resp.Body = appendDataVersion(nil, *cur)
	}
	return resp
}

// appendDataVersion writes {"counter":n,"timestamp":ms} (fastjson order).
func appendDataVersion(dst []byte, v protocol.DataVersion) []byte {
	dst = append(dst, `{"counter":`...)
	dst = strconv.AppendInt(dst, v.Counter, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, v.Timestamp, 10)
	return append(dst, '}')
}

func (s *Server) handleWritePerm(_ context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.BrokerNameHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return systemError(req, err)
	}
	wipe := req.Code == protocol.WipeWritePermOfBroker
	n := s.routes.setWritePerm(h.BrokerName, wipe)
	key := "addTopicCount"
	if wipe {
		key = "wipeTopicCount"
	}
	s.log.Info("namesrv: broker write permission changed", "broker_name", h.BrokerName,
		"wipe", wipe, "topics", n, "remote", c.RemoteAddrString())
	resp := success(req)
	resp.SetHeader(&protocol.WritePermCountResponseHeader{Key: key, Count: int32(n)})
	return resp
}

func (s *Server) handleKV(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.KVConfigHeader
	if err := h.DecodeFor(req.Code, req.ExtFields); err != nil {
		return systemError(req, err)
	}
	switch req.Code {
	case protocol.PutKVConfig:
		c := s.conf()
		if n := len(h.Namespace) + len(h.Key) + len(h.Value); n > c.MaxKVEntryBytes {
			s.log.Warn("namesrv: kv config entry refused (MaxKVEntryBytes)", "bytes", n, "limit", c.MaxKVEntryBytes)
			return protocol.NewResponse(req, protocol.ResponseSystemError,
				"kv config entry of "+strconv.Itoa(n)+" bytes exceeds "+strconv.Itoa(c.MaxKVEntryBytes))
		}
		err := s.kv.put(h.Namespace, h.Key, h.Value, c.MaxKVEntries)
		if errors.Is(err, errKVFull) {
			s.log.Warn("namesrv: kv config entry refused (MaxKVEntries)", "limit", c.MaxKVEntries)
			return protocol.NewResponse(req, protocol.ResponseSystemError,
				"kv config table holds "+strconv.Itoa(c.MaxKVEntries)+" entries (MaxKVEntries)")
		}
		if err != nil {
			s.log.Error("namesrv: persist kv config", "path", s.cfg.KVConfigPath, "err", err)
		}
		return success(req)
	case protocol.DeleteKVConfig:
		if err := s.kv.del(h.Namespace, h.Key); err != nil {
			s.log.Error("namesrv: persist kv config", "path", s.cfg.KVConfigPath, "err", err)
		}
		return success(req)
	case protocol.GetKVConfig:
		v, ok := s.kv.get(h.Namespace, h.Key)
		if !ok {
			return protocol.NewResponse(req, protocol.ResponseQueryNotFound,
				"No config item, Namespace: "+h.Namespace+" Key: "+h.Key)
		}
		resp := success(req)
		resp.SetHeader(&protocol.GetKVConfigResponseHeader{Value: v})
		return resp
	default: // GetKVListByNamespace
		t, ok := s.kv.list(h.Namespace)
		if !ok {
			return protocol.NewResponse(req, protocol.ResponseQueryNotFound,
				"No config item, Namespace: "+h.Namespace)
		}
		b, err := (&protocol.KVTable{Table: t}).Encode()
		if err != nil {
			return systemError(req, err)
		}
		resp := success(req)
		resp.Body = b
		return resp
	}
}
