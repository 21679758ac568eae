package protocol

// Query family: QUERY_MESSAGE (12) and VIEW_MESSAGE_BY_ID (33) — Java's QueryMessageProcessor.

// ExtUniqueKeyQuery is the optional QUERY_MESSAGE flag: "true" means the key
// is a UNIQ_KEY and maxNum becomes 32.
const ExtUniqueKeyQuery = "_UNIQUE_KEY_QUERY"

// QueryMessageRequestHeader is the header of code 12.
type QueryMessageRequestHeader struct {
	Topic          string // required
	Key            string // required
	MaxNum         int32  // required
	BeginTimestamp int64  // required
	EndTimestamp   int64  // required
	UniqueKeyQuery bool   // _UNIQUE_KEY_QUERY, written only when true
}

// Encode implements HeaderEncoder.
func (h *QueryMessageRequestHeader) Encode() map[string]string {
	w := newExt(6)
	w.str("topic", h.Topic)
	w.str("key", h.Key)
	w.i32("maxNum", h.MaxNum)
	w.i64("beginTimestamp", h.BeginTimestamp)
	w.i64("endTimestamp", h.EndTimestamp)
	if h.UniqueKeyQuery {
		w.boolean(ExtUniqueKeyQuery, true)
	}
	return w
}

// Decode requires all fields but the unique-key flag.
func (h *QueryMessageRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = QueryMessageRequestHeader{
		Topic:          r.str("topic", true),
		Key:            r.str("key", true),
		MaxNum:         r.i32("maxNum", true),
		BeginTimestamp: r.i64("beginTimestamp", true),
		EndTimestamp:   r.i64("endTimestamp", true),
		UniqueKeyQuery: r.boolean(ExtUniqueKeyQuery, false),
	}
	return r.err
}

// QueryMessageResponseHeader is the response header of code 12.
type QueryMessageResponseHeader struct {
	IndexLastUpdateTimestamp int64
	IndexLastUpdatePhyoffset int64
}

// Encode implements HeaderEncoder.
func (h *QueryMessageResponseHeader) Encode() map[string]string {
	w := newExt(2)
	w.i64("indexLastUpdateTimestamp", h.IndexLastUpdateTimestamp)
	w.i64("indexLastUpdatePhyoffset", h.IndexLastUpdatePhyoffset)
	return w
}

// Decode requires both fields.
func (h *QueryMessageResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = QueryMessageResponseHeader{
		IndexLastUpdateTimestamp: r.i64("indexLastUpdateTimestamp", true),
		IndexLastUpdatePhyoffset: r.i64("indexLastUpdatePhyoffset", true),
	}
	return r.err
}

// ViewMessageRequestHeader is the header of code 33: a commit-log offset
// the client decoded from an offsetMsgId.
type ViewMessageRequestHeader struct {
	Offset int64 // required
}

// Encode implements HeaderEncoder.
func (h *ViewMessageRequestHeader) Encode() map[string]string {
	w := newExt(1)
	w.i64("offset", h.Offset)
	return w
}

// Decode requires offset.
func (h *ViewMessageRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.Offset = r.i64("offset", true)
	return r.err
}
