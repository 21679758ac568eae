package namesrv

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

func TestRegisterThenRoute(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)

	sys := topic("U", 8, 2, 6)
	sys.TopicSysFlag = 1
	resp := register(t, c, with(brokerA, topic("T", 4, 4, 6), sys))
	if resp.Ext("masterAddr") != "" || resp.Ext("haServerAddr") != "" {
		t.Fatalf("master registration got ext %v", resp.ExtFields)
	}
	if len(resp.Body) != 0 {
		t.Fatalf("register body %q, want empty without ORDER_TOPIC_CONFIG", resp.Body)
	}

	// Exact compact bytes, as the Go client's splitter needs them (Java's TopicRouteData).
	got := routeResp(t, c, "T")
	expectCode(t, got, protocol.ResponseSuccess)
	want := `{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],` +
		`"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,` +
		`"topicSysFlag":0,"topicSynFlag":0,"writeQueueNums":4}]}`
	if string(got.Body) != want {
		t.Fatalf("route body\n got %s\nwant %s", got.Body, want)
	}

	rd := route(t, c, "U")
	if len(rd.QueueDatas) != 1 || len(rd.BrokerDatas) != 1 {
		t.Fatalf("route U = %+v", rd)
	}
	q := rd.QueueDatas[0]
	if q.BrokerName != "broker-a" || q.ReadQueueNums != 8 || q.WriteQueueNums != 2 || q.Perm != 6 || q.TopicSysFlag != 1 {
		t.Fatalf("queue data %+v", q)
	}
	b := rd.BrokerDatas[0]
	if b.Cluster != "DefaultCluster" || b.BrokerName != "broker-a" ||
		!maps.Equal(b.BrokerAddrs, map[int64]string{0: "10.0.0.1:10911"}) {
		t.Fatalf("broker data %+v", b)
	}
	if rd.FilterServerTable == nil || len(rd.FilterServerTable) != 0 || rd.OrderTopicConf != "" {
		t.Fatalf("filterServerTable %v orderTopicConf %q", rd.FilterServerTable, rd.OrderTopicConf)
	}
}

func TestRouteUnknownTopic(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	register(t, c, with(brokerA, topic("T", 4, 4, 6)))
	resp := routeResp(t, c, "Nope")
	expectCode(t, resp, protocol.ResponseTopicNotExist)
	want := "No topic route info in name server for the topic: Nope\nSee http://rocketmq.apache.org/docs/faq/ for further details."
	if resp.Remark != want {
		t.Fatalf("remark %q", resp.Remark)
	}
	if len(resp.Body) != 0 {
		t.Fatalf("body %q", resp.Body)
	}
}

func TestRegisterCRC(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)

	good := with(brokerA, topic("T", 4, 4, 6))
	good.crc = true
	register(t, c, good)
	route(t, c, "T")

	bad := with(brokerB, topic("X", 4, 4, 6))
	h, body := bad.header(), bad.body(t)
	h.BodyCrc32 = bodyCRC(body) ^ 1
	resp := call(t, c, protocol.RegisterBroker, h, body)
	expectCode(t, resp, protocol.ResponseSystemError)
	if resp.Remark != "crc32 not match" {
		t.Fatalf("remark %q", resp.Remark)
	}
	expectCode(t, routeResp(t, c, "X"), protocol.ResponseTopicNotExist)
	if _, ok := clusterInfo(t, c).BrokerAddrTable["broker-b"]; ok {
		t.Fatal("broker-b registered despite the crc mismatch")
	}
	// The mask: a CRC with the top bit set must still match.
	if v := bodyCRC([]byte("a")); v < 0 {
		t.Fatalf("bodyCRC not masked: %d", v)
	}
}

