package protocol

// Send family: SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE
// (320), SEND_REPLY_MESSAGE(_V2) (324/325) — Java's SendMessageProcessor.

// Message sysFlag bits (Java's MessageSysFlag).
const (
	MsgSysFlagCompressed       int32 = 0x1
	MsgSysFlagMultiTags        int32 = 0x2
	MsgSysFlagTransactionMask  int32 = 0xC
	MsgSysFlagBornHostV6       int32 = 0x10
	MsgSysFlagStoreHostV6      int32 = 0x20
	MsgSysFlagCompressTypeMask int32 = 0x700
)

// SendMessageRequestHeader is the decoded header of codes 10, 310 and 320
// (and 324/325). Code 10 uses the long field names, 310/320 the one-letter
// names a..n; Decode accepts both.
type SendMessageRequestHeader struct {
	ProducerGroup         string // a, required
	Topic                 string // b, required
	DefaultTopic          string // c, required
	DefaultTopicQueueNums int32  // d, required
	QueueID               int32  // e, required
	SysFlag               int32  // f, required
	BornTimestamp         int64  // g, required
	Flag                  int32  // h, required
	Properties            string // i
	ReconsumeTimes        int32  // j
	UnitMode              bool   // k
	MaxReconsumeTimes     int32  // l; see HasMaxReconsumeTimes
	Batch                 bool   // m
	BrokerName            string // n (4.9.x Java only)
	// HasMaxReconsumeTimes reports whether maxReconsumeTimes was sent; Java
	// falls back to the group's retryMaxTimes when it was not.
	HasMaxReconsumeTimes bool
}

// sendKeys pairs the long (code 10) and short (V2) names of each field.
var sendKeys = struct {
	group, topic, defTopic, defNums, queue, sysFlag, born, flag,
	props, reconsume, unit, maxReconsume, batch, broker [2]string
}{
	[2]string{"producerGroup", "a"}, [2]string{"topic", "b"},
	[2]string{"defaultTopic", "c"}, [2]string{"defaultTopicQueueNums", "d"},
	[2]string{"queueId", "e"}, [2]string{"sysFlag", "f"},
	[2]string{"bornTimestamp", "g"}, [2]string{"flag", "h"},
	[2]string{"properties", "i"}, [2]string{"reconsumeTimes", "j"},
	[2]string{"unitMode", "k"}, [2]string{"maxReconsumeTimes", "l"},
	[2]string{"batch", "m"}, [2]string{"brokerName", "n"},
}

// IsSendV2Header reports whether ext uses the one-letter V2 names.
func IsSendV2Header(ext map[string]string) bool {
	if _, long := ext["topic"]; long {
		return false
	}
	_, short := ext["b"]
	return short
}

// Encode writes the long-name form (code 10).
func (h *SendMessageRequestHeader) Encode() map[string]string { return h.encode(0) }

// EncodeV2 writes the one-letter form (codes 310/320).
func (h *SendMessageRequestHeader) EncodeV2() map[string]string { return h.encode(1) }

func (h *SendMessageRequestHeader) encode(f int) map[string]string {
	k := &sendKeys
	w := newExt(14)
	w.str(k.group[f], h.ProducerGroup)
	w.str(k.topic[f], h.Topic)
	w.str(k.defTopic[f], h.DefaultTopic)
	w.i32(k.defNums[f], h.DefaultTopicQueueNums)
	w.i32(k.queue[f], h.QueueID)
	w.i32(k.sysFlag[f], h.SysFlag)
	w.i64(k.born[f], h.BornTimestamp)
	w.i32(k.flag[f], h.Flag)
	w.optStr(k.props[f], h.Properties)
	w.i32(k.reconsume[f], h.ReconsumeTimes)
	w.boolean(k.unit[f], h.UnitMode)
	if h.HasMaxReconsumeTimes {
		w.i32(k.maxReconsume[f], h.MaxReconsumeTimes)
	}
	w.boolean(k.batch[f], h.Batch)
	w.optStr(k.broker[f], h.BrokerName)
	return w
}

// Decode accepts either naming scheme (detected with IsSendV2Header).
func (h *SendMessageRequestHeader) Decode(ext map[string]string) error {
	f := 0
	if IsSendV2Header(ext) {
		f = 1
	}
	k := &sendKeys
	r := extReader{m: ext}
	*h = SendMessageRequestHeader{
		ProducerGroup:         r.str(k.group[f], true),
		Topic:                 r.str(k.topic[f], true),
		DefaultTopic:          r.str(k.defTopic[f], true),
		DefaultTopicQueueNums: r.i32(k.defNums[f], true),
		QueueID:               r.i32(k.queue[f], true),
		SysFlag:               r.i32(k.sysFlag[f], true),
		BornTimestamp:         r.i64(k.born[f], true),
		Flag:                  r.i32(k.flag[f], true),
		Properties:            r.str(k.props[f], false),
		ReconsumeTimes:        r.i32(k.reconsume[f], false),
		UnitMode:              r.boolean(k.unit[f], false),
		Batch:                 r.boolean(k.batch[f], false),
		BrokerName:            r.str(k.broker[f], false),
	}
	h.MaxReconsumeTimes, h.HasMaxReconsumeTimes = r.i32opt(k.maxReconsume[f])
	return r.err
}

// Ext keys the Java broker adds to every send response (Java's SendMessageProcessor).
const (
	ExtMsgRegion = "MSG_REGION"
	ExtTraceOn   = "TRACE_ON"
)

// SendMessageResponseHeader is the response header of the send family.
type SendMessageResponseHeader struct {
	MsgID         string // offsetMsgId; comma-joined for batches
	QueueID       int32
	QueueOffset   int64
	TransactionID string // optional
	MsgRegion     string // MSG_REGION, omitted when empty
	TraceOn       bool   // TRACE_ON
}

// Encode implements HeaderEncoder.
func (h *SendMessageResponseHeader) Encode() map[string]string {
	w := newExt(6)
	w.str("msgId", h.MsgID)
	w.i32("queueId", h.QueueID)
	w.i64("queueOffset", h.QueueOffset)
	w.optStr("transactionId", h.TransactionID)
	w.optStr(ExtMsgRegion, h.MsgRegion)
	w.boolean(ExtTraceOn, h.TraceOn)
	return w
}

// Decode requires msgId, queueId and queueOffset.
func (h *SendMessageResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = SendMessageResponseHeader{
		MsgID:         r.str("msgId", true),
		QueueID:       r.i32("queueId", true),
		QueueOffset:   r.i64("queueOffset", true),
		TransactionID: r.str("transactionId", false),
		MsgRegion:     r.str(ExtMsgRegion, false),
		TraceOn:       r.boolean(ExtTraceOn, false),
	}
	return r.err
}
