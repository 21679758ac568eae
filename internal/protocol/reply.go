package protocol

// Request-reply (RocketMQ 4.6+): a responder sends its reply with
// SEND_REPLY_MESSAGE(_V2) (324/325, the send header, SendMessageRequestHeader);
// the broker forwards it to the requester with PUSH_REPLY_MESSAGE_TO_CLIENT
// (326) and this header (Java's ReplyMessageRequestHeader, read by the
// client's ClientRemotingProcessor.receiveReplyMessage).

// ReplyMessageRequestHeader is the header of PUSH_REPLY_MESSAGE_TO_CLIENT
// (326): the reply's send header plus the hosts and the store time.
type ReplyMessageRequestHeader struct {
	ProducerGroup         string // required
	Topic                 string // required
	DefaultTopic          string // required
	DefaultTopicQueueNums int32  // required
	QueueID               int32  // required
	SysFlag               int32  // required
	BornTimestamp         int64  // required
	Flag                  int32  // required
	Properties            string
	ReconsumeTimes        int32
	UnitMode              bool
	BornHost              string // "ip:port", required
	StoreHost             string // "ip:port", required
	StoreTimestamp        int64  // required
}

// Encode implements HeaderEncoder (Java's long field names).
func (h *ReplyMessageRequestHeader) Encode() map[string]string {
	w := newExt(14)
	w.str("producerGroup", h.ProducerGroup)
	w.str("topic", h.Topic)
	w.str("defaultTopic", h.DefaultTopic)
	w.i32("defaultTopicQueueNums", h.DefaultTopicQueueNums)
	w.i32("queueId", h.QueueID)
	w.i32("sysFlag", h.SysFlag)
	w.i64("bornTimestamp", h.BornTimestamp)
	w.i32("flag", h.Flag)
	w.optStr("properties", h.Properties)
	w.i32("reconsumeTimes", h.ReconsumeTimes)
	w.boolean("unitMode", h.UnitMode)
	w.str("bornHost", h.BornHost)
	w.str("storeHost", h.StoreHost)
	w.i64("storeTimestamp", h.StoreTimestamp)
	return w
}

// Decode checks the fields Java marks @CFNotNull.
func (h *ReplyMessageRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = ReplyMessageRequestHeader{
		ProducerGroup:         r.str("producerGroup", true),
		Topic:                 r.str("topic", true),
		DefaultTopic:          r.str("defaultTopic", true),
		DefaultTopicQueueNums: r.i32("defaultTopicQueueNums", true),
		QueueID:               r.i32("queueId", true),
		SysFlag:               r.i32("sysFlag", true),
		BornTimestamp:         r.i64("bornTimestamp", true),
		Flag:                  r.i32("flag", true),
		Properties:            r.str("properties", false),
		ReconsumeTimes:        r.i32("reconsumeTimes", false),
		UnitMode:              r.boolean("unitMode", false),
		BornHost:              r.str("bornHost", true),
		StoreHost:             r.str("storeHost", true),
		StoreTimestamp:        r.i64("storeTimestamp", true),
	}
	return r.err
}
