package broker

// Limits on client input (issue 8). Every number and name a client sends
// is bounded before it sizes memory or state: names are validated before
// anything is created or persisted, queue numbers are capped wherever they
// are set, batches are counted and measured before their entries are
// built, and auto-creation of topics and groups stops at a cap. A refused
// request gets a RocketMQ response code with a remark naming the limit and
// its broker.conf key, and a warning line (at most one per limit per
// second, with the number suppressed).
//
// | key                                  | default | bounds                                   |
// |--------------------------------------|---------|------------------------------------------|
// | maxQueueNums                         | 1024    | topic read/write queues, retryQueueNums  |
// | autoCreateTopicMaxCount              | 10000   | topics when auto-creating one            |
// | autoCreateSubscriptionGroupMaxCount  | 10000   | groups when auto-creating one            |
// | maxBatchMessageNums                  | 10000   | entries of one SEND_BATCH_MESSAGE        |
// | maxBatchPropertiesBytes              | 4 MiB   | stored property bytes of one batch       |
// | compressedRegister                   | false   | zlib register body always (else > 4096 topics) |
// | maxProducerGroups                    | 10000   | producer groups registered by heartbeats |
// | maxProducerGroupsPerConnection       | 1000    | producer groups of one connection        |
// | maxQueryReplyBytes                   | 4 MiB   | records of one QUERY_MESSAGE reply       |
//
// Fixed rules (Java's): topic names at most 127 characters of
// [%|a-zA-Z0-9_-]; group names the same characters and at most 120, so
// that %RETRY%<group> is a valid topic; message properties at most 32767
// bytes (Short.MAX_VALUE).

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

const (
	defaultMaxQueueNums            = 1024
	defaultAutoCreateTopicMax      = 10000
	defaultAutoCreateGroupMax      = 10000
	defaultMaxBatchMessageNums     = 10000
	defaultMaxBatchPropertiesBytes = 4 << 20
	defaultMaxProducerGroups       = 10000
	defaultProducerGroupsPerConn   = 1000
	defaultMaxQueryReplyBytes      = 4 << 20
	// maxGroupNameLength keeps %RETRY%<group> within maxTopicNameLength.
	maxGroupNameLength = maxTopicNameLength - len(RetryGroupPrefix)
	// maxPropertiesLength is Java's limit on one message's properties.
	maxPropertiesLength = math.MaxInt16
	// clipLength bounds the part of a hostile name quoted in remarks and logs.
	clipLength = 64
)

func (c *Config) limitDefaults() {
	setDefault(&c.MaxQueueNums, defaultMaxQueueNums)
	setDefault(&c.AutoCreateTopicMaxCount, defaultAutoCreateTopicMax)
	setDefault(&c.AutoCreateSubscriptionGroupMaxCount, defaultAutoCreateGroupMax)
	setDefault(&c.MaxBatchMessageNums, defaultMaxBatchMessageNums)
	setDefault(&c.MaxBatchPropertiesBytes, defaultMaxBatchPropertiesBytes)
	setDefault(&c.MaxProducerGroups, defaultMaxProducerGroups)
	setDefault(&c.MaxProducerGroupsPerConnection, defaultProducerGroupsPerConn)
	setDefault(&c.MaxQueryReplyBytes, defaultMaxQueryReplyBytes)
}

func setDefault(p *int, v int) {
	if *p <= 0 {
		*p = v
	}
}

// applyLimitProperty parses the broker.conf keys of the limits; numbers
// must be positive.
func applyLimitProperty(c *Config, k, v string) (bool, error) {
	if k == "compressedRegister" {
		return true, setBool(&c.CompressedRegister, v)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return true, err
	}
	if n <= 0 {
		return true, fmt.Errorf("%s must be positive", k)
	}
	switch k {
	case "maxQueueNums":
		c.MaxQueueNums = n
	case "autoCreateTopicMaxCount":
		c.AutoCreateTopicMaxCount = n
	case "autoCreateSubscriptionGroupMaxCount":
		c.AutoCreateSubscriptionGroupMaxCount = n
	case "maxBatchMessageNums":
		c.MaxBatchMessageNums = n
	case "maxBatchPropertiesBytes":
		c.MaxBatchPropertiesBytes = n
	case "maxProducerGroups":
		c.MaxProducerGroups = n
	case "maxProducerGroupsPerConnection":
		c.MaxProducerGroupsPerConnection = n
	case "maxQueryReplyBytes":
		c.MaxQueryReplyBytes = n
	default:
		return false, nil
	}
	return true, nil
}

// ValidGroup checks a consumer or producer group name: Java clients'
// charset, and short enough for its retry topic.
func ValidGroup(group string) error {
	if group == "" || len(group) > maxGroupNameLength || !validChars(group) {
		return fmt.Errorf("the specified group %q is invalid: at most %d characters of [%%|a-zA-Z0-9_-]",
			clip(group), maxGroupNameLength)
	}
	return nil
}

// clip is at most clipLength bytes of s, with its length when longer.
func clip(s string) string {
	if len(s) <= clipLength {
		return s
	}
	return s[:clipLength] + fmt.Sprintf("...(%d bytes)", len(s))
}

// checkQueueNums checks queue numbers against maxQueueNums.
func (b *Broker) checkQueueNums(what string, nums ...int32) error {
	for _, n := range nums {
		if limit := b.conf().MaxQueueNums; n < 0 || int(n) > limit {
			return fmt.Errorf("%s %d out of range [0,%d] (maxQueueNums)", what, n, limit)
		}
	}
	return nil
}

// capQueues bounds a queue number taken from a stored config (one
// written before the limit existed) or a client default to
// [1, maxQueueNums].
func capQueues(n int32, maxQueues int) int32 {
	return min(max(n, 1), int32(min(maxQueues, math.MaxInt32)))
}

