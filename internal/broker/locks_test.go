package broker

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func testMQ(id int32) protocol.MessageQueue {
	return protocol.MessageQueue{Topic: "T", BrokerName: "broker-a", QueueID: id}
}

func lockReq(t *testing.T, c *remoting.Client, code int16, clientID string, mqs ...protocol.MessageQueue) *protocol.Command {
	t.Helper()
	body, err := (&protocol.LockBatchRequestBody{ConsumerGroup: "g", ClientID: clientID, MQSet: mqs}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	req := protocol.NewRequest(code, nil)
	req.Body = body
	resp := call(t, c, req)
	if resp.Code != 0 {
		t.Fatalf("code %d %s", resp.Code, resp.Remark)
	}
	return resp
}

func lockQueues(t *testing.T, c *remoting.Client, clientID string, mqs ...protocol.MessageQueue) []protocol.MessageQueue {
	t.Helper()
	resp := lockReq(t, c, protocol.LockBatchMQ, clientID, mqs...)
	var body struct {
		LockOKMQSet []protocol.MessageQueue `json:"lockOKMQSet"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.LockOKMQSet == nil {
		t.Fatalf("body %s: %v", resp.Body, err)
	}
	return body.LockOKMQSet
}

func unlockQueues(t *testing.T, c *remoting.Client, clientID string, mqs ...protocol.MessageQueue) {
	t.Helper()
	lockReq(t, c, protocol.UnlockBatchMQ, clientID, mqs...)
}

func wantQueues(t *testing.T, got []protocol.MessageQueue, want ...protocol.MessageQueue) {
	t.Helper()
	if len(want) == 0 {
		want = []protocol.MessageQueue{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("locked %v, want %v", got, want)
	}
}

func TestQueueLocks(t *testing.T) {
	b, c1 := startBroker(t, func(cfg *Config) { cfg.LockMaxLiveTime = 500 * time.Millisecond })
	addTopic(t, b, "T", 3)
	c2, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()

	wantQueues(t, lockQueues(t, c1, "A", testMQ(0), testMQ(1), testMQ(1)), testMQ(0), testMQ(1))
	wantQueues(t, lockQueues(t, c2, "B", testMQ(1), testMQ(2)), testMQ(2)) // q1 is A's
	wantQueues(t, lockQueues(t, c1, "A", testMQ(1)), testMQ(1))            // refresh by owner
	unlockQueues(t, c2, "B", testMQ(1))                                    // not B's: kept
	wantQueues(t, lockQueues(t, c2, "B", testMQ(1)))
	unlockQueues(t, c1, "A", testMQ(1))
	wantQueues(t, lockQueues(t, c2, "B", testMQ(1)), testMQ(1))

	// Expiry: A stops refreshing q0, B takes it over afterwards.
	wantQueues(t, lockQueues(t, c2, "B", testMQ(0)))
	time.Sleep(550 * time.Millisecond)
	wantQueues(t, lockQueues(t, c2, "B", testMQ(0)), testMQ(0))
	if owner := b.locks.Owner("g", testMQ(0), time.Now()); owner != "B" {
		t.Fatalf("owner %q", owner)
	}

	bad := protocol.NewRequest(protocol.LockBatchMQ, nil)
	bad.Body = []byte("not json")
	if resp := call(t, c1, bad); resp.Code != protocol.ResponseSystemError {
		t.Fatalf("bad body: %d", resp.Code)
	}
}
