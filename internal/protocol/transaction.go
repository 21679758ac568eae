package protocol

// Transaction family: END_TRANSACTION (37, client→broker) and
// CHECK_TRANSACTION_STATE (39, broker→client) — Java's TransactionalMessageBridge.

// Transaction types: values of commitOrRollback and of sysFlag & 0xC.
const (
	TransactionNotType      int32 = 0
	TransactionPreparedType int32 = 4
	TransactionCommitType   int32 = 8
	TransactionRollbackType int32 = 12
)

// EndTransactionRequestHeader is the header of code 37.
type EndTransactionRequestHeader struct {
	ProducerGroup        string // required
	TranStateTableOffset int64  // required: half-queue offset
	CommitLogOffset      int64  // required: half record's commit-log offset
	CommitOrRollback     int32  // required: 0, 8 or 12
	FromTransactionCheck bool   // required
	MsgID                string // required (msgId = UNIQ_KEY)
	TransactionID        string // optional
}

// Encode implements HeaderEncoder.
func (h *EndTransactionRequestHeader) Encode() map[string]string {
	w := newExt(7)
	w.str("producerGroup", h.ProducerGroup)
	w.i64("tranStateTableOffset", h.TranStateTableOffset)
	w.i64("commitLogOffset", h.CommitLogOffset)
	w.i32("commitOrRollback", h.CommitOrRollback)
	w.boolean("fromTransactionCheck", h.FromTransactionCheck)
	w.str("msgId", h.MsgID)
	w.optStr("transactionId", h.TransactionID)
	return w
}

// Decode implements the Java required-field rules.
func (h *EndTransactionRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = EndTransactionRequestHeader{
		ProducerGroup:        r.str("producerGroup", true),
		TranStateTableOffset: r.i64("tranStateTableOffset", true),
		CommitLogOffset:      r.i64("commitLogOffset", true),
		CommitOrRollback:     r.i32("commitOrRollback", true),
		FromTransactionCheck: r.boolean("fromTransactionCheck", true),
		MsgID:                r.str("msgId", true),
		TransactionID:        r.str("transactionId", false),
	}
	return r.err
}

// CheckTransactionStateRequestHeader is the header of code 39, sent oneway
// by the broker about a re-appended copy of the half message.
type CheckTransactionStateRequestHeader struct {
	TranStateTableOffset int64  // required
	CommitLogOffset      int64  // required
	MsgID                string // msgId (UNIQ_KEY)
	TransactionID        string // transactionId (= UNIQ_KEY)
	OffsetMsgID          string // offsetMsgId of the copy
}

// Encode implements HeaderEncoder.
func (h *CheckTransactionStateRequestHeader) Encode() map[string]string {
	w := newExt(5)
	w.i64("tranStateTableOffset", h.TranStateTableOffset)
	w.i64("commitLogOffset", h.CommitLogOffset)
	w.optStr("msgId", h.MsgID)
	w.optStr("transactionId", h.TransactionID)
	w.optStr("offsetMsgId", h.OffsetMsgID)
	return w
}

// Decode requires the two offsets.
func (h *CheckTransactionStateRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = CheckTransactionStateRequestHeader{
		TranStateTableOffset: r.i64("tranStateTableOffset", true),
		CommitLogOffset:      r.i64("commitLogOffset", true),
		MsgID:                r.str("msgId", false),
		TransactionID:        r.str("transactionId", false),
		OffsetMsgID:          r.str("offsetMsgId", false),
	}
	return r.err
}