// errAutoCreateLimit is returned by auto-creation beyond its cap.
var errAutoCreateLimit = errors.New("auto-creation limit reached")

// refuse logs a hit limit (rate-bounded) and answers code with remark.
func (b *Broker) refuse(req *protocol.Command, limit string, code int16, remark string) *protocol.Command {
	b.limits.hit(b, limit, remark, req)
	return respond(req, code, remark)
}

// limitLog rate-bounds the warning lines of hit limits: one per limit per
// second, reporting how many were refused since the last.
type limitLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	hits map[string]int64
}

func (l *limitLog) hit(b *Broker, limit, remark string, req *protocol.Command) {
	now := time.Now()
	l.mu.Lock()
	if l.last == nil {
		l.last, l.hits = map[string]time.Time{}, map[string]int64{}
	}
	l.hits[limit]++
	n := l.hits[limit]
	due := now.Sub(l.last[limit]) >= time.Second
	if due {
		l.last[limit], l.hits[limit] = now, 0
	}
	l.mu.Unlock()
	if !due {
		return
	}
	code := int16(-1)
	if req != nil {
		code = req.Code
	}
	b.log.Warn("broker: client input refused", "limit", limit, "request", code, "remark", remark,
		"refusedSinceLastLine", n)
}

// groupConfig validates a group name from a request and returns its config
// (auto-created when allowed); on failure it returns the response:
// SYSTEM_ERROR for an invalid name (as Java answers an invalid topic),
// SUBSCRIPTION_GROUP_NOT_EXIST for an unknown group or one beyond
// autoCreateSubscriptionGroupMaxCount.
func (b *Broker) groupConfig(req *protocol.Command, group string) (protocol.SubscriptionGroupConfig, *protocol.Command) {
	if err := ValidGroup(group); err != nil {
		return protocol.SubscriptionGroupConfig{}, b.refuse(req, "groupName", protocol.ResponseSystemError, err.Error())
	}
	g, ok, err := b.groups.Get(group)
	switch {
	case errors.Is(err, errAutoCreateLimit):
		return g, b.refuse(req, "autoCreateSubscriptionGroupMaxCount", protocol.ResponseSubscriptionGroupNotExist,
			fmt.Sprintf("subscription group not exist, %s: autoCreateSubscriptionGroupMaxCount (%d) groups exist",
				group, b.conf().AutoCreateSubscriptionGroupMaxCount))
	case err != nil:
		return g, respond(req, protocol.ResponseSystemError, err.Error())
	case !ok:
		return g, respond(req, protocol.ResponseSubscriptionGroupNotExist, "subscription group not exist, "+group)
	}
	g.RetryQueueNums = min(g.RetryQueueNums, capQueues(g.RetryQueueNums, b.conf().MaxQueueNums))
	return g, nil
}

// createTopicFailed answers a failed auto-creation of topic: TOPIC_NOT_EXIST
// beyond autoCreateTopicMaxCount, SYSTEM_ERROR otherwise.
func (b *Broker) createTopicFailed(req *protocol.Command, topic string, err error) *protocol.Command {
	if errors.Is(err, errAutoCreateLimit) {
		return b.refuse(req, "autoCreateTopicMaxCount", protocol.ResponseTopicNotExist,
			fmt.Sprintf("topic[%s] not exist and not created: autoCreateTopicMaxCount (%d) topics exist",
				topic, b.conf().AutoCreateTopicMaxCount))
	}
	return respond(req, protocol.ResponseSystemError, "create topic "+clip(topic)+": "+err.Error())
}

// checkHeartbeatGroups validates every group name of a heartbeat (empty
// names are skipped by the handler, as Java skips them).
func checkHeartbeatGroups(hb *protocol.HeartbeatData) error {
	for _, c := range hb.ConsumerDataSet {
		if c.GroupName != "" {
			if err := ValidGroup(c.GroupName); err != nil {
				return err
			}
		}
	}
	for _, p := range hb.ProducerDataSet {
		if p.GroupName != "" {
			if err := ValidGroup(p.GroupName); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkOffsetTarget admits an offset commit only for a valid group (which
// exists or may be auto-created) and an existing topic and queue, so the
// offset table and its file hold nothing a client made up.
func (b *Broker) checkOffsetTarget(req *protocol.Command, group, topic string, queueID int32) *protocol.Command {
	if _, resp := b.groupConfig(req, group); resp != nil {
		return resp
	}
	tc, ok := b.topics.Get(topic)
	if !ok {
		return b.refuse(req, "offsetTopic", protocol.ResponseTopicNotExist,
			fmt.Sprintf("topic[%s] not exist, apply first please!", clip(topic)))
	}
	if n := max(tc.ReadQueueNums, tc.WriteQueueNums); queueID < 0 || queueID >= n {
		return b.refuse(req, "queueId", protocol.ResponseSystemError,
			fmt.Sprintf("queueId[%d] is illegal, topic:[%s] has %d queues", queueID, topic, n))
	}
	return nil
}

// ownQueues keeps the queues a lock request may hold: this broker's, of
// existing topics, with queue ids in range. Others are never locked (a
// Java broker locks anything; here the lock table stays bounded by the
// topic table).
func (b *Broker) ownQueues(mqs []protocol.MessageQueue) []protocol.MessageQueue {
	out := mqs[:0:0]
	for _, mq := range mqs {
		if mq.BrokerName != b.cfg.BrokerName {
			continue
		}
		if tc, ok := b.topics.Get(mq.Topic); ok && mq.QueueID >= 0 && mq.QueueID < max(tc.ReadQueueNums, tc.WriteQueueNums) {
			out = append(out, mq)
		}
	}
	return out
}
