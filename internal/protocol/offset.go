package protocol

// Offset family: QUERY_CONSUMER_OFFSET (14), UPDATE_CONSUMER_OFFSET (15),
// SEARCH_OFFSET_BY_TIMESTAMP (29), GET_MAX_OFFSET (30), GET_MIN_OFFSET (31),
// GET_EARLIEST_MSG_STORETIME (32) — Java's ConsumerManageProcessor and ClientManageProcessor.

// QueryConsumerOffsetRequestHeader is the header of code 14.
type QueryConsumerOffsetRequestHeader struct {
	ConsumerGroup string // required
	Topic         string // required
	QueueID       int32  // required
}

// Encode implements HeaderEncoder.
func (h *QueryConsumerOffsetRequestHeader) Encode() map[string]string {
	w := newExt(3)
	w.str("consumerGroup", h.ConsumerGroup)
	w.str("topic", h.Topic)
	w.i32("queueId", h.QueueID)
	return w
}

// Decode requires all fields.
func (h *QueryConsumerOffsetRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = QueryConsumerOffsetRequestHeader{
		ConsumerGroup: r.str("consumerGroup", true),
		Topic:         r.str("topic", true),
		QueueID:       r.i32("queueId", true),
	}
	return r.err
}

// UpdateConsumerOffsetRequestHeader is the header of code 15.
type UpdateConsumerOffsetRequestHeader struct {
	ConsumerGroup string // required
	Topic         string // required
	QueueID       int32  // required
	CommitOffset  int64  // required
}

// Encode implements HeaderEncoder.
func (h *UpdateConsumerOffsetRequestHeader) Encode() map[string]string {
	w := newExt(4)
	w.str("consumerGroup", h.ConsumerGroup)
	w.str("topic", h.Topic)
	w.i32("queueId", h.QueueID)
	w.i64("commitOffset", h.CommitOffset)
	return w
}

// Decode requires all fields.
func (h *UpdateConsumerOffsetRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = UpdateConsumerOffsetRequestHeader{
		ConsumerGroup: r.str("consumerGroup", true),
		Topic:         r.str("topic", true),
		QueueID:       r.i32("queueId", true),
		CommitOffset:  r.i64("commitOffset", true),
	}
	return r.err
}

// SearchOffsetRequestHeader is the header of code 29.
type SearchOffsetRequestHeader struct {
	Topic     string // required
	QueueID   int32  // required
	Timestamp int64  // required, ms
}

// Encode implements HeaderEncoder.
func (h *SearchOffsetRequestHeader) Encode() map[string]string {
	w := newExt(3)
	w.str("topic", h.Topic)
	w.i32("queueId", h.QueueID)
	w.i64("timestamp", h.Timestamp)
	return w
}

// Decode requires all fields.
func (h *SearchOffsetRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = SearchOffsetRequestHeader{
		Topic:     r.str("topic", true),
		QueueID:   r.i32("queueId", true),
		Timestamp: r.i64("timestamp", true),
	}
	return r.err
}

// TopicQueueRequestHeader is the {topic, queueId} header shared by codes
// 30, 31 and 32.
type TopicQueueRequestHeader struct {
	Topic   string // required
	QueueID int32  // required
}

// Aliases naming the requests that use TopicQueueRequestHeader.
type (
	GetMaxOffsetRequestHeader            = TopicQueueRequestHeader
	GetMinOffsetRequestHeader            = TopicQueueRequestHeader
	GetEarliestMsgStoretimeRequestHeader = TopicQueueRequestHeader
)

// Encode implements HeaderEncoder.
func (h *TopicQueueRequestHeader) Encode() map[string]string {
	w := newExt(2)
	w.str("topic", h.Topic)
	w.i32("queueId", h.QueueID)
	return w
}

// Decode requires both fields.
func (h *TopicQueueRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = TopicQueueRequestHeader{Topic: r.str("topic", true), QueueID: r.i32("queueId", true)}
	return r.err
}

// OffsetResponseHeader is the {offset} response header of codes 14, 29,
// 30 and 31. The Go client parses `offset` whatever the code, so always
// fill it.
type OffsetResponseHeader struct {
	Offset int64
}

// Aliases naming the responses that use OffsetResponseHeader.
type (
	QueryConsumerOffsetResponseHeader = OffsetResponseHeader
	SearchOffsetResponseHeader        = OffsetResponseHeader
	GetMaxOffsetResponseHeader        = OffsetResponseHeader
	GetMinOffsetResponseHeader        = OffsetResponseHeader
)

// Encode implements HeaderEncoder.
func (h *OffsetResponseHeader) Encode() map[string]string {
	w := newExt(1)
	w.i64("offset", h.Offset)
	return w
}

// Decode requires offset.
func (h *OffsetResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.Offset = r.i64("offset", true)
	return r.err
}

// GetEarliestMsgStoretimeResponseHeader is the response header of code 32.
type GetEarliestMsgStoretimeResponseHeader struct {
	Timestamp int64 // -1 if unknown
}

// Encode implements HeaderEncoder.
func (h *GetEarliestMsgStoretimeResponseHeader) Encode() map[string]string {
	w := newExt(1)
	w.i64("timestamp", h.Timestamp)
	return w
}

// Decode requires timestamp.
func (h *GetEarliestMsgStoretimeResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.Timestamp = r.i64("timestamp", true)
	return r.err
}