func TestSlaveRegistration(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)

	slave := with(brokerA, topic("SlaveOnly", 4, 4, 6))
	slave.id, slave.addr, slave.ha = 1, "10.0.0.9:10911", "10.0.0.9:10912"
	resp := register(t, c, slave)
	if resp.Ext("masterAddr") != "" || resp.Ext("haServerAddr") != "" {
		t.Fatalf("slave without master got %v", resp.ExtFields)
	}
	// Slaves never write topic queue data.
	expectCode(t, routeResp(t, c, "SlaveOnly"), protocol.ResponseTopicNotExist)

	register(t, c, with(brokerA, topic("T", 4, 4, 6)))
	resp = register(t, c, slave)
	var rh protocol.RegisterBrokerResponseHeader
	if err := rh.Decode(resp.ExtFields); err != nil {
		t.Fatal(err)
	}
	if rh.MasterAddr != brokerA.addr || rh.HaServerAddr != brokerA.ha {
		t.Fatalf("slave response %+v, want master %s ha %s", rh, brokerA.addr, brokerA.ha)
	}
	rd := route(t, c, "T")
	want := map[int64]string{0: brokerA.addr, 1: slave.addr}
	if !maps.Equal(rd.BrokerDatas[0].BrokerAddrs, want) {
		t.Fatalf("brokerAddrs %v, want %v", rd.BrokerDatas[0].BrokerAddrs, want)
	}
	expectCode(t, routeResp(t, c, "SlaveOnly"), protocol.ResponseTopicNotExist)
	// The master registering again does not get master fields.
	if resp := register(t, c, with(brokerA, topic("T", 4, 4, 6))); resp.Ext("masterAddr") != "" {
		t.Fatalf("master got masterAddr %q", resp.Ext("masterAddr"))
	}
}

func TestSlaveToMasterSwitch(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)

	master := with(brokerA, topic("T", 4, 4, 6))
	slave := with(brokerA, topic("T", 4, 4, 6))
	slave.id, slave.addr, slave.ha = 1, "10.0.0.9:10911", "10.0.0.9:10912"
	register(t, c, master)
	register(t, c, slave)
	unregister(t, c, master)

	// The slave is promoted: same address under id 0; the id 1 entry goes.
	promoted := slave
	promoted.id = 0
	promoted.version.Counter++
	register(t, c, promoted)
	rd := route(t, c, "T")
	want := map[int64]string{0: slave.addr}
	if !maps.Equal(rd.BrokerDatas[0].BrokerAddrs, want) {
		t.Fatalf("brokerAddrs %v, want %v", rd.BrokerDatas[0].BrokerAddrs, want)
	}
}

func TestDataVersionUnchangedSkipsTopics(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)

	register(t, c, with(brokerA, topic("A", 4, 4, 6)))
	// Same DataVersion, more topics: not re-applied (Java only applies on
	// the first registration or a changed version).
	register(t, c, with(brokerA, topic("A", 8, 8, 6), topic("B", 4, 4, 6)))
	expectCode(t, routeResp(t, c, "B"), protocol.ResponseTopicNotExist)
	if q := route(t, c, "A").QueueDatas[0]; q.ReadQueueNums != 4 {
		t.Fatalf("A re-applied with an unchanged version: %+v", q)
	}

	// A changed version applies the table, upserting; topics missing from
	// the body stay.
	next := with(brokerA, topic("B", 4, 4, 6))
	next.version.Counter++
	register(t, c, next)
	route(t, c, "B")
	if q := route(t, c, "A").QueueDatas[0]; q.ReadQueueNums != 4 {
		t.Fatalf("A changed: %+v", q)
	}
}

