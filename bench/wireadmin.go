package bench

// Control-plane requests of mqbench, over the remoting client: topic route
// (105), cluster info (106), topic creation (17), heartbeat (34) and queue
// offsets (30/31).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// defaultTopicKey is the auto-create template topic (Java's TopicConfigManager (TBW102)).
const defaultTopicKey = "TBW102"

// brokerQueue is one queue of a topic on one broker (master address).
type brokerQueue struct {
	broker string // brokerName
	addr   string
	queue  int32
}

type wireAdmin struct {
	cfg  *WireConfig
	pool *remoting.Pool
}

func newWireAdmin(cfg *WireConfig) *wireAdmin {
	return &wireAdmin{cfg: cfg, pool: remoting.NewPool(remoting.ClientConfig{DialTimeout: 3 * time.Second})}
}

func (a *wireAdmin) close() { a.pool.Close() }

func (a *wireAdmin) logf(format string, args ...any) { fmt.Fprintf(a.cfg.Log, format+"\n", args...) }

// invoke sends cmd to addr with a timeout.
func (a *wireAdmin) invoke(ctx context.Context, addr string, cmd *protocol.Command, timeout time.Duration) (*protocol.Command, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return a.pool.Invoke(ctx, addr, cmd)
}

// errTopicNotExist reports that every nameserver answered TOPIC_NOT_EXIST.
var errTopicNotExist = errors.New("topic not found on the nameserver")

// route asks each nameserver in turn for the topic's route.
func (a *wireAdmin) route(ctx context.Context, topic string) (*protocol.TopicRouteData, error) {
	var last error = errTopicNotExist
	for _, ns := range a.cfg.Namesrv {
		resp, err := a.invoke(ctx, ns, protocol.NewRequest(protocol.GetRouteInfoByTopic,
			&protocol.GetRouteInfoRequestHeader{Topic: topic}), 6*time.Second)
		switch {
		case err != nil:
			last = fmt.Errorf("nameserver %s: %w", ns, err)
		case resp.Code == protocol.ResponseTopicNotExist:
			last = errTopicNotExist
		case resp.Code != protocol.ResponseSuccess:
			last = fmt.Errorf("nameserver %s: route of %s: %s %s", ns, topic, protocol.ResponseCodeName(resp.Code), resp.Remark)
		default:
			r, err := protocol.DecodeTopicRouteData(resp.Body)
			if err != nil {
				return nil, fmt.Errorf("nameserver %s: route of %s: %w", ns, topic, err)
			}
			return r, nil
		}
	}
	return nil, last
}

// routeQueues lists the master-hosted queues of a route: write queues
// (perm has WRITE) or read queues (perm has READ), sorted.
func routeQueues(r *protocol.TopicRouteData, write bool) []brokerQueue {
	masters := map[string]string{}
	for i := range r.BrokerDatas {
		if addr := r.BrokerDatas[i].MasterAddr(); addr != "" {
			masters[r.BrokerDatas[i].BrokerName] = addr
		}
	}
	var out []brokerQueue
	for _, q := range r.QueueDatas {
		addr, ok := masters[q.BrokerName]
		n, perm := q.ReadQueueNums, protocol.PermRead
		if write {
			n, perm = q.WriteQueueNums, protocol.PermWrite
		}
		if !ok || q.Perm&perm == 0 {
			continue
		}
		for id := range n {
			out = append(out, brokerQueue{broker: q.BrokerName, addr: addr, queue: id})
		}
	}
	slices.SortFunc(out, func(x, y brokerQueue) int {
		if x.broker != y.broker {
			if x.broker < y.broker {
				return -1
			}
			return 1
		}
		return int(x.queue - y.queue)
	})
	return out
}

// masterAddrs are the master addresses able to create a topic: those in
// TBW102's route, else every master of GET_BROKER_CLUSTER_INFO.
func (a *wireAdmin) masterAddrs(ctx context.Context) ([]string, error) {
	set := map[string]bool{}
	if r, err := a.route(ctx, defaultTopicKey); err == nil {
		for i := range r.BrokerDatas {
			if addr := r.BrokerDatas[i].MasterAddr(); addr != "" {
				set[addr] = true
			}
		}
	}
	if len(set) == 0 {
		for _, ns := range a.cfg.Namesrv {
			resp, err := a.invoke(ctx, ns, protocol.NewRequest(protocol.GetBrokerClusterInfo, nil), 6*time.Second)
			if err != nil || resp.Code != protocol.ResponseSuccess {
				continue
			}
			ci, err := protocol.DecodeClusterInfo(resp.Body)
			if err != nil {
				continue
			}
			for _, bd := range ci.BrokerAddrTable {
				if addr := bd.MasterAddr(); addr != "" {
					set[addr] = true
				}
			}
			break
		}
	}
	if len(set) == 0 {
		return nil, errors.New("no broker found: neither TBW102's route nor the cluster info names a master")
	}
	out := make([]string, 0, len(set))
	for addr := range set {
		out = append(out, addr)
	}
	slices.Sort(out)
	return out, nil
}

// ensureTopic is ensureTopicNamed of the configured topic.
func (a *wireAdmin) ensureTopic(ctx context.Context) (*protocol.TopicRouteData, error) {
	return a.ensureTopicNamed(ctx, a.cfg.Topic)
}

