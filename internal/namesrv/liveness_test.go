package namesrv

import (
	"context"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func TestExpiry(t *testing.T) {
	s := startNS(t, Config{BrokerExpiry: 300 * time.Millisecond, ScanInterval: 20 * time.Millisecond})
	quiet := dialNS(t, s) // registers once, then says nothing
	alive := dialNS(t, s) // keeps refreshing through QUERY_DATA_VERSION
	q := dialNS(t, s)

	register(t, quiet, with(brokerA, topic("T", 4, 4, 6), topic("OnlyA", 4, 4, 6)))
	register(t, alive, with(brokerB, topic("T", 4, 4, 6)))
	start := time.Now()

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			req := protocol.NewRequest(protocol.QueryDataVersion, &protocol.QueryDataVersionRequestHeader{
				BrokerName: brokerB.name, BrokerAddr: brokerB.addr, ClusterName: brokerB.cluster,
			})
			req.Body = []byte(`{"counter":1,"timestamp":1700000000000}`)
			alive.InvokeAsync(t.Context(), req, func(*protocol.Command, error) {})
		}
	}()
	defer func() { close(stop); <-done }()

	eventually(t, "broker-a to expire", func() bool {
		_, ok := s.TopicRoute("OnlyA")
		return !ok
	})
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("broker-a expired after %v, before BrokerExpiry", el)
	}
	// Its connection is closed by the namesrv.
	select {
	case <-quiet.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("expired broker's connection still open")
	}
	// broker-b refreshed itself and stays; the topic shrinks to it.
	time.Sleep(200 * time.Millisecond)
	qs, bs := brokerNames(route(t, q, "T"))
	expectNames(t, "queueDatas", qs, "broker-b")
	expectNames(t, "brokerDatas", bs, "broker-b")
	ci := clusterInfo(t, q)
	expectNames(t, "cluster", ci.ClusterAddrTable["DefaultCluster"], "broker-b")
}

func TestConnCloseRemovesBroker(t *testing.T) {
	s := startNS(t, Config{})
	bc := dialNS(t, s)
	q := dialNS(t, s)

	slave := with(brokerA)
	slave.id, slave.addr = 1, "10.0.0.9:10911"
	register(t, bc, with(brokerA, topic("T", 4, 4, 6)))
	register(t, q, slave) // through another connection: survives
	register(t, q, with(brokerB, topic("U", 4, 4, 6)))
	route(t, q, "T")

	bc.Close()
	// The master's address goes; the brokerName stays while the slave is
	// registered, so the topic keeps its queue data.
	eventually(t, "master removal", func() bool {
		rd, ok := s.TopicRoute("T")
		return ok && len(rd.BrokerDatas[0].BrokerAddrs) == 1
	})
	if got := route(t, q, "T").BrokerDatas[0].BrokerAddrs; got[1] != slave.addr || got[0] != "" {
		t.Fatalf("brokerAddrs %v", got)
	}

	unregister(t, q, slave)
	expectCode(t, routeResp(t, q, "T"), protocol.ResponseTopicNotExist)
	route(t, q, "U")
}

func TestReregisterOnNewConnSurvivesOldClose(t *testing.T) {
	s := startNS(t, Config{})
	c1 := dialNS(t, s)
	c2 := dialNS(t, s)
	register(t, c1, with(brokerA, topic("T", 4, 4, 6)))
	register(t, c2, with(brokerA, topic("T", 4, 4, 6))) // broker reconnected
	c1.Close()
	<-c1.Done()
	time.Sleep(50 * time.Millisecond)
	route(t, c2, "T")
}

// TestRemovalRules exercises routeInfo directly: an address leaving its
// brokerName, an emptied brokerName leaving its cluster and topics.
func TestRemovalRules(t *testing.T) {
	r := newRouteInfo()
	now := time.Now()
	tc := map[string]protocol.TopicConfig{"T": topic("T", 4, 4, 6), "Only": topic("Only", 1, 1, 6)}
	r.register(registration{cluster: "C", name: "a", addr: "a0", id: 0, topics: tc}, now)
	r.register(registration{cluster: "C", name: "a", addr: "a1", id: 1}, now)
	r.register(registration{cluster: "C", name: "b", addr: "b0", id: 0,
		topics: map[string]protocol.TopicConfig{"T": topic("T", 2, 2, 6)}}, now.Add(time.Second))

	gone := r.expire(now.Add(time.Second+500*time.Millisecond), time.Second)
	if len(gone) != 2 {
		t.Fatalf("expired %+v", gone)
	}
	if _, ok := r.route("Only"); ok {
		t.Fatal("topic of a removed brokerName survives")
	}
	rd, ok := r.route("T")
	if !ok || len(rd.QueueDatas) != 1 || rd.QueueDatas[0].BrokerName != "b" {
		t.Fatalf("T after expiry %+v", rd)
	}
	ci := r.clusterInfo()
	expectNames(t, "cluster C", ci.ClusterAddrTable["C"], "b")

	r.expire(now.Add(time.Hour), time.Second)
	if ci := r.clusterInfo(); len(ci.ClusterAddrTable) != 0 || len(ci.BrokerAddrTable) != 0 {
		t.Fatalf("after full expiry %+v", ci)
	}
	if l := r.topicList(); len(l) != 0 {
		t.Fatalf("topics after full expiry %q", l)
	}
}

// TestRegisterOnClosedConnDropped covers the race where a registration is
// handled after its connection closed (and its close hook ran).
func TestRegisterOnClosedConnDropped(t *testing.T) {
	s := startNS(t, Config{})
	var conn *remoting.Conn
	got := make(chan struct{})
	// Capture a server-side Conn through a handler.
	s.remote.Handle(1234, func(_ context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
		conn = c
		close(got)
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	})
	c := dialNS(t, s)
	call(t, c, 1234, nil, nil)
	<-got
	c.Close()
	<-conn.Done()
	res := s.routes.register(registration{cluster: "C", name: "a", addr: "a0", conn: conn}, time.Now())
	if !res.dropped {
		t.Fatal("registration on a closed connection kept")
	}
	if len(s.routes.clusterInfo().BrokerAddrTable) != 0 {
		t.Fatal("ghost broker registered")
	}
}
