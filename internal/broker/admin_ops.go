package broker

// Operator requests the Java admin tools (mqadmin, the dashboard) send,
// after Java's AdminBrokerProcessor and Broker2Client: consume stats (208),
// offset reset (222) and consumer status (223) relayed to live consumers,
// producer connections (204), who consumes a topic (300), consumer running
// info (307) and consume-directly (309) relayed to one client, clone group
// offset (314), all consumer offsets (43) and every online group's consume
// stats (317), minute/hour/day message counts (315), and the consume-queue
// cleaners (306, 316). Broker config (25/26) is in
// admin_config.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// callClientTimeout bounds a request relayed to a client (Java's
// Broker2Client.callClient waits 10 s).
const callClientTimeout = 10 * time.Second

func (b *Broker) registerOps() {
	b.server.Handle(protocol.GetConsumeStats, b.handleConsumeStats)
	b.server.Handle(protocol.InvokeBrokerToResetOffset, b.handleResetOffset)
	b.server.Handle(protocol.InvokeBrokerToGetConsumerStatus, b.handleConsumerStatus)
	b.server.Handle(protocol.GetProducerConnectionList, b.handleProducerConnections)
	b.server.Handle(protocol.QueryTopicConsumeByWho, b.handleTopicConsumeByWho)
	b.server.Handle(protocol.GetConsumerRunningInfo, b.handleConsumerRunningInfo)
	b.server.Handle(protocol.ConsumeMessageDirectly, b.handleConsumeDirectly)
	b.server.Handle(protocol.CloneGroupOffset, b.handleCloneGroupOffset)
	b.server.Handle(protocol.GetAllConsumerOffset, b.handleAllConsumerOffset)
	b.server.Handle(protocol.GetBrokerConsumeStats, b.handleBrokerConsumeStats)
	b.server.Handle(protocol.ViewBrokerStatsData, b.handleViewStats)
	b.server.Handle(protocol.CleanUnusedTopic, b.handleCleanUnusedTopic)
	b.server.Handle(protocol.CleanExpiredConsumeQueue, b.handleCleanExpiredCQ)
	b.server.Handle(protocol.UpdateBrokerConfig, b.handleUpdateBrokerConfig)
	b.server.Handle(protocol.GetBrokerConfig, b.handleGetBrokerConfig)
}

// subscribedElsewhere is Java's "skip this topic": the group is online but
// does not subscribe to topic.
func (b *Broker) subscribedElsewhere(group, topic string) bool {
	info, ok := b.consumers.Group(group)
	if !ok || len(info.Clients) == 0 {
		return false
	}
	_, sub := info.Subscriptions[topic]
	return !sub
}

// handleConsumeStats is GET_CONSUME_STATS (208): per write queue the max
// offset, the committed offset and the store time of the last consumed
// message, for one topic or every topic the group has offsets for.
func (b *Broker) handleConsumeStats(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetConsumeStatsRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	topics := []string{h.Topic}
	if h.Topic == "" {
		topics = b.offsets.Topics(h.ConsumerGroup)
	}
	cs := &protocol.ConsumeStats{OffsetTable: map[protocol.MessageQueue]protocol.OffsetWrapper{}}
	for _, topic := range topics {
		if one, ok := b.topicConsumeStats(h.ConsumerGroup, topic, false); ok {
			maps.Copy(cs.OffsetTable, one.OffsetTable)
			cs.ConsumeTps += one.ConsumeTps
		}
	}
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.Body = cs.Encode()
	return resp
}

// topicConsumeStats is one topic's part of a ConsumeStats; false when the
// topic is unknown, the online group does not subscribe to it, or onlyOrder
// and the topic is not ordered.
func (b *Broker) topicConsumeStats(group, topic string, onlyOrder bool) (*protocol.ConsumeStats, bool) {
	tc, ok := b.topics.Get(topic)
	if !ok || b.subscribedElsewhere(group, topic) || (onlyOrder && !tc.Order) {
		return nil, false
	}
	cs := &protocol.ConsumeStats{OffsetTable: make(map[protocol.MessageQueue]protocol.OffsetWrapper, tc.WriteQueueNums)}
	committed := b.offsets.Offsets(group, topic)
	for q := int32(0); q < tc.WriteQueueNums; q++ {
		w := protocol.OffsetWrapper{BrokerOffset: max(b.store.MaxOffsetInQueue(topic, q), 0)}
		w.ConsumerOffset = max(committed[q], 0)
		if ts, err := b.store.MessageStoreTime(topic, q, max(w.ConsumerOffset-1, 0)); err == nil {
			w.LastTimestamp = ts
		}
		cs.OffsetTable[protocol.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: q}] = w
	}
	if c, ok := b.stats.Groups()[GroupTopic{group, topic}]; ok {
		cs.ConsumeTps = c.consumeTps(b.stats)
	}
	return cs, true
}

