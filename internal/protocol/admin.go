package protocol

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Admin family: UPDATE_AND_CREATE_TOPIC (17), DELETE_TOPIC_IN_BROKER (215),
// GET_TOPIC_STATS_INFO (202), GET_CONSUME_STATS (208), subscription group
// admin (200/201/207) and the MessageQueue-keyed bodies of 202/208/220/222
// — Java's AdminBrokerProcessor and ResetOffsetBody/ConsumeStats (fastjson MessageQueue keys). GET_CONSUMER_CONNECTION_LIST (203) uses
// ConsumerGroupHeader; 222/223 use ResetOffsetRequestHeader and
// GetConsumerStatusRequestHeader (consumer.go).

// CreateTopicRequestHeader is the header of code 17.
type CreateTopicRequestHeader struct {
	Topic           string // required
	DefaultTopic    string // required
	ReadQueueNums   int32  // required
	WriteQueueNums  int32  // required
	Perm            int32  // required
	TopicFilterType string // required: SINGLE_TAG / MULTI_TAG
	TopicSysFlag    int32  // optional
	Order           bool   // required
}

// Encode implements HeaderEncoder.
func (h *CreateTopicRequestHeader) Encode() map[string]string {
	w := newExt(8)
	w.str("topic", h.Topic)
	w.str("defaultTopic", h.DefaultTopic)
	w.i32("readQueueNums", h.ReadQueueNums)
	w.i32("writeQueueNums", h.WriteQueueNums)
	w.i32("perm", h.Perm)
	w.str("topicFilterType", h.TopicFilterType)
	w.i32("topicSysFlag", h.TopicSysFlag)
	w.boolean("order", h.Order)
	return w
}

// Decode implements the Java required-field rules.
func (h *CreateTopicRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = CreateTopicRequestHeader{
		Topic:           r.str("topic", true),
		DefaultTopic:    r.str("defaultTopic", true),
		ReadQueueNums:   r.i32("readQueueNums", true),
		WriteQueueNums:  r.i32("writeQueueNums", true),
		Perm:            r.i32("perm", true),
		TopicFilterType: r.str("topicFilterType", true),
		TopicSysFlag:    r.i32("topicSysFlag", false),
		Order:           r.boolean("order", true),
	}
	return r.err
}

// TopicRequestHeader is the {topic} header of codes 202 and 215.
type TopicRequestHeader struct {
	Topic string // required
}

// Aliases naming the requests that use TopicRequestHeader.
type (
	DeleteTopicRequestHeader            = TopicRequestHeader
	GetTopicStatsInfoRequestHeader      = TopicRequestHeader
	QueryTopicConsumeByWhoRequestHeader = TopicRequestHeader
)

// Encode implements HeaderEncoder.
func (h *TopicRequestHeader) Encode() map[string]string {
	return map[string]string{"topic": h.Topic}
}

// Decode requires topic.
func (h *TopicRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.Topic = r.str("topic", true)
	return r.err
}

// GetConsumeStatsRequestHeader is the header of code 208.
type GetConsumeStatsRequestHeader struct {
	ConsumerGroup string // required
	Topic         string // optional: blank = every topic with offsets
}

// Encode implements HeaderEncoder.
func (h *GetConsumeStatsRequestHeader) Encode() map[string]string {
	w := newExt(2)
	w.str("consumerGroup", h.ConsumerGroup)
	w.optStr("topic", h.Topic)
	return w
}

// Decode requires consumerGroup.
func (h *GetConsumeStatsRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = GetConsumeStatsRequestHeader{
		ConsumerGroup: r.str("consumerGroup", true),
		Topic:         r.str("topic", false),
	}
	return r.err
}

// DeleteSubscriptionGroupRequestHeader is the header of code 207.
type DeleteSubscriptionGroupRequestHeader struct {
	GroupName string // required
}

// Encode implements HeaderEncoder.
func (h *DeleteSubscriptionGroupRequestHeader) Encode() map[string]string {
	return map[string]string{"groupName": h.GroupName}
}

// Decode requires groupName.
func (h *DeleteSubscriptionGroupRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.GroupName = r.str("groupName", true)
	return r.err
}

