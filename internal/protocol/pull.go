package protocol

// Pull family: PULL_MESSAGE (11) — Java's PullMessageProcessor.

// Pull request sysFlag bits.
const (
	PullFlagCommitOffset int32 = 1 << 0
	PullFlagSuspend      int32 = 1 << 1
	PullFlagSubscription int32 = 1 << 2
	PullFlagClassFilter  int32 = 1 << 3
	PullFlagLitePull     int32 = 1 << 4
)

// Subscription expression types.
const (
	ExpressionTypeTag   = "TAG"
	ExpressionTypeSQL92 = "SQL92"
)

// PullMessageRequestHeader is the header of PULL_MESSAGE.
type PullMessageRequestHeader struct {
	ConsumerGroup        string // required
	Topic                string // required
	QueueID              int32  // required
	QueueOffset          int64  // required
	MaxMsgNums           int32  // required
	SysFlag              int32  // required
	CommitOffset         int64  // required
	SuspendTimeoutMillis int64  // required
	Subscription         string // optional expression
	SubVersion           int64  // required
	ExpressionType       string // optional; Go always sends TAG
}

// Encode implements HeaderEncoder.
func (h *PullMessageRequestHeader) Encode() map[string]string {
	w := newExt(11)
	w.str("consumerGroup", h.ConsumerGroup)
	w.str("topic", h.Topic)
	w.i32("queueId", h.QueueID)
	w.i64("queueOffset", h.QueueOffset)
	w.i32("maxMsgNums", h.MaxMsgNums)
	w.i32("sysFlag", h.SysFlag)
	w.i64("commitOffset", h.CommitOffset)
	w.i64("suspendTimeoutMillis", h.SuspendTimeoutMillis)
	w.optStr("subscription", h.Subscription)
	w.i64("subVersion", h.SubVersion)
	w.optStr("expressionType", h.ExpressionType)
	return w
}

// Decode implements the Java required-field rules.
func (h *PullMessageRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = PullMessageRequestHeader{
		ConsumerGroup:        r.str("consumerGroup", true),
		Topic:                r.str("topic", true),
		QueueID:              r.i32("queueId", true),
		QueueOffset:          r.i64("queueOffset", true),
		MaxMsgNums:           r.i32("maxMsgNums", true),
		SysFlag:              r.i32("sysFlag", true),
		CommitOffset:         r.i64("commitOffset", true),
		SuspendTimeoutMillis: r.i64("suspendTimeoutMillis", true),
		Subscription:         r.str("subscription", false),
		SubVersion:           r.i64("subVersion", true),
		ExpressionType:       r.str("expressionType", false),
	}
	return r.err
}

// PullMessageResponseHeader carries the four fields every pull response
// must have (the Java client requires all of them), whatever the code.
type PullMessageResponseHeader struct {
	SuggestWhichBrokerID int64
	NextBeginOffset      int64
	MinOffset            int64
	MaxOffset            int64
}

// Encode always writes all four fields.
func (h *PullMessageResponseHeader) Encode() map[string]string {
	w := newExt(4)
	w.i64("suggestWhichBrokerId", h.SuggestWhichBrokerID)
	w.i64("nextBeginOffset", h.NextBeginOffset)
	w.i64("minOffset", h.MinOffset)
	w.i64("maxOffset", h.MaxOffset)
	return w
}

// Decode requires all four fields.
func (h *PullMessageResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = PullMessageResponseHeader{
		SuggestWhichBrokerID: r.i64("suggestWhichBrokerId", true),
		NextBeginOffset:      r.i64("nextBeginOffset", true),
		MinOffset:            r.i64("minOffset", true),
		MaxOffset:            r.i64("maxOffset", true),
	}
	return r.err
}
