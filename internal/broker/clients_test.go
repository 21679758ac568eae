package broker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// notifyClient dials b with a handler recording NOTIFY_CONSUMER_IDS_CHANGED.
func notifyClient(t *testing.T, b *Broker) (*remoting.Client, <-chan string) {
	t.Helper()
	ch := make(chan string, 16)
	mux := remoting.NewMux()
	mux.Handle(protocol.NotifyConsumerIdsChanged, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		if !req.IsOneway() {
			t.Error("notify not oneway")
		}
		ch <- req.Ext("consumerGroup")
		return nil
	})
	c, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ch
}

func expectNotify(t *testing.T, ch <-chan string, group string) {
	t.Helper()
	select {
	case g := <-ch:
		if g != group {
			t.Fatalf("notified for %q, want %q", g, group)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no NOTIFY_CONSUMER_IDS_CHANGED")
	}
}

func expectNoNotify(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case g := <-ch:
		t.Fatalf("unexpected notify for %q", g)
	case <-time.After(50 * time.Millisecond):
	}
}

func consumerList(t *testing.T, c *remoting.Client, group string) (int16, []string) {
	t.Helper()
	resp := call(t, c, protocol.NewRequest(protocol.GetConsumerListByGroup, &protocol.ConsumerGroupHeader{ConsumerGroup: group}))
	if resp.Code != protocol.ResponseSuccess {
		if !strings.HasPrefix(resp.Remark, "no consumer for this group") {
			t.Errorf("remark %q", resp.Remark)
		}
		return resp.Code, nil
	}
	var body protocol.GetConsumerListByGroupResponseBody
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatal(err)
	}
	return resp.Code, body.ConsumerIDList
}

func TestHeartbeatRegistersGroupAndRetryTopic(t *testing.T) {
	b, c := startBroker(t, nil)
	if code, _ := consumerList(t, c, "cg"); code != protocol.ResponseSystemError {
		t.Fatalf("empty group: code %d", code)
	}
	sendHeartbeat(t, c, "10.0.0.1@1", "cg", subSpec{topic: "T", expr: "*"}, subSpec{topic: "%RETRY%cg", expr: "*"})
	tc, ok := b.topics.Get("%RETRY%cg")
	if !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 || tc.Perm != 6 {
		t.Fatalf("retry topic %+v %v", tc, ok)
	}
	found := false
	for _, g := range b.groups.Names() {
		found = found || g == "cg"
	}
	if !found {
		t.Fatal("group config not created")
	}
	if code, ids := consumerList(t, c, "cg"); code != 0 || len(ids) != 1 || ids[0] != "10.0.0.1@1" {
		t.Fatalf("consumer list %d %v", code, ids)
	}
	// Producers register too.
	hb := &protocol.HeartbeatData{ClientID: "p@1", ProducerDataSet: []protocol.ProducerData{{GroupName: "pg"}}}
	body, _ := hb.Encode()
	rawHeartbeat(t, c, body)
	if conn := b.producers.AvailableConn("pg"); conn == nil {
		t.Fatal("producer not registered")
	}
	bad := protocol.NewRequest(protocol.HeartBeat, nil)
	bad.Body = []byte("{")
	if resp := call(t, c, bad); resp.Code != protocol.ResponseSystemError {
		t.Fatalf("bad body: %d", resp.Code)
	}
}

func TestNotifyOnJoinLeaveAndClose(t *testing.T) {
	b, _ := startBroker(t, nil)
	c1, n1 := notifyClient(t, b)
	sendHeartbeat(t, c1, "id1", "g", subSpec{topic: "T", expr: "*"})
	expectNotify(t, n1, "g") // its own arrival
	sendHeartbeat(t, c1, "id1", "g", subSpec{topic: "T", expr: "*"})
	expectNoNotify(t, n1) // nothing changed

	c2, n2 := notifyClient(t, b)
	sendHeartbeat(t, c2, "id2", "g", subSpec{topic: "T", expr: "*"})
	expectNotify(t, n1, "g")
	expectNotify(t, n2, "g")
	if _, ids := consumerList(t, c1, "g"); strings.Join(ids, ",") != "id1,id2" {
		t.Fatalf("ids %v", ids)
	}

	c2.Close()
	expectNotify(t, n1, "g")
	if _, ids := consumerList(t, c1, "g"); strings.Join(ids, ",") != "id1" {
		t.Fatalf("after close: ids %v", ids)
	}

	c3, n3 := notifyClient(t, b)
	sendHeartbeat(t, c3, "id3", "g", subSpec{topic: "T", expr: "*"})
	expectNotify(t, n1, "g")
	expectNotify(t, n3, "g")
	unreg := protocol.NewRequest(protocol.UnregisterClient, &protocol.UnregisterClientRequestHeader{ClientID: "id3", ConsumerGroup: "g"})
	if resp := call(t, c3, unreg); resp.Code != 0 {
		t.Fatalf("unregister: %d", resp.Code)
	}
	expectNotify(t, n1, "g")
	if _, ids := consumerList(t, c1, "g"); strings.Join(ids, ",") != "id1" {
		t.Fatalf("after unregister: ids %v", ids)
	}
}

