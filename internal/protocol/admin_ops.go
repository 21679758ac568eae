package protocol

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"
)

// Operator requests and bodies: GET_PRODUCER_CONNECTION_LIST (204),
// QUERY_TOPIC_CONSUME_BY_WHO (300), CLONE_GROUP_OFFSET (314),
// INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223) and GET_BROKER_CONFIG (26).
// Java classes: GetProducerConnectionListRequestHeader,
// CloneGroupOffsetRequestHeader, GroupList, ProducerConnection,
// Connection, GetConsumerStatusBody, GetBrokerConfigResponseHeader.

// ProducerGroupHeader is the header of code 204.
type ProducerGroupHeader struct {
	ProducerGroup string // required
}

// Encode implements HeaderEncoder.
func (h *ProducerGroupHeader) Encode() map[string]string {
	return map[string]string{"producerGroup": h.ProducerGroup}
}

// Decode requires producerGroup.
func (h *ProducerGroupHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.ProducerGroup = r.str("producerGroup", true)
	return r.err
}

// CloneGroupOffsetRequestHeader is the header of code 314.
type CloneGroupOffsetRequestHeader struct {
	SrcGroup  string // required
	DestGroup string // required
	Topic     string // optional: blank = every topic srcGroup has offsets for
	Offline   bool
}

// Encode implements HeaderEncoder.
func (h *CloneGroupOffsetRequestHeader) Encode() map[string]string {
	w := newExt(4)
	w.str("srcGroup", h.SrcGroup)
	w.str("destGroup", h.DestGroup)
	w.optStr("topic", h.Topic)
	w.boolean("offline", h.Offline)
	return w
}

// Decode requires srcGroup and destGroup.
func (h *CloneGroupOffsetRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = CloneGroupOffsetRequestHeader{
		SrcGroup:  r.str("srcGroup", true),
		DestGroup: r.str("destGroup", true),
		Topic:     r.str("topic", false),
		Offline:   r.boolean("offline", false),
	}
	return r.err
}

// GroupList is the body of a code 300 response.
type GroupList struct {
	GroupList []string `json:"groupList"`
}

// Connection is one client connection in ProducerConnection and
// ConsumerConnection bodies.
type Connection struct {
	ClientAddr string `json:"clientAddr"`
	ClientID   string `json:"clientId"`
	Language   string `json:"language"`
	Version    int16  `json:"version"`
}

// ProducerConnection is the body of a code 204 response.
type ProducerConnection struct {
	ConnectionSet []Connection `json:"connectionSet"`
}

// GetConsumerStatusBody is the body of a code 221 reply (MessageQueueTable
// only) and of a code 223 response (ConsumerTable by client id). Both
// tables are MessageQueue-keyed in fastjson's shape.
type GetConsumerStatusBody struct {
	MessageQueueTable map[MessageQueue]int64
	ConsumerTable     map[string]map[MessageQueue]int64
}

// Encode writes the fastjson shape.
func (b *GetConsumerStatusBody) Encode() []byte {
	dst := append([]byte(nil), `{"consumerTable":{`...)
	ids := make([]string, 0, len(b.ConsumerTable))
	for id := range b.ConsumerTable {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendMQMap(appendKey(dst, id), b.ConsumerTable[id])
	}
	dst = appendKey(append(dst, "},"...), "messageQueueTable")
	return append(appendMQMap(dst, b.MessageQueueTable), '}')
}

// appendMQMap writes {<mq>:<v>,...}: appendMQTable without the name.
func appendMQMap(dst []byte, m map[MessageQueue]int64) []byte {
	t := appendMQTable(nil, "x", m, "")
	return append(dst, t[len(`"x":`):]...)
}

// DecodeMQOffsetTable parses the top-level member name of body, a
// MessageQueue-keyed map of offsets (ResetOffsetBody, a 221 reply).
func DecodeMQOffsetTable(body []byte, name string) (map[MessageQueue]int64, error) {
	out := map[MessageQueue]int64{}
	err := decodeMQTable(body, name, func(mq MessageQueue, raw []byte) error {
		v, ok := parseInt(raw, -1<<63, 1<<63-1)
		if !ok {
			return errors.New("bad offset " + strconv.Quote(string(raw)))
		}
		out[mq] = v
		return nil
	})
	return out, err
}

// DecodeGetConsumerStatusBody parses a code 223 response.
func DecodeGetConsumerStatusBody(body []byte) (*GetConsumerStatusBody, error) {
	b := &GetConsumerStatusBody{ConsumerTable: map[string]map[MessageQueue]int64{}}
	var err error
	if b.MessageQueueTable, err = DecodeMQOffsetTable(body, "messageQueueTable"); err != nil {
		return nil, err
	}
	s := jsonScanner{b: body}
	raw, ok := topLevelMember(&s, "consumerTable")
	if !ok {
		return b, nil
	}
	return b, decodeObjectMembers(raw, func(id string, v []byte) error {
		t, err := DecodeMQOffsetTable(append(append([]byte(`{"t":`), v...), '}'), "t")
		b.ConsumerTable[id] = t
		return err
	})
}

