package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// UpdateSubGroup creates or updates a subscription group.
func (a *Admin) UpdateSubGroup(brokerAddr, cluster string, g protocol.SubscriptionGroupConfig) error {
	if g.GroupName == "" {
		return errors.New("-g group is required")
	}
	ts, err := a.masters(brokerAddr, cluster)
	if err != nil {
		return err
	}
	body, err := json.Marshal(g)
	if err != nil {
		return err
	}
	for _, t := range ts {
		req := protocol.NewRequest(protocol.UpdateAndCreateSubscriptionGroup, nil)
		req.Body = body
		if _, err := a.call(t.addr, req); err != nil {
			return fmt.Errorf("update subscription group %q on %s: %w", g.GroupName, t.addr, err)
		}
		a.printf("create subscription group to %s success.\n", t.addr)
	}
	a.printf("%s\n", body)
	return nil
}

// DeleteSubGroup deletes a subscription group (and its offsets).
func (a *Admin) DeleteSubGroup(brokerAddr, cluster, group string) error {
	if group == "" {
		return errors.New("-g group is required")
	}
	ts, err := a.masters(brokerAddr, cluster)
	if err != nil {
		return err
	}
	for _, t := range ts {
		_, err := a.call(t.addr, protocol.NewRequest(protocol.DeleteSubscriptionGroup,
			&protocol.DeleteSubscriptionGroupRequestHeader{GroupName: group}))
		if err != nil {
			return fmt.Errorf("delete subscription group %q from %s: %w", group, t.addr, err)
		}
		a.printf("delete subscription group [%s] from broker [%s] in cluster [%s] success.\n", group, t.addr, t.cluster)
	}
	return nil
}

// consumeStats gathers GET_CONSUME_STATS of group from the masters of its
// retry topic's route (every broker the group consumes on).
func (a *Admin) consumeStats(group, topic string) (*protocol.ConsumeStats, error) {
	ts, err := a.topicMasters("%RETRY%" + group)
	if err != nil {
		return nil, fmt.Errorf("group %q has no route (never consumed?): %w", group, err)
	}
	all := &protocol.ConsumeStats{OffsetTable: map[protocol.MessageQueue]protocol.OffsetWrapper{}}
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.GetConsumeStats,
			&protocol.GetConsumeStatsRequestHeader{ConsumerGroup: group, Topic: topic}))
		if err != nil {
			return nil, err
		}
		cs, err := protocol.DecodeConsumeStats(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("consume stats from %s: %w", t.addr, err)
		}
		all.ConsumeTps += cs.ConsumeTps
		for mq, w := range cs.OffsetTable {
			all.OffsetTable[mq] = w
		}
	}
	return all, nil
}

// ConsumerProgress prints, per queue, the broker and consumer offsets and
// the lag (Diff) of a group.
func (a *Admin) ConsumerProgress(group, topic string) error {
	if group == "" {
		return errors.New("-g group is required")
	}
	cs, err := a.consumeStats(group, topic)
	if err != nil {
		return err
	}
	a.printf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s  %s\n", "#Topic", "#Broker Name", "#QID", "#Broker Offset",
		"#Consumer Offset", "#Diff", "#LastTime")
	var total int64
	for _, mq := range sortedMQs(cs.OffsetTable) {
		w := cs.OffsetTable[mq]
		diff := w.BrokerOffset - w.ConsumerOffset
		total += diff
		last := "N/A"
		if w.LastTimestamp > 0 {
			last = formatMillis(w.LastTimestamp)
		}
		a.printf("%-64s  %-32s  %-4d  %-20d  %-20d  %-20d  %s\n", mq.Topic, mq.BrokerName, mq.QueueID,
			w.BrokerOffset, w.ConsumerOffset, diff, last)
	}
	a.printf("\nConsume TPS: %.2f\nDiff Total: %d\n", cs.ConsumeTps, total)
	return nil
}

// consumerConnection is the ConsumerConnection body.
type consumerConnection struct {
	ConnectionSet     []protocol.Connection                `json:"connectionSet"`
	ConsumeFromWhere  string                               `json:"consumeFromWhere"`
	ConsumeType       string                               `json:"consumeType"`
	MessageModel      string                               `json:"messageModel"`
	SubscriptionTable map[string]protocol.SubscriptionData `json:"subscriptionTable"`
}

func (a *Admin) consumerConnection(group string) (*consumerConnection, error) {
	ts, err := a.topicMasters("%RETRY%" + group)
	if err != nil {
		return nil, fmt.Errorf("group %q has no route (never consumed?): %w", group, err)
	}
	var errs []error
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.GetConsumerConnectionList,
			&protocol.ConsumerGroupHeader{ConsumerGroup: group}))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var cc consumerConnection
		if err := json.Unmarshal(resp.Body, &cc); err != nil {
			return nil, fmt.Errorf("consumer connection from %s: %w", t.addr, err)
		}
		return &cc, nil
	}
	return nil, errors.Join(errs...)
}