// handleBrokerConsumeStats is GET_BROKER_CONSUME_STATS (317): the consume
// stats of every online group, per topic it has offsets for, and the
// total lag.
func (b *Broker) handleBrokerConsumeStats(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetConsumeStatsInBrokerHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	l := &protocol.ConsumeStatsList{BrokerAddr: b.Addr()}
	for _, group := range b.consumers.Groups() {
		g := protocol.GroupConsumeStats{Group: group}
		for _, topic := range b.offsets.Topics(group) {
			cs, ok := b.topicConsumeStats(group, topic, h.IsOrder)
			if !ok {
				continue
			}
			for _, w := range cs.OffsetTable {
				l.TotalDiff += w.BrokerOffset - w.ConsumerOffset
			}
			g.Stats = append(g.Stats, cs)
		}
		if len(g.Stats) > 0 {
			l.Groups = append(l.Groups, g)
		}
	}
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.Body = l.Encode()
	return resp
}

// handleResetOffset is INVOKE_BROKER_TO_RESET_OFFSET (222): the offset of
// every write queue at the timestamp (-1: the max offset), kept at the
// committed one unless forced or earlier; sent to every live consumer of
// the group as RESET_CONSUMER_CLIENT_OFFSET (220). Unlike Java, the broker
// also commits the new offsets, so a consumer that restarts before it
// persists its own still starts from them.
func (b *Broker) handleResetOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ResetOffsetRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	tc, ok := b.topics.Get(h.Topic)
	if !ok {
		return respond(req, protocol.ResponseSystemError, "[reset-offset] reset offset failed, no topic in this broker. topic="+h.Topic)
	}
	table, err := b.resetTable(tc, h)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, err.Error())
	}
	info, _ := b.consumers.Group(h.Group)
	if len(info.Clients) == 0 {
		return respond(req, protocol.ResponseConsumerNotOnline, fmt.Sprintf(
			"Consumer not online, so can not reset offset, Group: %s Topic: %s Timestamp: %d", h.Group, h.Topic, h.Timestamp))
	}
	body := (&protocol.ResetOffsetBody{OffsetTable: table}).Encode()
	for mq, off := range table {
		b.offsets.Commit(h.Group, h.Topic, mq.QueueID, off)
	}
	for _, ci := range info.Clients {
		cmd := protocol.NewRequest(protocol.ResetConsumerClientOffset, &h)
		cmd.Body = body
		if err := ci.Conn.InvokeOneway(cmd); err != nil {
			b.log.Warn("broker: reset offset not delivered", "group", h.Group, "client", ci.ClientID, "err", err)
		}
	}
	b.log.Info("consumer offsets reset", "group", h.Group, "topic", h.Topic, "timestamp", h.Timestamp,
		"force", h.IsForce, "clients", len(info.Clients))
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.Body = body
	return resp
}

// resetTable computes the target offset of every write queue.
func (b *Broker) resetTable(tc protocol.TopicConfig, h protocol.ResetOffsetRequestHeader) (map[protocol.MessageQueue]int64, error) {
	committed := b.offsets.Offsets(h.Group, h.Topic)
	table := make(map[protocol.MessageQueue]int64, tc.WriteQueueNums)
	for q := int32(0); q < tc.WriteQueueNums; q++ {
		cur, ok := committed[q]
		if !ok || cur < 0 {
			return nil, fmt.Errorf("THe consumer group <%s> not exist", h.Group)
		}
		var target int64
		if h.Timestamp == -1 {
			target = b.store.MaxOffsetInQueue(h.Topic, q)
		} else if off, err := b.store.OffsetInQueueByTime(h.Topic, q, h.Timestamp); err == nil {
			target = off
		}
		target = max(target, 0)
		if !h.IsForce && target >= cur {
			target = cur
		}
		table[protocol.MessageQueue{Topic: h.Topic, BrokerName: b.cfg.BrokerName, QueueID: q}] = target
	}
	return table, nil
}

// handleConsumerStatus is INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223): asks
// each live consumer of the group (or the one at clientAddr) for its
// offsets of topic with GET_CONSUMER_STATUS_FROM_CLIENT (221).
func (b *Broker) handleConsumerStatus(ctx context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetConsumerStatusRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	info, _ := b.consumers.Group(h.Group)
	if len(info.Clients) == 0 {
		return respond(req, protocol.ResponseSystemError, "No Any Consumer online in the consumer group: ["+h.Group+"]")
	}
	out := &protocol.GetConsumerStatusBody{ConsumerTable: map[string]map[protocol.MessageQueue]int64{}}
	for _, ci := range info.Clients {
		if h.ClientAddr != "" && h.ClientAddr != ci.Conn.RemoteAddrString() {
			continue
		}
		table, err := b.clientStatus(ctx, ci, h)
		if err != nil {
			return respond(req, protocol.ResponseSystemError, fmt.Sprintf(
				"GetConsumeStatus, Get Consumer Status Exception, client %s: %v", ci.ClientID, err))
		}
		out.ConsumerTable[ci.ClientID] = table
	}
	resp := respond(req, protocol.ResponseSuccess, "")
	resp.Body = out.Encode()
	return resp
}

