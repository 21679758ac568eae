package protocol

// CONSUMER_SEND_MSG_BACK (36) — Java's SendMessageProcessor.consumerSendMsgBack.

// ConsumerSendMsgBackRequestHeader is the header of code 36.
type ConsumerSendMsgBackRequestHeader struct {
	Offset            int64  // required: commit-log offset of the failed message
	Group             string // required
	DelayLevel        int32  // required: 0 = broker decides, <0 = straight to DLQ
	OriginMsgID       string // optional
	OriginTopic       string // optional
	UnitMode          bool
	MaxReconsumeTimes int32 // see HasMaxReconsumeTimes
	// HasMaxReconsumeTimes reports whether maxReconsumeTimes was sent; Java
	// falls back to the group's retryMaxTimes when it was not.
	HasMaxReconsumeTimes bool
}

// Encode implements HeaderEncoder.
func (h *ConsumerSendMsgBackRequestHeader) Encode() map[string]string {
	w := newExt(7)
	w.i64("offset", h.Offset)
	w.str("group", h.Group)
	w.i32("delayLevel", h.DelayLevel)
	w.optStr("originMsgId", h.OriginMsgID)
	w.optStr("originTopic", h.OriginTopic)
	w.boolean("unitMode", h.UnitMode)
	if h.HasMaxReconsumeTimes {
		w.i32("maxReconsumeTimes", h.MaxReconsumeTimes)
	}
	return w
}

// Decode requires offset, group and delayLevel.
func (h *ConsumerSendMsgBackRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = ConsumerSendMsgBackRequestHeader{
		Offset:      r.i64("offset", true),
		Group:       r.str("group", true),
		DelayLevel:  r.i32("delayLevel", true),
		OriginMsgID: r.str("originMsgId", false),
		OriginTopic: r.str("originTopic", false),
		UnitMode:    r.boolean("unitMode", false),
	}
	h.MaxReconsumeTimes, h.HasMaxReconsumeTimes = r.i32opt("maxReconsumeTimes")
	return r.err
}