// ConsumerConnection prints a group's live clients and subscriptions.
func (a *Admin) ConsumerConnection(group string) error {
	cc, err := a.consumerConnection(group)
	if err != nil {
		return err
	}
	a.printf("%-3s  %-36s %-22s %-8s %s\n", "#", "#ClientId", "#ClientAddr", "#Language", "#Version")
	for i, c := range cc.ConnectionSet {
		a.printf("%03d  %-36s %-22s %-8s %d\n", i+1, c.ClientID, c.ClientAddr, c.Language, c.Version)
	}
	a.printf("\nBelow is subscription:\n")
	for i, topic := range sortedKeys(cc.SubscriptionTable) {
		a.printf("%03d  Topic: %-40s SubExpression: %s\n", i+1, topic, cc.SubscriptionTable[topic].SubString)
	}
	a.printf("\nConsumeType: %s\nMessageModel: %s\nConsumeFromWhere: %s\n", cc.ConsumeType, cc.MessageModel, cc.ConsumeFromWhere)
	return nil
}

// ProducerConnection prints a producer group's live clients on the
// brokers of topic.
func (a *Admin) ProducerConnection(group, topic string) error {
	if group == "" || topic == "" {
		return errors.New("-g group and -t topic are required")
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	n := 0
	var errs []error
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.GetProducerConnectionList,
			&protocol.ProducerGroupHeader{ProducerGroup: group}))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var pc protocol.ProducerConnection
		if err := json.Unmarshal(resp.Body, &pc); err != nil {
			return fmt.Errorf("producer connection from %s: %w", t.addr, err)
		}
		for _, c := range pc.ConnectionSet {
			n++
			a.printf("%04d  %-36s %-22s %-8s %d\n", n, c.ClientID, c.ClientAddr, c.Language, c.Version)
		}
	}
	if n == 0 {
		return fmt.Errorf("producer group %q has no connection: %w", group, errors.Join(errs...))
	}
	return nil
}

// ParseTimestamp reads resetOffsetByTime's -s: "now", milliseconds, or
// yyyy-MM-dd#HH:mm:ss:SSS (local time).
func ParseTimestamp(s string) (int64, error) {
	if s == "now" {
		return nowMillis(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.ParseInLocation("2006-01-02#15:04:05:000", s, time.Local)
	if err != nil {
		return 0, fmt.Errorf("-s %q: want now, milliseconds or yyyy-MM-dd#HH:mm:ss:SSS", s)
	}
	return t.UnixMilli(), nil
}

// ResetOffsetByTime moves a group's offsets of topic to the first message
// stored at or after timestamp, on every broker of the topic. Live
// consumers are told by the broker; with none online the offsets are
// committed directly (Java's resetOffsetByTimestampOld).
func (a *Admin) ResetOffsetByTime(group, topic string, timestamp int64, force bool) error {
	if group == "" || topic == "" {
		return errors.New("-g group and -t topic are required")
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	a.printf("rollback consumer offset by specified group[%s], topic[%s], force[%t], timestamp(string)[%s], timestamp(long)[%d]\n",
		group, topic, force, formatMillis(timestamp), timestamp)
	a.printf("%-40s  %-40s  %-40s\n", "#brokerName", "#queueId", "#offset")
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.InvokeBrokerToResetOffset,
			&protocol.ResetOffsetRequestHeader{Topic: topic, Group: group, Timestamp: timestamp, IsForce: force}),
			protocol.ResponseConsumerNotOnline)
		if err != nil {
			return err
		}
		var table map[protocol.MessageQueue]int64
		if resp.Code == protocol.ResponseConsumerNotOnline {
			if table, err = a.resetOffline(t, group, topic, timestamp, force); err != nil {
				return err
			}
		} else {
			body, err := protocol.DecodeResetOffsetBody(resp.Body)
			if err != nil {
				return fmt.Errorf("reset offset body from %s: %w", t.addr, err)
			}
			table = body.OffsetTable
		}
		for _, mq := range sortedMQs(table) {
			a.printf("%-40s  %-40d  %-40d\n", mq.BrokerName, mq.QueueID, table[mq])
		}
	}
	return nil
}