func (b *Broker) clientStatus(ctx context.Context, ci ClientInfo, h protocol.GetConsumerStatusRequestHeader) (map[protocol.MessageQueue]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callClientTimeout)
	defer cancel()
	r, err := ci.Conn.Invoke(ctx, protocol.NewRequest(protocol.GetConsumerStatusFromClient, &h))
	if err != nil {
		return nil, err
	}
	if r.Code != protocol.ResponseSuccess {
		return nil, fmt.Errorf("code %d: %s", r.Code, r.Remark)
	}
	return protocol.DecodeMQOffsetTable(r.Body, "messageQueueTable")
}

// handleProducerConnections is GET_PRODUCER_CONNECTION_LIST (204).
func (b *Broker) handleProducerConnections(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ProducerGroupHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	clients := b.producers.Clients(h.ProducerGroup)
	if len(clients) == 0 {
		return respond(req, protocol.ResponseSystemError, "the producer group["+h.ProducerGroup+"] not exist")
	}
	pc := protocol.ProducerConnection{ConnectionSet: make([]protocol.Connection, 0, len(clients))}
	for _, ci := range clients {
		pc.ConnectionSet = append(pc.ConnectionSet, protocol.Connection{ClientAddr: ci.Conn.RemoteAddrString(),
			ClientID: ci.ClientID, Language: ci.Language, Version: ci.Version})
	}
	body, err := json.Marshal(pc)
	return bodyResponse(req, body, err)
}

// handleTopicConsumeByWho is QUERY_TOPIC_CONSUME_BY_WHO (300): groups
// subscribed to topic now, and groups with offsets for it.
func (b *Broker) handleTopicConsumeByWho(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.QueryTopicConsumeByWhoRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	// Never nil: Java's GroupList answers [] for a topic nobody consumes,
	// and mqadmin topicList -c calls isEmpty() on it (null would throw).
	groups := append([]string{}, b.consumers.GroupsByTopic(h.Topic)...)
	groups = append(groups, b.offsets.Groups(h.Topic)...)
	slices.Sort(groups)
	body, err := json.Marshal(protocol.GroupList{GroupList: slices.Compact(groups)})
	return bodyResponse(req, body, err)
}

// handleConsumerRunningInfo is GET_CONSUMER_RUNNING_INFO (307), relayed to
// the named client; its answer is returned as is.
func (b *Broker) handleConsumerRunningInfo(ctx context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.GetConsumerRunningInfoRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	return b.callConsumer(ctx, req, protocol.NewRequest(protocol.GetConsumerRunningInfo, &h), h.ConsumerGroup, h.ClientID)
}

// handleConsumeDirectly is CONSUME_MESSAGE_DIRECTLY (309): the message
// named by its offsetMsgId is sent to the named client, which consumes it
// and reports the result.
func (b *Broker) handleConsumeDirectly(ctx context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ConsumeMessageDirectlyRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	_, phys, err := message.ParseOffsetMsgID(h.MsgID)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "bad msgId "+clip(h.MsgID)+": "+err.Error())
	}
	rec, err := b.store.ReadMessage(phys)
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "message "+h.MsgID+" not found: "+err.Error())
	}
	h.BrokerName = b.cfg.BrokerName
	cmd := protocol.NewRequest(protocol.ConsumeMessageDirectly, &h)
	cmd.Body = rec
	return b.callConsumer(ctx, req, cmd, h.ConsumerGroup, h.ClientID)
}

// callConsumer is Java's AdminBrokerProcessor.callConsumer: cmd goes to the
// group's connection of clientID and the client's answer is the response.
func (b *Broker) callConsumer(ctx context.Context, req, cmd *protocol.Command, group, clientID string) *protocol.Command {
	info, _ := b.consumers.Group(group)
	i := slices.IndexFunc(info.Clients, func(ci ClientInfo) bool { return ci.ClientID == clientID })
	if i < 0 {
		return respond(req, protocol.ResponseSystemError, fmt.Sprintf("The Consumer <%s> <%s> not online", group, clientID))
	}
	ctx, cancel := context.WithTimeout(ctx, callClientTimeout)
	defer cancel()
	r, err := info.Clients[i].Conn.Invoke(ctx, cmd)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return respond(req, protocol.ResponseConsumeMsgTimeout, fmt.Sprintf("consumer <%s> <%s> Timeout: %v", group, clientID, err))
	case err != nil:
		return respond(req, protocol.ResponseSystemError, fmt.Sprintf("invoke consumer <%s> <%s> Exception: %v", group, clientID, err))
	}
	resp := respond(req, r.Code, r.Remark)
	resp.Body = r.Body
	return resp
}