func TestCompressedRegister(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	b := with(brokerA, topic("Z1", 3, 5, 6), topic("Z2", 16, 16, 4))
	b.compressed, b.crc = true, true
	register(t, c, b)
	q := route(t, c, "Z1").QueueDatas[0]
	if q.ReadQueueNums != 3 || q.WriteQueueNums != 5 || q.Perm != 6 {
		t.Fatalf("Z1 %+v", q)
	}
	if q := route(t, c, "Z2").QueueDatas[0]; q.Perm != 4 || q.ReadQueueNums != 16 {
		t.Fatalf("Z2 %+v", q)
	}

	// A broken compressed body is refused with SYSTEM_ERROR.
	h := brokerB.header()
	h.Compressed = true
	expectCode(t, call(t, c, protocol.RegisterBroker, h, []byte("not zlib")), protocol.ResponseSystemError)
}

func TestRegisterWithoutBody(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	resp := call(t, c, protocol.RegisterBroker, brokerA.header(), nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	if _, ok := clusterInfo(t, c).BrokerAddrTable["broker-a"]; !ok {
		t.Fatal("broker-a not registered")
	}
	// Registered version is zero.
	changed := queryDataVersion(t, c, brokerA, protocol.DataVersion{})
	if changed {
		t.Fatal("zero version reported as changed")
	}
}

func TestTwoBrokerNamesOneTopic(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	register(t, c, with(brokerB, topic("T", 2, 2, 6)))
	register(t, c, with(brokerA, topic("T", 4, 4, 6)))
	other := with(brokerA, topic("Other", 1, 1, 6))
	other.name, other.addr = "broker-c", "10.0.0.3:10911"
	register(t, c, other)

	rd := route(t, c, "T")
	qs, bs := brokerNames(rd)
	expectNames(t, "queueDatas", qs, "broker-a", "broker-b")
	expectNames(t, "brokerDatas", bs, "broker-a", "broker-b") // not broker-c
	if rd.QueueDatas[0].ReadQueueNums != 4 || rd.QueueDatas[1].ReadQueueNums != 2 {
		t.Fatalf("queue datas %+v", rd.QueueDatas)
	}

	unregister(t, c, brokerB)
	qs, bs = brokerNames(route(t, c, "T"))
	expectNames(t, "queueDatas", qs, "broker-a")
	expectNames(t, "brokerDatas", bs, "broker-a")
}

func TestUnregister(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	master := with(brokerA, topic("T", 4, 4, 6))
	slave := master
	slave.id, slave.addr = 1, "10.0.0.9:10911"
	register(t, c, master)
	register(t, c, slave)

	unregister(t, c, slave)
	if got := route(t, c, "T").BrokerDatas[0].BrokerAddrs; !maps.Equal(got, map[int64]string{0: master.addr}) {
		t.Fatalf("after slave unregister: %v", got)
	}
	// A stale unregister naming another address for id 0 is ignored.
	stale := master
	stale.addr = "10.9.9.9:10911"
	unregister(t, c, stale)
	route(t, c, "T")

	unregister(t, c, master)
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseTopicNotExist)
	ci := clusterInfo(t, c)
	if len(ci.BrokerAddrTable) != 0 || len(ci.ClusterAddrTable) != 0 {
		t.Fatalf("cluster info after unregister: %+v", ci)
	}
}

