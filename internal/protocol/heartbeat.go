package protocol

import (
	"encoding/json"
	"strconv"
)

// Heartbeat family: HEART_BEAT (34, body only) and UNREGISTER_CLIENT (35)
// — Java's ConsumerManageProcessor and ClientManageProcessor and HeartbeatData.

// Consumer data enum values as they travel in heartbeats.
const (
	ConsumeTypePassively = "CONSUME_PASSIVELY" // push
	ConsumeTypeActively  = "CONSUME_ACTIVELY"  // pull

	MessageModelClustering   = "CLUSTERING"
	MessageModelBroadcasting = "BROADCASTING"

	ConsumeFromLastOffset  = "CONSUME_FROM_LAST_OFFSET"
	ConsumeFromFirstOffset = "CONSUME_FROM_FIRST_OFFSET"
	ConsumeFromTimestamp   = "CONSUME_FROM_TIMESTAMP"

	// SubAll is the "every tag" subscription expression.
	SubAll = "*"
)

// HeartbeatData is the HEART_BEAT body.
type HeartbeatData struct {
	ClientID        string         `json:"clientID"`
	ProducerDataSet []ProducerData `json:"producerDataSet"`
	ConsumerDataSet []ConsumerData `json:"consumerDataSet"`
}

// ProducerData names one producer group of the client.
type ProducerData struct {
	GroupName string `json:"groupName"`
}

// ConsumerData describes one consumer group of the client.
type ConsumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`
	MessageModel        string             `json:"messageModel"`
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	SubscriptionDataSet []SubscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

// SubscriptionData is one topic subscription of a consumer group.
type SubscriptionData struct {
	ClassFilterMode bool     `json:"classFilterMode"`
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"`
	TagsSet         []string `json:"tagsSet"`
	// CodeSet holds the client's tag hash codes. The Go client computes
	// them over UTF-8 bytes (wrong for non-ASCII tags, Java's MessageExtBrokerInner.tagsString2tagsCode):
	// recompute from TagsSet instead of trusting them.
	CodeSet        CodeSet `json:"codeSet"`
	SubVersion     int64   `json:"subVersion"`
	ExpressionType string  `json:"expressionType"`
}

// CodeSet is a list of int32 tag hash codes. It unmarshals from JSON
// numbers (Java) or numeric strings (Go client); entries that are neither
// are skipped. It marshals as numbers, like Java.
type CodeSet []int32

// UnmarshalJSON implements json.Unmarshaler.
func (c *CodeSet) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(CodeSet, 0, len(raw))
	for _, r := range raw {
		text := string(r)
		if len(r) > 0 && r[0] == '"' {
			if err := json.Unmarshal(r, &text); err != nil {
				continue
			}
		}
		if v, err := strconv.ParseInt(text, 10, 32); err == nil {
			out = append(out, int32(v))
		}
	}
	*c = out
	return nil
}

// DecodeHeartbeatData parses a HEART_BEAT body.
func DecodeHeartbeatData(body []byte) (*HeartbeatData, error) {
	h := &HeartbeatData{}
	if err := DecodeJSON(body, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Encode marshals the body as compact JSON.
func (h *HeartbeatData) Encode() ([]byte, error) { return json.Marshal(h) }

// UnregisterClientRequestHeader is the header of code 35 (Java clients
// only; note the capital "ID" in clientID).
type UnregisterClientRequestHeader struct {
	ClientID      string // required
	ProducerGroup string // optional
	ConsumerGroup string // optional
}

// Encode implements HeaderEncoder.
func (h *UnregisterClientRequestHeader) Encode() map[string]string {
	w := newExt(3)
	w.str("clientID", h.ClientID)
	w.optStr("producerGroup", h.ProducerGroup)
	w.optStr("consumerGroup", h.ConsumerGroup)
	return w
}

// Decode requires clientID.
func (h *UnregisterClientRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = UnregisterClientRequestHeader{
		ClientID:      r.str("clientID", true),
		ProducerGroup: r.str("producerGroup", false),
		ConsumerGroup: r.str("consumerGroup", false),
	}
	return r.err
}