// resetOffline computes and commits the offsets of an offline group.
func (a *Admin) resetOffline(t target, group, topic string, timestamp int64, force bool) (map[protocol.MessageQueue]int64, error) {
	resp, err := a.call(t.addr, protocol.NewRequest(protocol.GetTopicStatsInfo, &protocol.TopicRequestHeader{Topic: topic}))
	if err != nil {
		return nil, err
	}
	st, err := protocol.DecodeTopicStatsTable(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[protocol.MessageQueue]int64{}
	for mq := range st.OffsetTable {
		r, err := a.call(t.addr, protocol.NewRequest(protocol.SearchOffsetByTimestamp,
			&protocol.SearchOffsetRequestHeader{Topic: topic, QueueID: mq.QueueID, Timestamp: timestamp}))
		if err != nil {
			return nil, err
		}
		target, _ := strconv.ParseInt(r.Ext("offset"), 10, 64)
		if !force {
			q, err := a.call(t.addr, protocol.NewRequest(protocol.QueryConsumerOffset,
				&protocol.QueryConsumerOffsetRequestHeader{ConsumerGroup: group, Topic: topic, QueueID: mq.QueueID}),
				protocol.ResponseQueryNotFound)
			if err != nil {
				return nil, err
			}
			if cur, err := strconv.ParseInt(q.Ext("offset"), 10, 64); err == nil && q.Code == protocol.ResponseSuccess && target >= cur {
				target = cur
			}
		}
		_, err = a.call(t.addr, protocol.NewRequest(protocol.UpdateConsumerOffset, &protocol.UpdateConsumerOffsetRequestHeader{
			ConsumerGroup: group, Topic: topic, QueueID: mq.QueueID, CommitOffset: target}))
		if err != nil {
			return nil, err
		}
		out[mq] = target
	}
	return out, nil
}

// CloneGroupOffset copies srcGroup's offsets of topic to destGroup on
// every broker of the topic.
func (a *Admin) CloneGroupOffset(src, dest, topic string, offline bool) error {
	if src == "" || dest == "" || topic == "" {
		return errors.New("-s source group, -d destination group and -t topic are required")
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	for _, t := range ts {
		_, err := a.call(t.addr, protocol.NewRequest(protocol.CloneGroupOffset, &protocol.CloneGroupOffsetRequestHeader{
			SrcGroup: src, DestGroup: dest, Topic: topic, Offline: offline}))
		if err != nil {
			return err
		}
	}
	a.printf("clone group offset success. srcGroup[%s], destGroup=[%s], topic[%s]\n", src, dest, topic)
	return nil
}

// ConsumerStatus prints each live consumer's offsets of topic, as the
// clients report them.
func (a *Admin) ConsumerStatus(group, topic string) error {
	if group == "" || topic == "" {
		return errors.New("-g group and -t topic are required")
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	a.printf("%-36s  %-32s  %-4s  %s\n", "#ClientId", "#Broker Name", "#QID", "#Offset")
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.InvokeBrokerToGetConsumerStatus,
			&protocol.GetConsumerStatusRequestHeader{Topic: topic, Group: group}))
		if err != nil {
			return err
		}
		st, err := protocol.DecodeGetConsumerStatusBody(resp.Body)
		if err != nil {
			return err
		}
		for _, id := range sortedKeys(st.ConsumerTable) {
			for _, mq := range sortedMQs(st.ConsumerTable[id]) {
				a.printf("%-36s  %-32s  %-4d  %d\n", id, mq.BrokerName, mq.QueueID, st.ConsumerTable[id][mq])
			}
		}
	}
	return nil
}

// BrokerConsumeStats prints every online group's lag per queue on one
// broker, then the broker's total lag.
func (a *Admin) BrokerConsumeStats(brokerAddr string, isOrder bool) error {
	if brokerAddr == "" {
		return errors.New("-b broker address is required")
	}
	resp, err := a.call(brokerAddr, protocol.NewRequest(protocol.GetBrokerConsumeStats,
		&protocol.GetConsumeStatsInBrokerHeader{IsOrder: isOrder}))
	if err != nil {
		return err
	}
	l, err := protocol.DecodeConsumeStatsList(resp.Body)
	if err != nil {
		return fmt.Errorf("broker consume stats from %s: %w", brokerAddr, err)
	}
	a.printf("%-64s  %-64s  %-32s  %-4s  %-20s  %-20s  %-20s  %s\n", "#Topic", "#Group", "#Broker Name", "#QID",
		"#Broker Offset", "#Consumer Offset", "#Diff", "#LastTime")
	for _, g := range l.Groups {
		for _, cs := range g.Stats {
			for _, mq := range sortedMQs(cs.OffsetTable) {
				w := cs.OffsetTable[mq]
				last := "N/A"
				if w.LastTimestamp > 0 {
					last = formatMillis(w.LastTimestamp)
				}
				a.printf("%-64s  %-64s  %-32s  %-4d  %-20d  %-20d  %-20d  %s\n", mq.Topic, g.Group, mq.BrokerName, mq.QueueID,
					w.BrokerOffset, w.ConsumerOffset, w.BrokerOffset-w.ConsumerOffset, last)
			}
		}
	}
	a.printf("\nDiff Total: %d\n", l.TotalDiff)
	return nil
}