func TestClusterInfo(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	register(t, c, with(brokerA, topic("T", 4, 4, 6)))
	register(t, c, with(brokerB, topic("T", 4, 4, 6)))
	other := brokerB
	other.cluster, other.name, other.addr = "Other", "broker-o", "10.0.1.1:10911"
	register(t, c, other)

	resp := call(t, c, protocol.GetBrokerClusterInfo, nil, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	want := `{"brokerAddrTable":{` +
		`"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"},` +
		`"broker-b":{"brokerAddrs":{"0":"10.0.0.2:10911"},"brokerName":"broker-b","cluster":"DefaultCluster"},` +
		`"broker-o":{"brokerAddrs":{"0":"10.0.1.1:10911"},"brokerName":"broker-o","cluster":"Other"}},` +
		`"clusterAddrTable":{"DefaultCluster":["broker-a","broker-b"],"Other":["broker-o"]}}`
	if string(resp.Body) != want {
		t.Fatalf("cluster info\n got %s\nwant %s", resp.Body, want)
	}
	ci := clusterInfo(t, c)
	if ci.BrokerAddrTable["broker-o"].Cluster != "Other" || len(ci.ClusterAddrTable["DefaultCluster"]) != 2 {
		t.Fatalf("decoded %+v", ci)
	}
	if got := s.ClusterInfo(); len(got.BrokerAddrTable) != 3 {
		t.Fatalf("Server.ClusterInfo %+v", got)
	}
}

// decodeTopicList decodes a TopicList body the way the Go admin client
// does (encoding/json).
func decodeTopicList(t *testing.T, resp *protocol.Command) []string {
	t.Helper()
	expectCode(t, resp, protocol.ResponseSuccess)
	var tl struct {
		TopicList []string `json:"topicList"`
	}
	if err := json.Unmarshal(resp.Body, &tl); err != nil {
		t.Fatalf("topic list %q: %v", resp.Body, err)
	}
	return tl.TopicList
}

func TestTopicLists(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	if got := decodeTopicList(t, call(t, c, protocol.GetAllTopicListFromNameserver, nil, nil)); len(got) != 0 {
		t.Fatalf("empty namesrv lists %q", got)
	}
	register(t, c, with(brokerA, topic("T1", 4, 4, 6), topic("T2", 4, 4, 6)))
	register(t, c, with(brokerB, topic("T1", 4, 4, 6), topic("T3", 4, 4, 6)))
	other := with(brokerB, topic("T4", 1, 1, 6))
	other.cluster, other.name, other.addr = "Other", "broker-o", "10.0.1.1:10911"
	register(t, c, other)

	all := decodeTopicList(t, call(t, c, protocol.GetAllTopicListFromNameserver, nil, nil))
	expectNames(t, "all topics", all, "T1", "T2", "T3", "T4")
	byCluster := decodeTopicList(t, call(t, c, protocol.GetTopicsByCluster,
		&protocol.GetTopicsByClusterRequestHeader{Cluster: "DefaultCluster"}, nil))
	expectNames(t, "DefaultCluster topics", byCluster, "T1", "T2", "T3")
	none := decodeTopicList(t, call(t, c, protocol.GetTopicsByCluster,
		&protocol.GetTopicsByClusterRequestHeader{Cluster: "Missing"}, nil))
	expectNames(t, "Missing topics", none)
}

func TestDeleteTopic(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	register(t, c, with(brokerA, topic("T", 4, 4, 6), topic("Keep", 4, 4, 6)))
	other := with(brokerB, topic("T", 4, 4, 6))
	other.cluster = "Other"
	register(t, c, other)

	// Only the Other cluster's queue data.
	resp := call(t, c, protocol.DeleteTopicInNamesrv,
		&protocol.DeleteTopicFromNamesrvRequestHeader{Topic: "T", ClusterName: "Other"}, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	qs, bs := brokerNames(route(t, c, "T"))
	expectNames(t, "queueDatas", qs, "broker-a")
	expectNames(t, "brokerDatas", bs, "broker-a")

	// The whole topic.
	resp = call(t, c, protocol.DeleteTopicInNamesrv, &protocol.DeleteTopicFromNamesrvRequestHeader{Topic: "T"}, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseTopicNotExist)
	route(t, c, "Keep")

	// An unchanged re-registration does not bring it back; a changed one
	// does (the broker still has it).
	register(t, c, with(brokerA, topic("T", 4, 4, 6), topic("Keep", 4, 4, 6)))
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseTopicNotExist)
	next := with(brokerA, topic("T", 4, 4, 6))
	next.version.Counter++
	register(t, c, next)
	route(t, c, "T")
}

func queryDataVersion(t *testing.T, c interface {
	Invoke(context.Context, *protocol.Command) (*protocol.Command, error)
}, b broker, v protocol.DataVersion) bool {
	t.Helper()
	req := protocol.NewRequest(protocol.QueryDataVersion, &protocol.QueryDataVersionRequestHeader{
		BrokerName: b.name, BrokerAddr: b.addr, ClusterName: b.cluster, BrokerID: b.id,
	})
	req.Body, _ = json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, resp, protocol.ResponseSuccess)
	var h protocol.QueryDataVersionResponseHeader
	if err := h.Decode(resp.ExtFields); err != nil {
		t.Fatal(err)
	}
	return h.Changed
}