// decodeObjectMembers calls fn for every member of the object raw.
func decodeObjectMembers(raw []byte, fn func(string, []byte) error) error {
	t := jsonScanner{b: raw}
	if err := t.expect('{'); err != nil {
		return err
	}
	if t.consume('}') {
		return nil
	}
	for {
		t.ws()
		k, err := t.rawString()
		if err != nil {
			return err
		}
		key := string(k) // client ids carry no escapes
		if err := t.expect(':'); err != nil {
			return err
		}
		v, err := rawValue(&t)
		if err != nil {
			return err
		}
		if err := fn(key, v); err != nil {
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

// GetConsumeStatsInBrokerHeader is the header of code 317.
type GetConsumeStatsInBrokerHeader struct {
	IsOrder bool
}

// Encode implements HeaderEncoder.
func (h *GetConsumeStatsInBrokerHeader) Encode() map[string]string {
	w := newExt(1)
	w.boolean("isOrder", h.IsOrder)
	return w
}

// Decode reads isOrder (optional).
func (h *GetConsumeStatsInBrokerHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.IsOrder = r.boolean("isOrder", false)
	return r.err
}

// GroupConsumeStats is one group's ConsumeStats, one per topic.
type GroupConsumeStats struct {
	Group string
	Stats []*ConsumeStats
}

// ConsumeStatsList is the body of a code 317 response. Its ConsumeStats
// are MessageQueue-keyed in fastjson's shape, so it is not standard JSON.
type ConsumeStatsList struct {
	BrokerAddr string
	Groups     []GroupConsumeStats // consumeStatsList: [{group: [stats...]}]
	TotalDiff  int64
}

// Encode writes the fastjson shape.
func (l *ConsumeStatsList) Encode() []byte {
	dst := appendStrField(append([]byte(nil), '{'), "brokerAddr", l.BrokerAddr)
	dst = append(appendKey(append(dst, ','), "consumeStatsList"), '[')
	for i, g := range l.Groups {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendKey(append(dst, '{'), g.Group), '[')
		for j, cs := range g.Stats {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, cs.Encode()...)
		}
		dst = append(dst, "]}"...)
	}
	dst = appendIntField(append(dst, "],"...), "totalDiff", l.TotalDiff)
	return append(dst, '}')
}

// DecodeConsumeStatsList parses a code 317 response.
func DecodeConsumeStatsList(body []byte) (*ConsumeStatsList, error) {
	l := &ConsumeStatsList{}
	err := decodeObjectMembers(body, func(k string, v []byte) error {
		switch k {
		case "brokerAddr":
			return jsonUnmarshal(v, &l.BrokerAddr)
		case "totalDiff":
			return jsonUnmarshal(v, &l.TotalDiff)
		case "consumeStatsList":
			return decodeArray(v, func(item []byte) error {
				return decodeObjectMembers(item, func(group string, arr []byte) error {
					g := GroupConsumeStats{Group: group}
					err := decodeArray(arr, func(cs []byte) error {
						s, err := DecodeConsumeStats(cs)
						g.Stats = append(g.Stats, s)
						return err
					})
					l.Groups = append(l.Groups, g)
					return err
				})
			})
		}
		return nil
	})
	return l, err
}

// decodeArray calls fn with the raw text of every element of the array raw.
func decodeArray(raw []byte, fn func([]byte) error) error {
	t := jsonScanner{b: raw}
	if err := t.expect('['); err != nil {
		return err
	}
	if t.consume(']') {
		return nil
	}
	for {
		v, err := rawValue(&t)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		if t.consume(']') {
			return nil
		}
		if err := t.expect(','); err != nil {
			return err
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Stats names of VIEW_BROKER_STATS_DATA (Java's BrokerStatsManager).
const (
	StatsTopicPutNums = "TOPIC_PUT_NUMS" // key: topic
	StatsGroupGetNums = "GROUP_GET_NUMS" // key: topic@group
)

// ViewBrokerStatsDataRequestHeader is the header of code 315.
type ViewBrokerStatsDataRequestHeader struct {
	StatsName string // required
	StatsKey  string // required
}

// Encode implements HeaderEncoder.
func (h *ViewBrokerStatsDataRequestHeader) Encode() map[string]string {
	return map[string]string{"statsName": h.StatsName, "statsKey": h.StatsKey}
}

// Decode requires both fields.
func (h *ViewBrokerStatsDataRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.StatsName = r.str("statsName", true)
	h.StatsKey = r.str("statsKey", true)
	return r.err
}
