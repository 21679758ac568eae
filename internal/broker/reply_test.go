package broker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// requester dials b as a producer client with client id id whose
// PUSH_REPLY_MESSAGE_TO_CLIENT handler answers code and hands each push
// to got.
func requester(t *testing.T, b *Broker, id string, code int16) (*remoting.Client, chan *protocol.Command) {
	t.Helper()
	c, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{Mux: remoting.NewMux()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan *protocol.Command, 4)
	c.Handle(protocol.PushReplyMessageToClient, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		got <- req
		return protocol.NewResponse(req, code, "")
	})
	hb := &protocol.HeartbeatData{ClientID: id, ProducerDataSet: []protocol.ProducerData{{GroupName: "requesters"}}}
	body, _ := hb.Encode()
	rawHeartbeat(t, c, body)
	return c, got
}

// replyReq is a SEND_REPLY_MESSAGE_V2 as the Java client sends it
// (MessageUtil.createReplyMessage: REPLY_TO_CLIENT, CORRELATION_ID, TTL,
// MSG_TYPE=reply) to <cluster>_REPLY_TOPIC.
func replyReq(to, body string) *protocol.Command {
	props := map[string]string{"CORRELATION_ID": "corr-1", "TTL": "3000", "MSG_TYPE": "reply", "CLUSTER": "DefaultCluster"}
	if to != "" {
		props[propReplyToClient] = to
	}
	h := &protocol.SendMessageRequestHeader{ProducerGroup: "replier", Topic: "DefaultCluster_REPLY_TOPIC",
		DefaultTopic: "TBW102", DefaultTopicQueueNums: 4, QueueID: 0, BornTimestamp: 1700000000000,
		Properties: message.EncodeProperties(props)}
	req := protocol.NewRequest(protocol.SendReplyMessageV2, nil)
	req.ExtFields = h.EncodeV2()
	req.Body = []byte(body)
	return req
}

func TestReplyPushedAndStored(t *testing.T) {
	b, c := startBroker(t, nil)
	_, got := requester(t, b, "10.0.0.9@req", protocol.ResponseSuccess)
	resp := call(t, c, replyReq("10.0.0.9@req", "re:ping"))
	if resp.Code != protocol.ResponseSuccess {
		t.Fatalf("reply: %d %s", resp.Code, resp.Remark)
	}
	var rh protocol.SendMessageResponseHeader
	if err := rh.Decode(resp.ExtFields); err != nil || rh.MsgID == "0" || rh.QueueOffset != 0 {
		t.Fatalf("response header %+v %v: want the stored record's msgId", rh, err)
	}
	push := <-got
	var ph protocol.ReplyMessageRequestHeader
	if err := ph.Decode(push.ExtFields); err != nil {
		t.Fatal(err)
	}
	props := message.ParseProperties(ph.Properties)
	if ph.Topic != "DefaultCluster_REPLY_TOPIC" || props["CORRELATION_ID"] != "corr-1" ||
		props[propPushReplyTime] == "" || string(push.Body) != "re:ping" || ph.StoreHost != b.Addr() ||
		!strings.HasPrefix(ph.BornHost, "127.0.0.1:") || ph.StoreTimestamp == 0 || ph.BornTimestamp != 1700000000000 {
		t.Fatalf("push %+v body %q", ph, push.Body)
	}
	// The dispatcher builds the consume queue just after the put returns.
	n := b.store.MaxOffsetInQueue("DefaultCluster_REPLY_TOPIC", 0)
	for deadline := time.Now().Add(5 * time.Second); n < 1 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		n = b.store.MaxOffsetInQueue("DefaultCluster_REPLY_TOPIC", 0)
	}
	if n != 1 {
		t.Fatalf("stored replies %d, want 1", n)
	}
}

func TestReplyNotStored(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.StoreReplyMessageEnable = false })
	_, got := requester(t, b, "req@2", protocol.ResponseSuccess)
	resp := call(t, c, replyReq("req@2", "x"))
	var rh protocol.SendMessageResponseHeader
	if err := rh.Decode(resp.ExtFields); resp.Code != 0 || err != nil || rh.MsgID != "0" {
		t.Fatalf("reply: %d %s %+v %v", resp.Code, resp.Remark, rh, err)
	}
	<-got
	// Let the dispatcher reach the log's end, so a stored reply would show.
	for deadline := time.Now().Add(5 * time.Second); b.store.Dispatched() < b.store.WrittenOffset() && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	if n := b.store.MaxOffsetInQueue("DefaultCluster_REPLY_TOPIC", 0); n != 0 {
		t.Fatalf("stored replies %d with storeReplyMessageEnable=false", n)
	}
}

