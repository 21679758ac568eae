package protocol

import "encoding/json"

// Consumer family: GET_CONSUMER_LIST_BY_GROUP (38), CHECK_CLIENT_CONFIG
// (46) and the broker→client requests NOTIFY_CONSUMER_IDS_CHANGED (40),
// RESET_CONSUMER_CLIENT_OFFSET (220), GET_CONSUMER_STATUS_FROM_CLIENT (221),
// GET_CONSUMER_RUNNING_INFO (307), CONSUME_MESSAGE_DIRECTLY (309) — Java's ConsumerManageProcessor and ClientManageProcessor. The admin requests 222/223 reuse two of these headers.

// ConsumerGroupHeader is the {consumerGroup} header of codes 38, 40 and 203.
type ConsumerGroupHeader struct {
	ConsumerGroup string // required
}

// Aliases naming the requests that use ConsumerGroupHeader.
type (
	GetConsumerListByGroupRequestHeader    = ConsumerGroupHeader
	NotifyConsumerIdsChangedRequestHeader  = ConsumerGroupHeader
	GetConsumerConnectionListRequestHeader = ConsumerGroupHeader
)

// Encode implements HeaderEncoder.
func (h *ConsumerGroupHeader) Encode() map[string]string {
	return map[string]string{"consumerGroup": h.ConsumerGroup}
}

// Decode requires consumerGroup.
func (h *ConsumerGroupHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.ConsumerGroup = r.str("consumerGroup", true)
	return r.err
}

// GetConsumerListByGroupResponseBody is the body of a code 38 response.
type GetConsumerListByGroupResponseBody struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// Encode marshals the body; a nil list is written as [].
func (b *GetConsumerListByGroupResponseBody) Encode() ([]byte, error) {
	if b.ConsumerIDList == nil {
		return []byte(`{"consumerIdList":[]}`), nil
	}
	return json.Marshal(b)
}

// ResetOffsetRequestHeader is the header of codes 220 (broker→client) and
// 222 (admin→broker). timestamp -1 means "to max offset" for 222.
type ResetOffsetRequestHeader struct {
	Topic     string // required
	Group     string // required
	Timestamp int64  // required
	IsForce   bool   // required
}

// Encode implements HeaderEncoder.
func (h *ResetOffsetRequestHeader) Encode() map[string]string {
	w := newExt(4)
	w.str("topic", h.Topic)
	w.str("group", h.Group)
	w.i64("timestamp", h.Timestamp)
	w.boolean("isForce", h.IsForce)
	return w
}

// Decode requires all fields.
func (h *ResetOffsetRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = ResetOffsetRequestHeader{
		Topic:     r.str("topic", true),
		Group:     r.str("group", true),
		Timestamp: r.i64("timestamp", true),
		IsForce:   r.boolean("isForce", true),
	}
	return r.err
}

// GetConsumerStatusRequestHeader is the header of codes 221 and 223.
type GetConsumerStatusRequestHeader struct {
	Topic      string // required
	Group      string // required
	ClientAddr string // optional
}

// Encode implements HeaderEncoder.
func (h *GetConsumerStatusRequestHeader) Encode() map[string]string {
	w := newExt(3)
	w.str("topic", h.Topic)
	w.str("group", h.Group)
	w.optStr("clientAddr", h.ClientAddr)
	return w
}

// Decode requires topic and group.
func (h *GetConsumerStatusRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = GetConsumerStatusRequestHeader{
		Topic:      r.str("topic", true),
		Group:      r.str("group", true),
		ClientAddr: r.str("clientAddr", false),
	}
	return r.err
}

// GetConsumerRunningInfoRequestHeader is the header of code 307.
type GetConsumerRunningInfoRequestHeader struct {
	ConsumerGroup string // required
	ClientID      string // required (ext key clientId)
	JstackEnable  bool
}

// Encode implements HeaderEncoder.
func (h *GetConsumerRunningInfoRequestHeader) Encode() map[string]string {
	w := newExt(3)
	w.str("consumerGroup", h.ConsumerGroup)
	w.str("clientId", h.ClientID)
	w.boolean("jstackEnable", h.JstackEnable)
	return w
}

// Decode requires consumerGroup and clientId.
func (h *GetConsumerRunningInfoRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = GetConsumerRunningInfoRequestHeader{
		ConsumerGroup: r.str("consumerGroup", true),
		ClientID:      r.str("clientId", true),
		JstackEnable:  r.boolean("jstackEnable", false),
	}
	return r.err
}

// ConsumeMessageDirectlyRequestHeader is the header of code 309.
type ConsumeMessageDirectlyRequestHeader struct {
	ConsumerGroup string // required
	ClientID      string // optional (clientId)
	MsgID         string // required (msgId)
	BrokerName    string // optional
}

// Encode implements HeaderEncoder.
func (h *ConsumeMessageDirectlyRequestHeader) Encode() map[string]string {
	w := newExt(4)
	w.str("consumerGroup", h.ConsumerGroup)
	w.optStr("clientId", h.ClientID)
	w.str("msgId", h.MsgID)
	w.optStr("brokerName", h.BrokerName)
	return w
}

// Decode requires consumerGroup and msgId.
func (h *ConsumeMessageDirectlyRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = ConsumeMessageDirectlyRequestHeader{
		ConsumerGroup: r.str("consumerGroup", true),
		ClientID:      r.str("clientId", false),
		MsgID:         r.str("msgId", true),
		BrokerName:    r.str("brokerName", false),
	}
	return r.err
}

// CheckClientConfigBody is the body of code 46 (Java consumers only).
type CheckClientConfigBody struct {
	ClientID         string            `json:"clientId"`
	Group            string            `json:"group"`
	SubscriptionData *SubscriptionData `json:"subscriptionData"`
}

// DecodeCheckClientConfigBody parses the body of code 46.
func DecodeCheckClientConfigBody(body []byte) (*CheckClientConfigBody, error) {
	b := &CheckClientConfigBody{}
	if err := DecodeJSON(body, b); err != nil {
		return nil, err
	}
	return b, nil
}
