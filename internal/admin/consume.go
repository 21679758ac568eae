package admin

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
)

// queueOf is one queue of a topic on a master.
type queueOf struct {
	t  target
	id int32
}

// topicQueues lists the read queues of topic, optionally on one broker.
func (a *Admin) topicQueues(topic, brokerName string) ([]queueOf, error) {
	r, err := a.Route(topic)
	if err != nil {
		return nil, err
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return nil, err
	}
	var out []queueOf
	for _, t := range ts {
		if brokerName != "" && t.name != brokerName {
			continue
		}
		for _, q := range r.QueueDatas {
			if q.BrokerName == t.name {
				for i := int32(0); i < q.ReadQueueNums; i++ {
					out = append(out, queueOf{t, i})
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %q has no readable queue on %s", topic, orAny(brokerName))
	}
	return out, nil
}

// pull reads up to max messages of a queue from offset without a
// consumer group's state; it returns the messages and the next offset.
func (a *Admin) pull(q queueOf, topic, group, subExpr string, offset int64, max int32) ([]message.View, int64, error) {
	resp, err := a.call(q.t.addr, protocol.NewRequest(protocol.PullMessage, &protocol.PullMessageRequestHeader{
		ConsumerGroup: group, Topic: topic, QueueID: q.id, QueueOffset: offset, MaxMsgNums: max,
		SysFlag: protocol.PullFlagSubscription, ExpressionType: protocol.ExpressionTypeTag, Subscription: subExpr}),
		protocol.ResponsePullNotFound, protocol.ResponsePullOffsetMoved, protocol.ResponsePullRetryImmediately)
	if err != nil {
		return nil, offset, err
	}
	next := offset
	if v := resp.Ext("nextBeginOffset"); v != "" {
		fmt.Sscan(v, &next)
	}
	var out []message.View
	err = eachRecord(resp.Body, q.t.addr, func(v *message.View) { out = append(out, *v) })
	return out, next, err
}

// ConsumeOptions are consumeMessage's and printMsg's options.
type ConsumeOptions struct {
	Topic, BrokerName, Group, SubExpression string
	QueueID                                 int32 // -1: every queue
	Offset                                  int64 // -1: from each queue's min offset
	Begin, End                              int64 // store-time window, ms (0: open)
	Count                                   int   // stop after this many (0: all)
}

// ConsumeMessage prints the messages of a topic's queues (all or one),
// from an offset or the queue start, within a store-time window.
func (a *Admin) ConsumeMessage(o ConsumeOptions) error {
	if o.Topic == "" {
		return errors.New("-t topic is required")
	}
	qs, err := a.topicQueues(o.Topic, o.BrokerName)
	if err != nil {
		return err
	}
	if o.Group == "" {
		o.Group = "TOOLS_CONSUMER"
	}
	if o.SubExpression == "" {
		o.SubExpression = "*"
	}
	end := o.End
	if end == 0 {
		end = math.MaxInt64
	}
	printed := 0
	for _, q := range qs {
		if o.QueueID >= 0 && q.id != o.QueueID {
			continue
		}
		off := max(o.Offset, 0)
		for {
			msgs, next, err := a.pull(q, o.Topic, o.Group, o.SubExpression, off, 32)
			if err != nil {
				return err
			}
			for i := range msgs {
				v := &msgs[i]
				if v.StoreTimestamp < o.Begin || v.StoreTimestamp > end {
					continue
				}
				a.printf("MSGID: %s %s BODY: %s\n", message.OffsetMsgID(v.StoreHost(), v.PhysOffset),
					describe(v), string(v.Body))
				if printed++; o.Count > 0 && printed >= o.Count {
					return nil
				}
			}
			if next <= off || len(msgs) == 0 && next == off {
				break
			}
			off = next
		}
	}
	if printed == 0 {
		a.printf("no message in %s within the given range\n", o.Topic)
	}
	return nil
}

func describe(v *message.View) string {
	tags, _ := v.Property(message.PropTags)
	keys, _ := v.Property(message.PropKeys)
	return fmt.Sprintf("[queueId=%d, queueOffset=%d, storeTimestamp=%s, tags=%s, keys=%s]",
		v.QueueID, v.QueueOffset, formatMillis(v.StoreTimestamp), tags, keys)
}

// QueryMsgByUniqueKey prints the message(s) whose UNIQ_KEY (the client's
// msgId) is id.
func (a *Admin) QueryMsgByUniqueKey(topic, id string) error {
	if topic == "" || id == "" {
		return errors.New("-t topic and -i unique key are required")
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	found := 0
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.QueryMessage, &protocol.QueryMessageRequestHeader{
			Topic: topic, Key: id, MaxNum: 32, EndTimestamp: math.MaxInt64, UniqueKeyQuery: true}), protocol.ResponseQueryNotFound)
		if err != nil {
			return err
		}
		err = eachRecord(resp.Body, t.addr, func(v *message.View) {
			a.printMessage(message.OffsetMsgID(v.StoreHost(), v.PhysOffset), v)
			found++
		})
		if err != nil {
			return err
		}
	}
	if found == 0 {
		return fmt.Errorf("no message with unique key %s in topic %s", id, topic)
	}
	return nil
}

// CheckMsgSendRT sends amount messages of size bytes and prints each
// round trip and the average.
func (a *Admin) CheckMsgSendRT(topic string, amount, size int) error {
	if topic == "" || amount <= 0 || size <= 0 || size > 4<<20 {
		return fmt.Errorf("-t topic, -a amount > 0 and -s size in (0, 4 MiB] are required (got %d, %d)", amount, size)
	}
	body := strings.Repeat("a", size)
	a.printf("%-32s  %-4s  %-20s    %s\n", "#Broker Name", "#QID", "#Send Result", "#RT")
	var total time.Duration
	for i := 0; i < amount; i++ {
		began := time.Now()
		out := a.Out
		a.Out = discard{}
		err := a.SendMessage(SendOptions{Topic: topic, Body: body, QueueID: -1})
		a.Out = out
		rt := time.Since(began)
		if err != nil {
			return fmt.Errorf("send %d of %d: %w", i+1, amount, err)
		}
		total += rt
		a.printf("%-32s  %-4s  %-20s    %d\n", topic, "-", "true", rt.Milliseconds())
	}
	a.printf("Avg RT: %.2f\n", float64(total.Microseconds())/1000/float64(amount))
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// AllocateMQ prints the averaging allocation of topic's queues among the
// given client ids (AllocateMessageQueueAveragely).
func (a *Admin) AllocateMQ(topic string, clients []string) error {
	if topic == "" || len(clients) == 0 {
		return errors.New("-t topic and -i client id list are required")
	}
	qs, err := a.topicQueues(topic, "")
	if err != nil {
		return err
	}
	sort.Slice(qs, func(i, j int) bool {
		if qs[i].t.name != qs[j].t.name {
			return qs[i].t.name < qs[j].t.name
		}
		return qs[i].id < qs[j].id
	})
	sort.Strings(clients)
	n, m := len(qs), len(clients)
	for idx, c := range clients {
		mod := n % m
		size := n / m
		if idx < mod {
			size++
		}
		start := idx*size + mod
		if idx < mod {
			start = idx * size
		}
		var own []string
		for i := 0; i < size && start+i < n; i++ {
			q := qs[start+i]
			own = append(own, fmt.Sprintf("%s:%d", q.t.name, q.id))
		}
		a.printf("%-36s %s\n", c, strings.Join(own, ", "))
	}
	return nil
}

// ClusterRT sends amount messages of size bytes to every broker of each
// cluster (through the topic named after the cluster) and prints the
// average round trip and the successes and failures.
func (a *Admin) ClusterRT(cluster string, amount, size int) error {
	if amount <= 0 || size <= 0 || size > 4<<20 {
		return fmt.Errorf("-a amount > 0 and -s size in (0, 4 MiB] are required (got %d, %d)", amount, size)
	}
	ci, err := a.ClusterInfo()
	if err != nil {
		return err
	}
	body := strings.Repeat("a", size)
	a.printf("%-24s  %-24s  %-8s  %-14s  %s\n", "#Cluster Name", "#Broker Name", "#RT", "#successCount", "#failCount")
	for _, cn := range sortedKeys(ci.ClusterAddrTable) {
		if cluster != "" && cn != cluster {
			continue
		}
		names := append([]string(nil), ci.ClusterAddrTable[cn]...)
		sort.Strings(names)
		for _, bn := range names {
			var ok, failed int
			var total time.Duration
			for i := 0; i < amount; i++ {
				began := time.Now()
				out := a.Out
				a.Out = discard{}
				err := a.SendMessage(SendOptions{Topic: cn, Body: body, BrokerName: bn, QueueID: -1})
				a.Out = out
				if err != nil {
					failed++
					continue
				}
				ok++
				total += time.Since(began)
			}
			rt := 0.0
			if ok > 0 {
				rt = float64(total.Microseconds()) / 1000 / float64(ok)
			}
			a.printf("%-24s  %-24s  %-8.2f  %-14d  %d\n", cn, bn, rt, ok, failed)
		}
	}
	return nil
}