func TestReplyRefusals(t *testing.T) {
	b, c := startBroker(t, nil)
	requester(t, b, "req@fails", protocol.ResponseSystemError)
	for _, tc := range []struct {
		to, remark string
	}{
		{"", "reply message properties[REPLY_TO_CLIENT] is null"},
		{"nobody@1", "push reply message fail, channel of <nobody@1> not found."},
		{"req@fails", "push reply message to req@failsfail."},
		{strings.Repeat("x", 5000), "push reply message fail, channel of <" + strings.Repeat("x", 64)},
	} {
		resp := call(t, c, replyReq(tc.to, "x"))
		if resp.Code != protocol.ResponseSystemError || !strings.HasPrefix(resp.Remark, tc.remark) || len(resp.Remark) > 200 {
			t.Errorf("to %.20q: %d %q, want 1 %q", tc.to, resp.Code, resp.Remark, tc.remark)
		}
	}
	// A closed requester is forgotten with its connection.
	rc, _ := requester(t, b, "req@gone", protocol.ResponseSuccess)
	rc.Close()
	for deadline := time.Now().Add(5 * time.Second); b.producers.FindConn("req@gone") != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("closed requester still found")
		}
	}
	resp := call(t, c, replyReq("req@gone", "x"))
	if resp.Code != protocol.ResponseSystemError || !strings.Contains(resp.Remark, "not found") {
		t.Fatalf("closed requester: %d %s", resp.Code, resp.Remark)
	}
	// Bounded like a send: a bad topic name is refused before anything.
	bad := replyReq("req@fails", "x")
	bad.ExtFields["b"] = "bad topic!"
	if resp := call(t, c, bad); resp.Code != protocol.ResponseSystemError || !strings.Contains(resp.Remark, "topic") {
		t.Fatalf("bad topic: %d %s", resp.Code, resp.Remark)
	}
}

// The client-id index holds one entry per registered connection, whatever
// client ids its heartbeats name.
func TestProducerClientIndexBounded(t *testing.T) {
	b, _ := startBroker(t, nil)
	c, _ := requester(t, b, "first", protocol.ResponseSuccess)
	for i := range 50 {
		hb := &protocol.HeartbeatData{ClientID: "id" + strings.Repeat("x", i),
			ProducerDataSet: []protocol.ProducerData{{GroupName: "requesters"}}}
		body, _ := hb.Encode()
		rawHeartbeat(t, c, body)
	}
	b.producers.mu.RLock()
	n := len(b.producers.byClient)
	b.producers.mu.RUnlock()
	if n != 1 {
		t.Fatalf("client index has %d entries for one connection", n)
	}
	if b.producers.FindConn("first") != nil {
		t.Fatal("a replaced client id still finds the connection")
	}
}

// A request sent before the requester's first heartbeat still gets its
// reply: the request's connection is the requester's. A reply sent as a
// plain message (MSG_TYPE=reply) teaches nothing.
func TestReplyToRequestBeforeHeartbeat(t *testing.T) {
	b, c := startBroker(t, nil)
	rc, err := remoting.Dial(context.Background(), b.Addr(), remoting.ClientConfig{Mux: remoting.NewMux()})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := make(chan *protocol.Command, 1)
	rc.Handle(protocol.PushReplyMessageToClient, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		got <- req
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	})
	send := func(cl *remoting.Client, props map[string]string) {
		h := goSendHeaderFor("RequestTopic", message.EncodeProperties(props))
		req := protocol.NewRequest(protocol.SendMessageV2, nil)
		req.ExtFields = h.EncodeV2()
		req.Body = []byte("ping")
		if resp := call(t, cl, req); resp.Code != protocol.ResponseSuccess {
			t.Fatalf("send: %d %s", resp.Code, resp.Remark)
		}
	}
	// A replier's connection sending a reply as a plain message must not
	// become the requester's.
	send(c, map[string]string{propReplyToClient: "req@early", propCorrelationID: "x", propMsgType: "reply"})
	if b.producers.FindConn("req@early") != nil {
		t.Fatal("a reply message taught the requester's connection")
	}
	send(rc, map[string]string{propReplyToClient: "req@early", propCorrelationID: "corr-1", "TTL": "3"})
	if resp := call(t, c, replyReq("req@early", "re:ping")); resp.Code != protocol.ResponseSuccess {
		t.Fatalf("reply: %d %s", resp.Code, resp.Remark)
	}
	if push := <-got; string(push.Body) != "re:ping" {
		t.Fatalf("pushed %q", push.Body)
	}
}