func TestQueryDataVersion(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	if !queryDataVersion(t, c, brokerA, brokerA.version) {
		t.Fatal("unknown broker: changed = false")
	}
	register(t, c, with(brokerA, topic("T", 4, 4, 6)))
	if queryDataVersion(t, c, brokerA, brokerA.version) {
		t.Fatal("same version: changed = true")
	}
	v := brokerA.version
	v.Counter++
	if !queryDataVersion(t, c, brokerA, v) {
		t.Fatal("new version: changed = false")
	}
	// The body is the registered version, fastjson key order.
	req := protocol.NewRequest(protocol.QueryDataVersion, &protocol.QueryDataVersionRequestHeader{
		BrokerName: brokerA.name, BrokerAddr: brokerA.addr, ClusterName: brokerA.cluster,
	})
	req.Body = []byte(`{"counter":1,"timestamp":1700000000000}`)
	resp, err := c.Invoke(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != `{"counter":1,"timestamp":1700000000000}` || resp.Ext("changed") != "false" {
		t.Fatalf("query data version: ext %v body %s", resp.ExtFields, resp.Body)
	}
}

func TestWritePerm(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	register(t, c, with(brokerA, topic("T1", 4, 4, 6), topic("T2", 4, 4, 7)))
	register(t, c, with(brokerB, topic("T1", 4, 4, 6)))

	resp := call(t, c, protocol.WipeWritePermOfBroker, &protocol.BrokerNameHeader{BrokerName: "broker-a"}, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	if resp.Ext("wipeTopicCount") != "2" {
		t.Fatalf("wipe ext %v", resp.ExtFields)
	}
	rd := route(t, c, "T1")
	if rd.QueueDatas[0].Perm != 4 || rd.QueueDatas[1].Perm != 6 {
		t.Fatalf("after wipe %+v", rd.QueueDatas)
	}
	if p := route(t, c, "T2").QueueDatas[0].Perm; p != 5 {
		t.Fatalf("T2 perm after wipe %d, want 5", p)
	}

	resp = call(t, c, protocol.AddWritePermOfBroker, &protocol.BrokerNameHeader{BrokerName: "broker-a"}, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	if resp.Ext("addTopicCount") != "2" {
		t.Fatalf("add ext %v", resp.ExtFields)
	}
	// Java sets READ|WRITE outright.
	if p := route(t, c, "T2").QueueDatas[0].Perm; p != 6 {
		t.Fatalf("T2 perm after add %d, want 6", p)
	}
}

func TestBadRequests(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	expectCode(t, call(t, c, 999, nil, nil), protocol.ResponseRequestCodeNotSupported)
	resp := call(t, c, protocol.GetRouteInfoByTopic, nil, nil)
	expectCode(t, resp, protocol.ResponseSystemError)
	if resp.Remark == "" {
		t.Fatal("missing-field error without remark")
	}
	h := brokerA.header()
	req := h.Encode()
	delete(req, "brokerId")
	cmd := protocol.NewRequest(protocol.RegisterBroker, nil)
	cmd.ExtFields = req
	got, err := c.Invoke(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, got, protocol.ResponseSystemError)
}

func TestLifecycle(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0", Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Fatalf("Addr before Start = %q", s.Addr())
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() == "" {
		t.Fatal("no Addr after Start")
	}
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}

	// Shutdown without Start.
	s2, err := New(Config{Addr: "127.0.0.1:0", Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
