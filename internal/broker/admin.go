package broker

// Admin family (Java's AdminBrokerProcessor): topics (17, 215, 21, 202), subscription
// groups (200, 201, 207) and GET_BROKER_RUNTIME_INFO (28).
//
// GET_TOPIC_CONFIG_LIST (22) and GET_TOPIC_NAME_LIST (23) are left to the
// default handler (REQUEST_CODE_NOT_SUPPORTED): the 4.9.7 broker does not
// serve them either, and no client sends them to a broker.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

const (
	// TopicTrace is the message-trace topic (a system topic in Java).
	TopicTrace = "RMQ_SYS_TRACE_TOPIC"
	// systemTopicPrefix marks system topics in Java's TopicValidator.
	systemTopicPrefix = "rmq_sys_"
)

func (b *Broker) registerAdmin() {
	b.server.Handle(protocol.UpdateAndCreateTopic, b.handleCreateTopic)
	b.server.Handle(protocol.DeleteTopicInBroker, b.handleDeleteTopic)
	b.server.Handle(protocol.GetAllTopicConfig, b.handleGetAllTopicConfig)
	b.server.Handle(protocol.GetTopicStatsInfo, b.handleTopicStats)
	b.server.Handle(protocol.UpdateAndCreateSubscriptionGroup, b.handleUpdateGroup)
	b.server.Handle(protocol.GetAllSubscriptionGroupConfig, b.handleGetAllGroups)
	b.server.Handle(protocol.DeleteSubscriptionGroup, b.handleDeleteGroup)
	b.server.Handle(protocol.GetBrokerRuntimeInfo, b.handleRuntimeInfo)
}

// IsSystemTopic is Java's TopicValidator.isSystemTopic: topics admins may
// neither create nor delete.
func IsSystemTopic(topic string) bool {
	switch topic {
	case TopicAutoCreate, TopicSchedule, TopicBenchmark, TopicTransHalf, TopicTrace,
		TopicTransOpHalf, TopicTransCheckMax, TopicSelfTest, TopicOffsetMoved:
		return true
	}
	return strings.HasPrefix(topic, systemTopicPrefix)
}

// checkAdminTopic rejects invalid names, system topics and the topics named
// after the cluster and the broker.
func (b *Broker) checkAdminTopic(topic string) error {
	if err := ValidTopic(topic); err != nil {
		return err
	}
	if IsSystemTopic(topic) {
		return fmt.Errorf("the topic[%s] is conflict with system topic", topic)
	}
	if topic == b.cfg.ClusterName || topic == b.cfg.BrokerName {
		return fmt.Errorf("the topic[%s] is conflict with system reserved words", topic)
	}
	return nil
}

func (b *Broker) handleCreateTopic(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.CreateTopicRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	if err := b.checkAdminTopic(h.Topic); err != nil {
		return b.refuse(req, "topicName", protocol.ResponseSystemError, err.Error())
	}
	if h.TopicFilterType != protocol.TopicFilterSingleTag && h.TopicFilterType != protocol.TopicFilterMultiTag {
		return respond(req, protocol.ResponseSystemError, "invalid topicFilterType "+strconv.Quote(h.TopicFilterType))
	}
	if err := b.checkQueueNums("topic queue number", h.ReadQueueNums, h.WriteQueueNums); err != nil {
		return b.refuse(req, "maxQueueNums", protocol.ResponseSystemError, err.Error())
	}
	tc := protocol.TopicConfig{
		TopicName: h.Topic, ReadQueueNums: h.ReadQueueNums, WriteQueueNums: h.WriteQueueNums,
		Perm: h.Perm, TopicFilterType: h.TopicFilterType, TopicSysFlag: h.TopicSysFlag, Order: h.Order,
	}
	if err := b.topics.Put(tc); err != nil { // re-registers through the change hook
		return respond(req, protocol.ResponseSystemError, "update topic config: "+err.Error())
	}
	b.log.Info("topic created or updated", "topic", h.Topic, "read", h.ReadQueueNums, "write", h.WriteQueueNums,
		"perm", h.Perm, "filter", h.TopicFilterType)
	return respond(req, protocol.ResponseSuccess, "")
}

func (b *Broker) handleDeleteTopic(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.DeleteTopicRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	if err := b.checkAdminTopic(h.Topic); err != nil {
		return respond(req, protocol.ResponseSystemError, err.Error())
	}
	if _, err := b.topics.Delete(h.Topic); err != nil {
		return respond(req, protocol.ResponseSystemError, "delete topic config: "+err.Error())
	}
	if err := b.store.DeleteTopic(h.Topic); err != nil {
		return respond(req, protocol.ResponseSystemError, "delete consume queues: "+err.Error())
	}
	b.offsets.RemoveTopic(h.Topic) // Java: ConsumerOffsetManager.cleanOffsetByTopic
	b.stats.forgetTopic(h.Topic)
	b.log.Info("topic deleted", "topic", h.Topic)
	return respond(req, protocol.ResponseSuccess, "")
}