func goSendHeaderFor(topic, props string) *protocol.SendMessageRequestHeader {
	return &protocol.SendMessageRequestHeader{ProducerGroup: "pg", Topic: topic, DefaultTopic: "TBW102",
		DefaultTopicQueueNums: 4, QueueID: -1, BornTimestamp: 1700000000000, Properties: props}
}

// A requester that reads nothing does not collect replies: once its
// connection's byte budget is full, replies to it are refused instead of
// queued (each would stay queued after its handler gave up).
func TestReplyToStalledRequesterBounded(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.MaxQueuedBytesPerConnection = 1 << 20 })
	rc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// A producer heartbeat written raw; the requester never reads again.
	hb := &protocol.HeartbeatData{ClientID: "req@stalled", ProducerDataSet: []protocol.ProducerData{{GroupName: "requesters"}}}
	req := protocol.NewRequest(protocol.HeartBeat, nil)
	req.Body, _ = hb.Encode()
	frame, _ := req.Encode()
	if _, err := rc.Write(frame); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, "requester registered", func() bool { return b.producers.FindConn("req@stalled") != nil })
	body := strings.Repeat("x", 256<<10)
	var wg sync.WaitGroup
	codes := make(chan int16, 40)
	for range 40 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := c.Invoke(ctx, replyReq("req@stalled", body))
			if err != nil {
				t.Error(err)
				return
			}
			codes <- resp.Code
		})
	}
	// The socket's buffers take a few pushes, the budget a few more; the
	// rest are refused at once (the pushed ones wait for the requester).
	awaitCond(t, "replies refused", func() bool { return len(codes) >= 20 })
	if q := b.producers.FindConn("req@stalled").BufferedBytes(); q > 1<<20+300<<10 {
		t.Fatalf("%d bytes queued for a requester that reads nothing (budget 1 MiB)", q)
	}
	for range 20 {
		if code := <-codes; code != protocol.ResponseSystemError {
			t.Fatalf("reply to a stalled requester answered %d", code)
		}
	}
	rc.Close() // the waiting pushes fail with the connection
	wg.Wait()
}

// A learned requester's client id is kept as its own string: the typed send
// header's properties alias a buffer the next request decoded into the same
// recycled Command overwrites (protocol.Command.Recycle). The requests run
// as remoting's read loop and workers run them, on one goroutine so that
// the pools hand the same buffer back.
func TestLearnedRequesterOutlivesRecycledProperties(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	b, c := startBroker(t, nil)
	call(t, c, protocol.NewRequest(protocol.GetBrokerConfig, nil)) // the server has c's connection now
	conns := b.server.Conns()
	if len(conns) != 1 {
		t.Fatalf("%d server connections", len(conns))
	}
	handler := b.server.Handler(protocol.SendMessageV2)
	send := func(props string) {
		req := protocol.NewRequest(protocol.SendMessageV2, nil)
		req.ExtFields = goSendHeaderFor("RequestTopic", props).EncodeV2()
		req.Body = []byte("ping")
		cmd := readAsServer(t, req)
		if _, typed := cmd.SendHeader(); !typed {
			t.Fatal("send header not typed")
		}
		// nil: the answer waits for durability and goes to c's
		// connection, where no call waits for it (dropped).
		resp := handler(context.Background(), conns[0], cmd)
		if resp != nil && resp.Code != protocol.ResponseSuccess {
			t.Fatalf("send: %d %s", resp.Code, resp.Remark)
		}
		cmd.Recycle()
		if resp != nil {
			resp.Recycle()
		}
	}
	for i := range 5 {
		id := fmt.Sprintf("req@kee%d", i)
		send("REPLY_TO_CLIENT\x01" + id + "\x02CORRELATION_ID\x01c1")
		for range 10 { // same length, same place: not learnable (the key is misspelt)
			send("REPLY_TO_CLIENT\x01zzz@zzzz\x02CORRELATIOX_ID\x01c1")
		}
		if b.producers.FindConn(id) == nil {
			t.Fatalf("requester %s forgotten", id)
		}
		b.producers.mu.RLock()
		got := b.producers.clientOf[conns[0]]
		b.producers.mu.RUnlock()
		if got != id {
			t.Fatalf("learned client id %s changed to %q", id, got)
		}
	}
}

// readAsServer encodes req and decodes it as the broker's read loop does
// (typed send headers).
func readAsServer(t *testing.T, req *protocol.Command) *protocol.Command {
	t.Helper()
	frame, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := protocol.DecodeRequestFrame(frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}
