package protocol

import "encoding/json"

// Lock family: LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42), bodies only —
// Java's LockBatchRequestBody and RebalanceLockManager.

// MessageQueue identifies one queue. The Go client compares queues with ==
// on all three fields, so echo them exactly.
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

// LockBatchRequestBody is the body of codes 41 and 42.
type LockBatchRequestBody struct {
	ConsumerGroup string         `json:"consumerGroup"`
	ClientID      string         `json:"clientId"`
	MQSet         []MessageQueue `json:"mqSet"`
}

// UnlockBatchRequestBody has the same shape as the lock request.
type UnlockBatchRequestBody = LockBatchRequestBody

// DecodeLockBatchRequestBody parses the body of code 41 or 42.
func DecodeLockBatchRequestBody(body []byte) (*LockBatchRequestBody, error) {
	b := &LockBatchRequestBody{}
	if err := DecodeJSON(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Encode marshals the body.
func (b *LockBatchRequestBody) Encode() ([]byte, error) { return json.Marshal(b) }

// LockBatchResponseBody lists the queues now held by the requester. The
// set is always written as an array (never null).
type LockBatchResponseBody struct {
	LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
}

// Encode marshals the body.
func (b *LockBatchResponseBody) Encode() ([]byte, error) {
	if b.LockOKMQSet == nil {
		return []byte(`{"lockOKMQSet":[]}`), nil
	}
	return json.Marshal(b)
}

// DecodeLockBatchResponseBody parses the body of a code 41 response.
func DecodeLockBatchResponseBody(body []byte) (*LockBatchResponseBody, error) {
	b := &LockBatchResponseBody{}
	if err := DecodeJSON(body, b); err != nil {
		return nil, err
	}
	return b, nil
}
