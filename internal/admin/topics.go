package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// TopicOptions are updateTopic's options (-r -w -p -o).
type TopicOptions struct {
	Topic          string
	ReadQueueNums  int32
	WriteQueueNums int32
	Perm           int32
	Order          bool
}

// UpdateTopic creates or updates a topic on one broker (-b) or on every
// master of a cluster (-c).
func (a *Admin) UpdateTopic(brokerAddr, cluster string, o TopicOptions) error {
	if o.Topic == "" {
		return errors.New("-t topic is required")
	}
	ts, err := a.masters(brokerAddr, cluster)
	if err != nil {
		return err
	}
	for _, t := range ts {
		_, err := a.call(t.addr, protocol.NewRequest(protocol.UpdateAndCreateTopic, &protocol.CreateTopicRequestHeader{
			Topic: o.Topic, DefaultTopic: "TBW102", ReadQueueNums: o.ReadQueueNums, WriteQueueNums: o.WriteQueueNums,
			Perm: o.Perm, TopicFilterType: protocol.TopicFilterSingleTag, Order: o.Order}))
		if err != nil {
			return fmt.Errorf("create topic %q on %s: %w", o.Topic, t.addr, err)
		}
		a.printf("create topic to %s success.\n", t.addr)
	}
	a.printf("TopicConfig [topicName=%s, readQueueNums=%d, writeQueueNums=%d, perm=%s, order=%t]\n",
		o.Topic, o.ReadQueueNums, o.WriteQueueNums, permString(o.Perm), o.Order)
	return nil
}

// permString is PermName.perm2String: R, W and X flags.
func permString(p int32) string {
	s := []byte("---")
	if p&protocol.PermRead != 0 {
		s[0] = 'R'
	}
	if p&protocol.PermWrite != 0 {
		s[1] = 'W'
	}
	if p&protocol.PermInherit != 0 {
		s[2] = 'X'
	}
	return string(s)
}

// UpdateTopicPerm changes a topic's permission on the brokers of its route
// (or one broker, -b), keeping its queue numbers.
func (a *Admin) UpdateTopicPerm(brokerAddr, cluster, topic string, perm int32) error {
	if perm != 2 && perm != 4 && perm != 6 {
		return fmt.Errorf("-p %d: perm must be 2 (W), 4 (R) or 6 (RW)", perm)
	}
	r, err := a.Route(topic)
	if err != nil {
		return err
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if (brokerAddr != "" && t.addr != brokerAddr) || (cluster != "" && t.cluster != cluster) {
			continue
		}
		for _, q := range r.QueueDatas {
			if q.BrokerName != t.name {
				continue
			}
			if err := a.UpdateTopic(t.addr, "", TopicOptions{Topic: topic, ReadQueueNums: q.ReadQueueNums,
				WriteQueueNums: q.WriteQueueNums, Perm: perm}); err != nil {
				return err
			}
			a.printf("update topic perm from %d to %d in %s success.\n", q.Perm, perm, t.addr)
		}
	}
	return nil
}

// DeleteTopic deletes a topic from every master of the cluster, then from
// the nameservers.
func (a *Admin) DeleteTopic(cluster, topic string) error {
	if topic == "" {
		return errors.New("-t topic is required")
	}
	ts, err := a.masters("", cluster)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if _, err := a.call(t.addr, protocol.NewRequest(protocol.DeleteTopicInBroker, &protocol.TopicRequestHeader{Topic: topic})); err != nil {
			return fmt.Errorf("delete topic %q from broker %s: %w", topic, t.addr, err)
		}
	}
	a.printf("delete topic [%s] from cluster [%s] success.\n", topic, cluster)
	err = a.eachNamesrv(func() *protocol.Command {
		return protocol.NewRequest(protocol.DeleteTopicInNamesrv, &protocol.DeleteTopicFromNamesrvRequestHeader{Topic: topic})
	}, nil)
	if err != nil {
		return fmt.Errorf("delete topic %q from the nameserver: %w", topic, err)
	}
	a.printf("delete topic [%s] from NameServer success.\n", topic)
	return nil
}

// TopicList prints every topic; with clusters, the cluster and consumer
// groups of each.
func (a *Admin) TopicList(clusters bool) error {
	topics, err := a.allTopics()
	if err != nil {
		return err
	}
	if !clusters {
		for _, t := range topics {
			a.printf("%s\n", t)
		}
		return nil
	}
	a.printf("%-20s  %-48s  %-48s\n", "#Cluster Name", "#Topic", "#Consumer Group")
	for _, topic := range topics {
		ts, err := a.topicMasters(topic)
		if err != nil {
			continue // system topics without a route
		}
		groups := a.consumedBy(ts, topic)
		if len(groups) == 0 {
			groups = []string{""}
		}
		for _, g := range groups {
			a.printf("%-20s  %-48s  %-48s\n", ts[0].cluster, topic, g)
		}
	}
	return nil
}

// allTopics is GET_ALL_TOPIC_LIST_FROM_NAMESERVER, sorted.
func (a *Admin) allTopics() ([]string, error) {
	resp, err := a.callNamesrv(func() *protocol.Command {
		return protocol.NewRequest(protocol.GetAllTopicListFromNameserver, nil)
	})
	if err != nil {
		return nil, err
	}
	var tl protocol.TopicList
	if err := json.Unmarshal(resp.Body, &tl); err != nil {
		return nil, fmt.Errorf("topic list: %w", err)
	}
	sortStrings(tl.TopicList)
	return tl.TopicList, nil
}

// consumedBy is QUERY_TOPIC_CONSUME_BY_WHO over the topic's masters.
func (a *Admin) consumedBy(ts []target, topic string) []string {
	seen := map[string]bool{}
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.QueryTopicConsumeByWho, &protocol.TopicRequestHeader{Topic: topic}))
		if err != nil {
			continue
		}
		var gl protocol.GroupList
		if json.Unmarshal(resp.Body, &gl) == nil {
			for _, g := range gl.GroupList {
				seen[g] = true
			}
		}
	}
	return sortedKeys(seen)
}

// TopicRoute prints the topic's route as indented JSON.
func (a *Admin) TopicRoute(topic string) error {
	r, err := a.Route(topic)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(r.AppendJSON(nil), &v); err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	a.printf("%s\n", out)
	return nil
}

// TopicStatus prints min and max offsets and last update of every queue.
func (a *Admin) TopicStatus(topic string) error {
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	a.printf("%-32s  %-4s  %-20s  %-20s    %s\n", "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated")
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.GetTopicStatsInfo, &protocol.TopicRequestHeader{Topic: topic}))
		if err != nil {
			return err
		}
		st, err := protocol.DecodeTopicStatsTable(resp.Body)
		if err != nil {
			return fmt.Errorf("topic stats from %s: %w", t.addr, err)
		}
		for _, mq := range sortedMQs(st.OffsetTable) {
			o := st.OffsetTable[mq]
			last := ""
			if o.LastUpdateTimestamp > 0 {
				last = formatMillis(o.LastUpdateTimestamp)
			}
			a.printf("%-32s  %-4d  %-20d  %-20d    %s\n", mq.BrokerName, mq.QueueID, o.MinOffset, o.MaxOffset, last)
		}
	}
	return nil
}

// TopicClusterList prints the clusters a topic is on.
func (a *Admin) TopicClusterList(topic string) error {
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, t := range ts {
		seen[t.cluster] = true
	}
	for _, c := range sortedKeys(seen) {
		a.printf("%s\n", c)
	}
	return nil
}

// formatMillis is Java's UtilAll.timeMillisToHumanString2 shape.
func formatMillis(ms int64) string {
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05,000")
}