// SubscriptionGroupConfig is one consumer group's broker-side settings
// (body of code 200; values of the code 201 response table).
type SubscriptionGroupConfig struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums                 int32  `json:"retryQueueNums"`
	RetryMaxTimes                  int32  `json:"retryMaxTimes"`
	BrokerID                       int64  `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
}

// NewSubscriptionGroupConfig returns a group config with the Java defaults.
func NewSubscriptionGroupConfig(group string) SubscriptionGroupConfig {
	return SubscriptionGroupConfig{
		GroupName: group, ConsumeEnable: true, ConsumeFromMinEnable: true,
		ConsumeBroadcastEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16,
		BrokerID: MasterID, WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIdsChangedEnable: true,
	}
}

// SubscriptionGroupWrapper is the body of a code 201 response. The Go
// admin client decodes it with encoding/json, so it must be standard JSON.
type SubscriptionGroupWrapper struct {
	SubscriptionGroupTable map[string]SubscriptionGroupConfig `json:"subscriptionGroupTable"`
	DataVersion            DataVersion                        `json:"dataVersion"`
}

// Encode marshals the wrapper; a nil table becomes {}.
func (w *SubscriptionGroupWrapper) Encode() ([]byte, error) {
	c := *w
	if c.SubscriptionGroupTable == nil {
		c.SubscriptionGroupTable = map[string]SubscriptionGroupConfig{}
	}
	return json.Marshal(&c)
}

// TopicOffset is one queue's entry in a TopicStatsTable.
type TopicOffset struct {
	MinOffset           int64 `json:"minOffset"`
	MaxOffset           int64 `json:"maxOffset"`
	LastUpdateTimestamp int64 `json:"lastUpdateTimestamp"`
}

// OffsetWrapper is one queue's entry in ConsumeStats.
type OffsetWrapper struct {
	BrokerOffset   int64 `json:"brokerOffset"`
	ConsumerOffset int64 `json:"consumerOffset"`
	LastTimestamp  int64 `json:"lastTimestamp"`
}

// TopicStatsTable is the body of a code 202 response.
type TopicStatsTable struct {
	OffsetTable map[MessageQueue]TopicOffset
}

// ConsumeStats is the body of a code 208 response.
type ConsumeStats struct {
	ConsumeTps  float64
	OffsetTable map[MessageQueue]OffsetWrapper
}

// ResetOffsetBody is the body of code 220 requests and 222 responses.
type ResetOffsetBody struct {
	OffsetTable map[MessageQueue]int64
}

// Encode writes the fastjson shape Java admin tools parse: MessageQueue
// objects as map keys ({"offsetTable":{{"brokerName":..}:{...}}}). This is
// not standard JSON; decode it with DecodeTopicStatsTable.
func (t *TopicStatsTable) Encode() []byte {
	return appendMQTable(append([]byte(nil), '{'), "offsetTable", t.OffsetTable, "}")
}

// Encode writes the fastjson MessageQueue-keyed shape (see TopicStatsTable).
func (c *ConsumeStats) Encode() []byte {
	dst := append([]byte(nil), `{"consumeTps":`...)
	dst = strconv.AppendFloat(dst, c.ConsumeTps, 'f', -1, 64)
	return appendMQTable(append(dst, ','), "offsetTable", c.OffsetTable, "}")
}

// Encode writes the fastjson MessageQueue-keyed shape, which the Go client
// also accepts (Java's ResetOffsetBody/ConsumeStats (fastjson MessageQueue keys)).
func (b *ResetOffsetBody) Encode() []byte {
	return appendMQTable(append([]byte(nil), '{'), "offsetTable", b.OffsetTable, "}")
}

// appendMQTable writes `"name":{<mq>:<v>,...}` + tail, queues sorted by
// topic, brokerName, queueId.
func appendMQTable[V any](dst []byte, name string, m map[MessageQueue]V, tail string) []byte {
	keys := make([]MessageQueue, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareMQ)
	dst = append(appendKey(dst, name), '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendStrField(append(dst, '{'), "brokerName", k.BrokerName)
		dst = appendIntField(append(dst, ','), "queueId", int64(k.QueueID))
		dst = appendStrField(append(dst, ','), "topic", k.Topic)
		v, _ := json.Marshal(m[k])
		dst = append(append(dst, "}:"...), v...)
	}
	return append(append(dst, '}'), tail...)
}

func compareMQ(a, b MessageQueue) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	if c := strings.Compare(a.BrokerName, b.BrokerName); c != 0 {
		return c
	}
	return int(a.QueueID) - int(b.QueueID)
}

// DecodeTopicStatsTable parses the MessageQueue-keyed code 202 body.
func DecodeTopicStatsTable(body []byte) (*TopicStatsTable, error) {
	t := &TopicStatsTable{OffsetTable: map[MessageQueue]TopicOffset{}}
	err := decodeMQTable(body, "offsetTable", func(mq MessageQueue, raw []byte) error {
		var v TopicOffset
		err := json.Unmarshal(raw, &v)
		t.OffsetTable[mq] = v
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// DecodeConsumeStats parses the MessageQueue-keyed code 208 body.
func DecodeConsumeStats(body []byte) (*ConsumeStats, error) {
	c := &ConsumeStats{OffsetTable: map[MessageQueue]OffsetWrapper{}}
	err := decodeMQTable(body, "offsetTable", func(mq MessageQueue, raw []byte) error {
		var v OffsetWrapper
		err := json.Unmarshal(raw, &v)
		c.OffsetTable[mq] = v
		return err
	})
	if err != nil {
		return nil, err
	}
	s := jsonScanner{b: body}
	if v, ok := topLevelMember(&s, "consumeTps"); ok {
		err = json.Unmarshal(v, &c.ConsumeTps)
	}
	return c, err
}

// DecodeResetOffsetBody parses the MessageQueue-keyed ResetOffsetBody.
func DecodeResetOffsetBody(body []byte) (*ResetOffsetBody, error) {
	b := &ResetOffsetBody{OffsetTable: map[MessageQueue]int64{}}
	err := decodeMQTable(body, "offsetTable", func(mq MessageQueue, raw []byte) error {
		v, ok := parseInt(raw, -1<<63, 1<<63-1)
		if !ok {
			return errors.New("bad offset " + strconv.Quote(string(raw)))
		}
		b.OffsetTable[mq] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// decodeMQTable calls fn for every <mq>:<value> member of the top-level
// member name, whose keys are MessageQueue objects.
func decodeMQTable(body []byte, name string, fn func(MessageQueue, []byte) error) error {
	s := jsonScanner{b: body}
	table, ok := topLevelMember(&s, name)
	if !ok {
		if s.i < 0 {
			return errors.New("malformed MessageQueue table body")
		}
		return nil
	}
	t := jsonScanner{b: table}
	if err := t.expect('{'); err != nil {
		return err
	}
	if t.consume('}') {
		return nil
	}
	for {
		mq, err := scanMQKey(&t)
		if err != nil {
			return err
		}
		raw, err := rawValue(&t)
		if err != nil {
			return err
		}
		if err := fn(mq, raw); err != nil {
			return err
		}
		if t.consume('}') {
			return nil
		}
		if err := t.expect(','); err != nil {
			return err
		}
	}
}

func scanMQKey(t *jsonScanner) (MessageQueue, error) {
	var mq MessageQueue
	raw, err := rawValue(t)
	if err != nil {
		return mq, err
	}
	if err := json.Unmarshal(raw, &mq); err != nil {
		return mq, err
	}
	return mq, t.expect(':')
}

// rawValue skips whitespace and returns the raw text of the next value.
func rawValue(s *jsonScanner) ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// topLevelMember returns the raw value of member name of the top-level
// object. On malformed input it sets s.i = -1 and reports false.
func topLevelMember(s *jsonScanner, name string) ([]byte, bool) {
	fail := func() ([]byte, bool) { s.i = -1; return nil, false }
	if s.expect('{') != nil {
		return fail()
	}
	if s.consume('}') {
		return nil, false
	}
	for {
		s.ws()
		k, err := s.rawString()
		if err != nil || s.expect(':') != nil {
			return fail()
		}
		v, err := rawValue(s)
		if err != nil {
			return fail()
		}
		if string(k) == name {
			return v, true
		}
		if s.consume('}') {
			return nil, false
		}
		if s.expect(',') != nil {
			return fail()
		}
	}
}
