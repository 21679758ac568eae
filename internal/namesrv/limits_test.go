package namesrv

import (
	"math"
	"strings"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

func TestKVConfigLimits(t *testing.T) {
	s := startNS(t, Config{MaxKVEntries: 2, MaxKVEntryBytes: 100})
	c := dialNS(t, s)
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns", "a", "1"), protocol.ResponseSuccess)
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns2", "b", "2"), protocol.ResponseSuccess)
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns", "c", "3"), protocol.ResponseSystemError)
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns", "a", "replaced"), protocol.ResponseSuccess) // not a new entry
	big := string(make([]byte, 100))
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns", "a", big), protocol.ResponseSystemError)
	if v, _ := s.kv.get("ns", "a"); v != "replaced" {
		t.Fatalf("value %q", v)
	}
}

// A registration cannot advertise more than MaxQueueNums queues: clients
// size their queue tables from routes.
func TestRegisterQueueNumsCapped(t *testing.T) {
	s := startNS(t, Config{MaxQueueNums: 64})
	c := dialNS(t, s)
	register(t, c, with(brokerA, topic("Huge", math.MaxInt32, 8, 6)))
	rd := route(t, c, "Huge")
	if q := rd.QueueDatas[0]; q.ReadQueueNums != 64 || q.WriteQueueNums != 8 {
		t.Fatalf("queue data %+v", q)
	}
}

// Negative queue numbers in a registration are clamped to 0: clients use
// them as slice lengths.
func TestRegisterNegativeQueueNumsClamped(t *testing.T) {
	s := startNS(t, Config{MaxQueueNums: 64})
	c := dialNS(t, s)
	register(t, c, with(brokerA, topic("Neg", -5, math.MinInt32, 6)))
	rd := route(t, c, "Neg")
	if len(rd.QueueDatas) != 1 {
		t.Fatalf("queue datas %+v", rd.QueueDatas)
	}
	if q := rd.QueueDatas[0]; q.ReadQueueNums != 0 || q.WriteQueueNums != 0 {
		t.Fatalf("queue data %+v", q)
	}
}

// A registration with more topics than MaxRegisterTopics is refused and
// the broker keeps its last registration (and stays in routes).
func TestRegisterTopicCountCapped(t *testing.T) {
	s := startNS(t, Config{MaxRegisterTopics: 2})
	c := dialNS(t, s)
	register(t, c, with(brokerA, topic("A", 4, 4, 6), topic("B", 4, 4, 6)))
	b := with(brokerA, topic("A", 4, 4, 6), topic("B", 4, 4, 6), topic("C", 4, 4, 6))
	resp := call(t, c, protocol.RegisterBroker, b.header(), b.body(t))
	if resp.Code != protocol.ResponseSystemError || !strings.Contains(resp.Remark, "limit 2") {
		t.Fatalf("3 topics, limit 2: %d %q", resp.Code, resp.Remark)
	}
	if rd := route(t, c, "B"); len(rd.BrokerDatas) != 1 {
		t.Fatalf("route of B after the refused registration: %+v", rd)
	}
	if resp := routeResp(t, c, "C"); resp.Code == protocol.ResponseSuccess {
		t.Fatal("topic C of the refused registration routed")
	}
}