// handleCloneGroupOffset is CLONE_GROUP_OFFSET (314): destGroup gets
// srcGroup's committed offsets of one topic or of all of them.
func (b *Broker) handleCloneGroupOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.CloneGroupOffsetRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	if err := ValidGroup(h.DestGroup); err != nil {
		return respond(req, protocol.ResponseSystemError, err.Error())
	}
	topics := []string{h.Topic}
	if h.Topic == "" {
		topics = b.offsets.Topics(h.SrcGroup)
	}
	for _, topic := range topics {
		if _, ok := b.topics.Get(topic); !ok {
			continue
		}
		if !h.Offline && b.subscribedElsewhere(h.SrcGroup, topic) {
			continue
		}
		for q, off := range b.offsets.Offsets(h.SrcGroup, topic) {
			b.offsets.Commit(h.DestGroup, topic, q, off)
		}
	}
	b.log.Info("consumer offsets cloned", "src", h.SrcGroup, "dest", h.DestGroup, "topic", h.Topic)
	return respond(req, protocol.ResponseSuccess, "")
}

// handleAllConsumerOffset is GET_ALL_CONSUMER_OFFSET (43): the offset
// table as config/consumerOffset.json holds it.
func (b *Broker) handleAllConsumerOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	body, err := json.Marshal(b.offsets.snapshot())
	return bodyResponse(req, body, err)
}

// brokerStatsData is Java's BrokerStatsData, the body of a code 315
// response.
type brokerStatsData struct {
	StatsMinute StatsWindow `json:"statsMinute"`
	StatsHour   StatsWindow `json:"statsHour"`
	StatsDay    StatsWindow `json:"statsDay"`
}

// handleViewStats is VIEW_BROKER_STATS_DATA (315): a topic's stored
// messages (TOPIC_PUT_NUMS, key topic) or a group's pulled messages
// (GROUP_GET_NUMS, key topic@group) over the last minute, hour and day.
func (b *Broker) handleViewStats(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ViewBrokerStatsDataRequestHeader
	if resp := decodeExt(req, &h); resp != nil {
		return resp
	}
	var c *Counters
	var hist *history
	switch h.StatsName {
	case protocol.StatsTopicPutNums:
		if c = b.stats.Topics()[h.StatsKey]; c != nil {
			hist = &c.put
		}
	case protocol.StatsGroupGetNums:
		topic, group, _ := strings.Cut(h.StatsKey, "@")
		if c = b.stats.Groups()[GroupTopic{group, topic}]; c != nil {
			hist = &c.get
		}
	}
	if hist == nil {
		return respond(req, protocol.ResponseSystemError, fmt.Sprintf("The stats <%s> <%s> not exist", clip(h.StatsName), clip(h.StatsKey)))
	}
	b.stats.mu.Lock()
	d := brokerStatsData{StatsMinute: hist.minute(), StatsHour: hist.hour(), StatsDay: hist.day()}
	b.stats.mu.Unlock()
	body, err := json.Marshal(d)
	return bodyResponse(req, body, err)
}

// handleCleanUnusedTopic is CLEAN_UNUSED_TOPIC (316): consume queues of
// topics without a topic config are deleted, except system topics (Java's
// DefaultMessageStore.cleanUnusedTopic).
func (b *Broker) handleCleanUnusedTopic(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var removed []string
	for _, topic := range b.store.QueueTopics() {
		if _, ok := b.topics.Get(topic); ok || IsSystemTopic(topic) {
			continue
		}
		if err := b.store.DeleteTopic(topic); err != nil {
			return respond(req, protocol.ResponseSystemError, "delete consume queues of "+topic+": "+err.Error())
		}
		b.offsets.RemoveTopic(topic)
		removed = append(removed, topic)
	}
	b.log.Info("unused topics cleaned", "topics", removed)
	return respond(req, protocol.ResponseSuccess, fmt.Sprintf("%d unused topics cleaned", len(removed)))
}

// handleCleanExpiredCQ is CLEAN_EXPIRED_CONSUMEQUEUE (306).
func (b *Broker) handleCleanExpiredCQ(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	n, err := b.store.CleanExpiredConsumeQueues()
	if err != nil {
		return respond(req, protocol.ResponseSystemError, "clean expired consume queues: "+err.Error())
	}
	b.log.Info("expired consume queue files cleaned", "files", n)
	return respond(req, protocol.ResponseSuccess, fmt.Sprintf("%d consume queue files removed", n))
}