func TestNotifyDisabled(t *testing.T) {
	b, _ := startBroker(t, func(c *Config) { c.NotifyConsumerIdsChanged = false })
	c1, n1 := notifyClient(t, b)
	sendHeartbeat(t, c1, "id1", "g", subSpec{topic: "T", expr: "*"})
	expectNoNotify(t, n1)
}

func TestClientExpiry(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) {
		cfg.ChannelExpiredTimeout = 150 * time.Millisecond
		cfg.ClientScanInterval = 20 * time.Millisecond
		cfg.LockMaxLiveTime = 100 * time.Millisecond
	})
	c2, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	sendHeartbeat(t, c2, "gone", "g", subSpec{topic: "T", expr: "*"})
	b.locks.TryLock("g", "gone", []protocol.MessageQueue{{Topic: "T", BrokerName: "b", QueueID: 0}}, time.Now())
	select {
	case <-c2.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("expired client's connection not closed")
	}
	if code, _ := consumerList(t, c, "g"); code != protocol.ResponseSystemError {
		t.Fatalf("expired client still listed (code %d)", code)
	}
	waitFor(t, "lock expiry", func() bool {
		b.locks.mu.Lock()
		defer b.locks.mu.Unlock()
		return len(b.locks.groups) == 0
	})
}

func TestSubscriptionVersionRules(t *testing.T) {
	b, c := startBroker(t, nil)
	expr := func() map[string]string {
		info, _ := b.consumers.Group("g")
		out := map[string]string{}
		for topic, sd := range info.Subscriptions {
			out[topic] = sd.SubString
		}
		return out
	}
	sendHeartbeat(t, c, "id", "g", subSpec{topic: "T", expr: "a", version: 10}, subSpec{topic: "U", expr: "*", version: 10})
	sendHeartbeat(t, c, "id", "g", subSpec{topic: "T", expr: "b", version: 5}, subSpec{topic: "U", expr: "*", version: 10})
	if got := expr(); got["T"] != "a" {
		t.Fatalf("older subVersion replaced the subscription: %v", got)
	}
	sendHeartbeat(t, c, "id", "g", subSpec{topic: "T", expr: "b", version: 20}, subSpec{topic: "U", expr: "*", version: 10})
	if got := expr(); got["T"] != "b" {
		t.Fatalf("newer subVersion ignored: %v", got)
	}
	sendHeartbeat(t, c, "id", "g", subSpec{topic: "T", expr: "b", version: 20})
	if got := expr(); len(got) != 1 || got["T"] != "b" {
		t.Fatalf("absent topic not removed: %v", got)
	}
}

func TestConsumerConnectionList(t *testing.T) {
	_, c := startBroker(t, nil)
	req := protocol.NewRequest(protocol.GetConsumerConnectionList, &protocol.ConsumerGroupHeader{ConsumerGroup: "g"})
	if resp := call(t, c, req); resp.Code != protocol.ResponseConsumerNotOnline {
		t.Fatalf("offline group: %d", resp.Code)
	}
	sendHeartbeat(t, c, "id", "g", subSpec{topic: "T", expr: "x || y", version: 3})
	req = protocol.NewRequest(protocol.GetConsumerConnectionList, &protocol.ConsumerGroupHeader{ConsumerGroup: "g"})
	resp := call(t, c, req)
	var cc consumerConnection
	if err := json.Unmarshal(resp.Body, &cc); err != nil || resp.Code != 0 {
		t.Fatalf("%d %v %s", resp.Code, err, resp.Body)
	}
	if len(cc.ConnectionSet) != 1 || cc.ConnectionSet[0].ClientID != "id" || cc.MessageModel != "CLUSTERING" ||
		len(cc.SubscriptionTable["T"].CodeSet) != 2 {
		t.Fatalf("%s", resp.Body)
	}
}