// ensureTopicNamed returns the topic's route, creating the topic on every
// master (UPDATE_AND_CREATE_TOPIC) when the nameserver does not know it,
// then waiting up to 15 s for the route to appear.
func (a *wireAdmin) ensureTopicNamed(ctx context.Context, topic string) (*protocol.TopicRouteData, error) {
	r, err := a.route(ctx, topic)
	if err == nil && len(routeQueues(r, true)) > 0 {
		return r, nil
	}
	if err != nil && !errors.Is(err, errTopicNotExist) {
		return nil, err
	}
	addrs, err := a.masterAddrs(ctx)
	if err != nil {
		return nil, err
	}
	for _, addr := range addrs {
		if err := a.createTopic(ctx, addr, topic); err != nil {
			return nil, err
		}
		a.logf("created topic %s with %d queues on %s", topic, a.cfg.Queues, addr)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := a.route(ctx, topic)
		if err == nil && len(routeQueues(r, true)) > 0 {
			return r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("topic %s created but its route did not appear within 15 s (last: %v)", topic, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// createTopic creates (or updates) topic on the broker at addr with
// cfg.Queues read and write queues (UPDATE_AND_CREATE_TOPIC).
func (a *wireAdmin) createTopic(ctx context.Context, addr, topic string) error {
	n := int32(a.cfg.Queues)
	resp, err := a.invoke(ctx, addr, protocol.NewRequest(protocol.UpdateAndCreateTopic, &protocol.CreateTopicRequestHeader{
		Topic: topic, DefaultTopic: defaultTopicKey, ReadQueueNums: n, WriteQueueNums: n,
		Perm: protocol.PermRead | protocol.PermWrite, TopicFilterType: protocol.TopicFilterSingleTag,
	}), 6*time.Second)
	if err != nil {
		return fmt.Errorf("create topic %s on %s: %w", topic, addr, err)
	}
	if resp.Code != protocol.ResponseSuccess {
		return fmt.Errorf("create topic %s on %s: %s %s", topic, addr, protocol.ResponseCodeName(resp.Code), resp.Remark)
	}
	return nil
}

// clientID is the heartbeat client id: ip@instance, like the clients.
func clientID() string { return "127.0.0.1@mqbench-" + strconv.Itoa(os.Getpid()) }

// heartbeat registers the producer group and/or the consumer group with
// its subscription to the topic (and to its retry topic, as clients do).
func (a *wireAdmin) heartbeat(ctx context.Context, addr string, producer, consumer bool) error {
	hb := &protocol.HeartbeatData{ClientID: clientID(), ProducerDataSet: []protocol.ProducerData{}, ConsumerDataSet: []protocol.ConsumerData{}}
	if producer {
		hb.ProducerDataSet = append(hb.ProducerDataSet, protocol.ProducerData{GroupName: a.cfg.ProducerGroup})
	}
	if consumer {
		sub := func(topic string) protocol.SubscriptionData {
			return protocol.SubscriptionData{Topic: topic, SubString: protocol.SubAll, TagsSet: []string{},
				CodeSet: protocol.CodeSet{}, SubVersion: time.Now().UnixNano(), ExpressionType: protocol.ExpressionTypeTag}
		}
		from := protocol.ConsumeFromLastOffset
		if a.cfg.FromFirst {
			from = protocol.ConsumeFromFirstOffset
		}
		hb.ConsumerDataSet = append(hb.ConsumerDataSet, protocol.ConsumerData{
			GroupName: a.cfg.ConsumerGroup, ConsumeType: protocol.ConsumeTypePassively,
			MessageModel: protocol.MessageModelClustering, ConsumeFromWhere: from,
			SubscriptionDataSet: []protocol.SubscriptionData{sub(a.cfg.Topic), sub("%RETRY%" + a.cfg.ConsumerGroup)},
		})
	}
	body, err := hb.Encode()
	if err != nil {
		return err
	}
	cmd := protocol.NewRequest(protocol.HeartBeat, nil)
	cmd.Body = body
	resp, err := a.invoke(ctx, addr, cmd, 3*time.Second)
	if err != nil {
		return fmt.Errorf("heartbeat to %s: %w", addr, err)
	}
	if resp.Code != protocol.ResponseSuccess {
		return fmt.Errorf("heartbeat to %s: %s %s", addr, protocol.ResponseCodeName(resp.Code), resp.Remark)
	}
	return nil
}

// queueOffset asks a broker for a queue's max (GET_MAX_OFFSET) or min
// (GET_MIN_OFFSET) logical offset.
func (a *wireAdmin) queueOffset(ctx context.Context, q brokerQueue, max bool) (int64, error) {
	code := protocol.GetMinOffset
	if max {
		code = protocol.GetMaxOffset
	}
	resp, err := a.invoke(ctx, q.addr, protocol.NewRequest(code,
		&protocol.TopicQueueRequestHeader{Topic: a.cfg.Topic, QueueID: q.queue}), 3*time.Second)
	if err != nil {
		return 0, err
	}
	var h protocol.OffsetResponseHeader
	if err := h.Decode(resp.ExtFields); err != nil {
		return 0, fmt.Errorf("%s: %s %s", protocol.RequestCodeName(code), protocol.ResponseCodeName(resp.Code), resp.Remark)
	}
	return h.Offset, nil
}