func (b *Broker) handleGetAllTopicConfig(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	snap := b.topics.Snapshot()
	body, err := json.Marshal(&snap)
	return bodyResponse(req, body, err)
}

func (b *Broker) handleTopicStats(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetTopicStatsInfoRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	tc, ok := b.topics.Get(h.Topic)
	if !ok {
		return respond(req, protocol.ResponseTopicNotExist, "topic["+h.Topic+"] not exist")
	}
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.Body = b.topicStats(tc).Encode()
	return resp
}

// topicStats is one TopicOffset per write queue, with the store time of
// the last message (0 for an empty queue).
func (b *Broker) topicStats(tc protocol.TopicConfig) *protocol.TopicStatsTable {
	t := &protocol.TopicStatsTable{OffsetTable: make(map[protocol.MessageQueue]protocol.TopicOffset, tc.WriteQueueNums)}
	for q := int32(0); q < tc.WriteQueueNums; q++ {
		off := protocol.TopicOffset{
			MinOffset: max(b.store.MinOffsetInQueue(tc.TopicName, q), 0),
			MaxOffset: max(b.store.MaxOffsetInQueue(tc.TopicName, q), 0),
		}
		if off.MaxOffset > 0 {
			if ts, err := b.store.MessageStoreTime(tc.TopicName, q, off.MaxOffset-1); err == nil {
				off.LastUpdateTimestamp = ts
			}
		}
		t.OffsetTable[protocol.MessageQueue{Topic: tc.TopicName, BrokerName: b.cfg.BrokerName, QueueID: q}] = off
	}
	return t
}

func (b *Broker) handleUpdateGroup(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	g := protocol.NewSubscriptionGroupConfig("") // fields absent from the body keep Java's defaults
	if err := protocol.DecodeJSON(req.Body, &g); err != nil {
		return respond(req, protocol.ResponseSystemError, "decode subscription group config: "+err.Error())
	}
	if err := ValidGroup(g.GroupName); err != nil {
		return b.refuse(req, "groupName", protocol.ResponseSystemError, err.Error())
	}
	if err := b.checkQueueNums("retryQueueNums", g.RetryQueueNums); err != nil {
		return b.refuse(req, "maxQueueNums", protocol.ResponseSystemError, err.Error())
	}
	if err := b.groups.Put(g); err != nil {
		return respond(req, protocol.ResponseSystemError, "update subscription group: "+err.Error())
	}
	b.log.Info("subscription group created or updated", "group", g.GroupName)
	return respond(req, protocol.ResponseSuccess, "")
}

func (b *Broker) handleGetAllGroups(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	snap := b.groups.Snapshot()
	body, err := snap.Encode()
	return bodyResponse(req, body, err)
}

func (b *Broker) handleDeleteGroup(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.DeleteSubscriptionGroupRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	if err := b.groups.Delete(h.GroupName); err != nil {
		return respond(req, protocol.ResponseSystemError, "delete subscription group: "+err.Error())
	}
	b.offsets.RemoveGroup(h.GroupName)
	b.stats.forgetGroup(h.GroupName)
	b.log.Info("subscription group deleted", "group", h.GroupName)
	return respond(req, protocol.ResponseSuccess, "")
}

// handleRuntimeInfo answers a KVTable of figures the broker actually has
// (a subset of Java's keys, same names where they exist).
func (b *Broker) handleRuntimeInfo(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	t := protocol.KVTable{Table: map[string]string{
		"brokerVersionDesc":      "V4_9_7",
		"brokerVersion":          strconv.Itoa(int(protocol.VersionV4_9_7)),
		"commitLogMinOffset":     i64(b.store.MinPhysOffset()),
		"commitLogMaxOffset":     i64(b.store.MaxPhysOffset()),
		"commitLogDurableOffset": i64(b.store.DurableOffset()),
		"dispatchBehindBytes":    i64(b.store.DispatchLag()),
		"topicCount":             strconv.Itoa(len(b.topics.Names())),
		"subscriptionGroupCount": strconv.Itoa(len(b.groups.Names())),
		"flushDiskType":          string(cmp.Or(b.cfg.Store.FlushDiskType, engine.AsyncFlush)),
	}}
	b.delayRuntimeInfo(t.Table) // delay.go
	b.runtimeInfo(t.Table)      // admin_runtime.go
	b.loadRuntimeInfo(t.Table)  // admin_load.go
	b.haRuntimeInfo(t.Table)    // admin_ha.go
	body, err := t.Encode()
	return bodyResponse(req, body, err)
}
