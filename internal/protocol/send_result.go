package protocol

import (
	"encoding/binary"
	"strconv"
	"unsafe"
)

// Typed send responses (issue 14: CPU and allocations per message). Every
// send is answered with msgId, queueId, queueOffset, TRACE_ON and maybe
// MSG_REGION; building them as a map of formatted strings and sorting its
// keys at encode time cost two allocations and ~4% of the broker's CPU at
// 50k msg/s. SetSendResult keeps them typed in the Command instead, and the
// encoders write them straight into the frame, in the sorted key order
// appendStringMap would use, so the bytes on the wire are the same.

// SendResult is the response header of a single (non-batch) send.
type SendResult struct {
	MsgID       [64]byte // offset message id text (at most 56 bytes: message.MaxOffsetMsgIDLen)
	MsgIDLen    uint8
	QueueID     int32
	QueueOffset int64
	MsgRegion   string // MSG_REGION, omitted when empty
	TraceOn     bool   // TRACE_ON
}

// SetSendResult makes r the command's ext fields (ExtFields is cleared).
func (c *Command) SetSendResult(r *SendResult) {
	c.ExtFields, c.typedSend, c.send = nil, false, SendMessageRequestHeader{}
	c.result, c.typedResult = *r, true
	c.result.MsgIDLen = min(r.MsgIDLen, uint8(len(r.MsgID))) // never past the array, whatever the caller set
}

// SendResult returns the typed send response header, if the command has
// one and no ExtFields map replaced it (the encoders send the map then).
func (c *Command) SendResult() (*SendResult, bool) {
	return &c.result, c.typedResult && c.ExtFields == nil
}

// header is r as SendMessageResponseHeader (the map form).
func (r *SendResult) header() SendMessageResponseHeader {
	return SendMessageResponseHeader{MsgID: string(r.MsgID[:r.MsgIDLen]), QueueID: r.QueueID,
		QueueOffset: r.QueueOffset, MsgRegion: r.MsgRegion, TraceOn: r.TraceOn}
}

// The ext fields of a SendResult in sorted key order (byte order, as
// sortedKeys gives the map's): MSG_REGION (when set), TRACE_ON, msgId,
// queueId, queueOffset. Every value is a JSON string, as in the map.

// appendSendResultJSON writes r as the JSON extFields object.
func appendSendResultJSON(dst []byte, r *SendResult) []byte {
	dst = append(dst, '{')
	if r.MsgRegion != "" {
		dst = append(dst, `"`+ExtMsgRegion+`":`...)
		dst = appendJSONString(dst, r.MsgRegion)
		dst = append(dst, ',')
	}
	dst = append(dst, `"`+ExtTraceOn+`":"`...)
	dst = strconv.AppendBool(dst, r.TraceOn)
	dst = append(dst, `","msgId":`...)
	dst = appendJSONBytes(dst, r.MsgID[:r.MsgIDLen])
	dst = append(dst, `,"queueId":"`...)
	dst = strconv.AppendInt(dst, int64(r.QueueID), 10)
	dst = append(dst, `","queueOffset":"`...)
	dst = strconv.AppendInt(dst, r.QueueOffset, 10)
	return append(dst, `"}`...)
}

// appendSendResultBinary writes r's ext entries as the ROCKETMQ header
// does (key length int16, key, value length int32, value).
func appendSendResultBinary(dst []byte, r *SendResult) []byte {
	var num [20]byte
	if r.MsgRegion != "" {
		dst = appendBinaryEntry(dst, ExtMsgRegion, []byte(r.MsgRegion))
	}
	dst = appendBinaryEntry(dst, ExtTraceOn, strconv.AppendBool(num[:0], r.TraceOn))
	dst = appendBinaryEntry(dst, "msgId", r.MsgID[:r.MsgIDLen])
	dst = appendBinaryEntry(dst, "queueId", strconv.AppendInt(num[:0], int64(r.QueueID), 10))
	return appendBinaryEntry(dst, "queueOffset", strconv.AppendInt(num[:0], r.QueueOffset, 10))
}

// appendJSONBytes is appendJSONString for bytes, without copying them.
func appendJSONBytes(dst, v []byte) []byte {
	return appendJSONString(dst, unsafe.String(unsafe.SliceData(v), len(v)))
}

func appendBinaryEntry(dst []byte, key string, value []byte) []byte {
	be := binary.BigEndian
	dst = be.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = be.AppendUint32(dst, uint32(len(value)))
	return append(dst, value...)
}
