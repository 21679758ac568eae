package hostile

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// catalogue lists the attacks of issue 8. Add one by writing a function
// with attack.run's signature and naming it here.
var catalogue = []attack{
	{name: "sendback-huge-group-names", run: sendBackHugeGroupNames},
	{name: "compressed-register-count", run: compressedRegisterCount},
	{name: "batch-header-properties", run: batchHeaderProperties},
	{name: "retry-queue-nums-max", run: retryQueueNumsMax},
	{name: "unknown-group-flood", run: unknownGroupFlood},
	{name: "auto-create-topic-flood", run: autoCreateTopicFlood},
	{name: "offset-flood", run: offsetFlood},
	{name: "lock-flood", run: lockFlood},
	{name: "kv-config-flood", run: kvConfigFlood},
	{name: "pipelined-unread-queries", run: pipelinedUnreadQueries},
	{name: "parked-pulls-junk-bodies", run: parkedPullsJunkBodies},
	{name: "connection-flood", run: connectionFlood},
	{name: "json-register-tiny-entries", run: jsonRegisterTinyEntries},
	{name: "auto-create-kill9", run: autoCreateKill9},
}

func nothing() {}

// sendProbeRecord stores one message with props and body in the probe
// topic's queue qid and returns its commit-log offset.
func (m *mqd) sendProbeRecord(qid int32, props string, body []byte) int64 {
	m.t.Helper()
	req := protocol.NewRequest(protocol.SendMessage, &protocol.SendMessageRequestHeader{
		ProducerGroup: "hostile_producer", Topic: probeTopic, DefaultTopic: "TBW102", DefaultTopicQueueNums: 4,
		QueueID: qid, BornTimestamp: time.Now().UnixMilli(), Properties: props})
	req.Body = body
	resp := m.call(req, false)
	var h protocol.SendMessageResponseHeader
	if resp.Code != protocol.ResponseSuccess || h.Decode(resp.ExtFields) != nil {
		m.fatalf("send: code %d %s", resp.Code, resp.Remark)
	}
	_, off, err := message.ParseOffsetMsgID(h.MsgID)
	if err != nil {
		m.t.Fatal(err)
	}
	return off
}

// sendBackHugeGroupNames: CONSUMER_SEND_MSG_BACK (36) with 1.5 MB group
// names. Before the fix each created %RETRY%<group>: topics.json reached
// 18 MB, the next REGISTER_BROKER exceeded the nameserver's frame cap and
// the broker left every route, also after a restart.
func sendBackHugeGroupNames(t *testing.T, m *mqd) func() {
	off := m.sendProbeRecord(1, "", []byte("x"))
	for i := range 12 {
		group := strings.Repeat(string(rune('a'+i)), 1_500_000)
		m.call(protocol.NewRequest(protocol.ConsumerSendMsgBack, &protocol.ConsumerSendMsgBackRequestHeader{
			Offset: off, Group: group}), false)
	}
	if fi, err := os.Stat(filepath.Join(m.dir, "store", "config", "topics.json")); err == nil && fi.Size() > 1<<20 {
		t.Errorf("topics.json grew to %d bytes", fi.Size())
	}
	return nothing
}

// compressedRegisterCount: a compressed REGISTER_BROKER (103) of ~8 KB
// whose topic count (8M, below the inflated size) pre-sized a map:
// +1.3 GB.
func compressedRegisterCount(t *testing.T, m *mqd) func() {
	var raw, z bytes.Buffer
	chunk := func(s string) {
		binary.Write(&raw, binary.BigEndian, int32(len(s)))
		raw.WriteString(s)
	}
	chunk(`{"timestamp":1,"counter":1}`)
	binary.Write(&raw, binary.BigEndian, int32(8<<20))
	for i := range 100 {
		chunk("HostileReg" + strconv.Itoa(i) + " 4 4 6 SINGLE_TAG")
	}
	raw.Write(make([]byte, 8<<20))
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	zw.Write(raw.Bytes())
	zw.Close()
	t.Logf("register body: %d bytes compressed", z.Len())
	for range 3 {
		req := protocol.NewRequest(protocol.RegisterBroker, &protocol.RegisterBrokerRequestHeader{
			BrokerName: "hostile-b", BrokerAddr: "127.0.0.1:1", ClusterName: "HostileCluster",
			HaServerAddr: "127.0.0.1:2", Compressed: true})
		req.Body = z.Bytes()
		m.call(req, true)
	}
	return nothing
}

// batchOf is n small batch entries: a one-byte body and one short
// property of their own (which makes joining the batch's properties copy).
func batchOf(n int) []byte {
	const props = "k\x01v"
	const size = 20 + 1 + 2 + len(props)
	out := make([]byte, 0, n*size)
	for range n {
		var e [size]byte
		binary.BigEndian.PutUint32(e[0:], uint32(size))
		binary.BigEndian.PutUint32(e[16:], 1)
		e[20] = 'x'
		binary.BigEndian.PutUint16(e[21:], uint16(len(props)))
		copy(e[23:], props)
		out = append(out, e[:]...)
	}
	return out
}

// batchHeaderProperties: a ~240 KB SEND_BATCH_MESSAGE (320) of 8000
// entries with 30 KB of header properties, which were copied into every
// entry before any size check: +290 MB.
func batchHeaderProperties(t *testing.T, m *mqd) func() {
	h := protocol.SendMessageRequestHeader{ProducerGroup: "hostile_producer", Topic: probeTopic, DefaultTopic: "TBW102",
		DefaultTopicQueueNums: 4, QueueID: 2, BornTimestamp: time.Now().UnixMilli(), Batch: true,
		Properties: "hostile\x01" + strings.Repeat("v", 30000)}
	req := protocol.NewRequest(protocol.SendBatchMessage, nil)
	req.ExtFields = h.EncodeV2()
	req.Body = batchOf(8000)
	for range 2 {
		resp := m.call(req, false)
		t.Logf("batch: code %d %.100s", resp.Code, resp.Remark)
		if resp.Code == protocol.ResponseSuccess {
			t.Errorf("batch with %d MB of properties accepted", 8000*30000>>20)
		}
	}
	return nothing
}

// retryQueueNumsMax: a subscription group with retryQueueNums 2^31-1 was
// accepted, its retry topic created with that many queues and advertised
// in routes (clients routing on it run out of memory).
func retryQueueNumsMax(t *testing.T, m *mqd) func() {
	g := map[string]any{"groupName": "hostile_rq", "consumeEnable": true, "retryQueueNums": math.MaxInt32,
		"retryMaxTimes": 16, "brokerId": 0, "whichBrokerWhenConsumeSlowly": 1}
	req := protocol.NewRequest(protocol.UpdateAndCreateSubscriptionGroup, nil)
	req.Body, _ = json.Marshal(g)
	m.call(req, false)
	m.call(heartbeat("hostile_rq"), false)
	time.Sleep(500 * time.Millisecond) // the retry topic re-registers asynchronously
	resp := m.call(protocol.NewRequest(protocol.GetRouteInfoByTopic, &protocol.GetRouteInfoRequestHeader{Topic: "%RETRY%hostile_rq"}), true)
	if resp.Code == protocol.ResponseSuccess {
		var route struct {
			QueueDatas []struct{ ReadQueueNums, WriteQueueNums int64 } `json:"queueDatas"`
		}
		json.Unmarshal(resp.Body, &route)
		for _, q := range route.QueueDatas {
			if q.ReadQueueNums > 1024 || q.WriteQueueNums > 1024 {
				t.Errorf("retry topic advertised with %d/%d queues", q.ReadQueueNums, q.WriteQueueNums)
			}
		}
	}
	return nothing
}

// heartbeat is a HEART_BEAT (34) of one client with the given consumer
// groups.
func heartbeat(groups ...string) *protocol.Command {
	hb := protocol.HeartbeatData{ClientID: "127.0.0.1@hostile"}
	for _, g := range groups {
		hb.ConsumerDataSet = append(hb.ConsumerDataSet, protocol.ConsumerData{GroupName: g,
			ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET"})
	}
	req := protocol.NewRequest(protocol.HeartBeat, nil)
	req.Body, _ = json.Marshal(&hb)
	return req
}

// unknownGroupFlood: every unknown group name was auto-created, with its
// retry topic, and the whole file rewritten each time. 500 new groups in
// 5 heartbeats; autoCreateSubscriptionGroupMaxCount is 100 here.
func unknownGroupFlood(t *testing.T, m *mqd) func() {
	for f := range 5 {
		var groups []string
		for i := range 100 {
			groups = append(groups, "hostile_flood_"+strconv.Itoa(f*100+i))
		}
		m.call(heartbeat(groups...), false)
	}
	if n := m.tableSize(protocol.GetAllSubscriptionGroupConfig, "subscriptionGroupTable"); n > 100 {
		t.Errorf("%d groups auto-created, cap 100", n)
	}
	return nothing
}

// tableSize counts the entries of the table named key in the body of an
// admin request with code (GET_ALL_TOPIC_CONFIG, 21;
// GET_ALL_SUBSCRIPTIONGROUP_CONFIG, 201).
func (m *mqd) tableSize(code int16, key string) int {
	m.t.Helper()
	resp := m.call(protocol.NewRequest(code, nil), false)
	var body map[string]map[string]json.RawMessage
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		m.t.Fatalf("%s: %v", protocol.RequestCodeName(code), err)
	}
	return len(body[key])
}

// autoCreateTopicFlood: every send to an unknown topic auto-created it
// from TBW102 and rewrote topics.json (each creation is now one fsynced
// journal line before the send is answered; auto-create-kill9). 150 new topics;
// autoCreateTopicMaxCount is 50 here.
func autoCreateTopicFlood(t *testing.T, m *mqd) func() {
	for i := range 150 {
		req := protocol.NewRequest(protocol.SendMessage, &protocol.SendMessageRequestHeader{
			ProducerGroup: "hostile_producer", Topic: "hostile_auto_" + strconv.Itoa(i), DefaultTopic: "TBW102",
			DefaultTopicQueueNums: 4, QueueID: -1, BornTimestamp: time.Now().UnixMilli()})
		req.Body = []byte("x")
		m.call(req, false)
	}
	if n := m.tableSize(protocol.GetAllTopicConfig, "topicConfigTable"); n > 50 {
		t.Errorf("%d topics after the flood, cap 50", n)
	}
	return nothing
}

// offsetFlood: offsets of any topic, group and queue were accepted and
// persisted (a topic containing '@' split wrongly on reload).
func offsetFlood(t *testing.T, m *mqd) func() {
	accepted := 0
	for i := range 2000 {
		topic, group := "hostile_t_"+strconv.Itoa(i), "hostile_g"
		switch i % 4 {
		case 1:
			topic = "a@b" + strconv.Itoa(i)
		case 2:
			topic, group = probeTopic, "g@"+strconv.Itoa(i)
		case 3:
			topic = probeTopic // queue id out of range
		}
		resp := m.call(protocol.NewRequest(protocol.UpdateConsumerOffset, &protocol.UpdateConsumerOffsetRequestHeader{
			ConsumerGroup: group, Topic: topic, QueueID: int32(1000 + i), CommitOffset: int64(i)}), false)
		if resp.Code == protocol.ResponseSuccess {
			accepted++
		}
	}
	if accepted > 0 {
		t.Errorf("%d offsets of unknown topics, queues or invalid groups accepted", accepted)
	}
	return nothing
}

// lockFlood: LOCK_BATCH_MQ (41) locked any queue named, of any topic.
func lockFlood(t *testing.T, m *mqd) func() {
	body := protocol.LockBatchRequestBody{ConsumerGroup: "hostile_lock", ClientID: "127.0.0.1@hostile"}
	for i := range 20000 {
		body.MQSet = append(body.MQSet, protocol.MessageQueue{Topic: "hostile_lock_" + strconv.Itoa(i),
			BrokerName: "broker-a", QueueID: int32(i)})
	}
	req := protocol.NewRequest(protocol.LockBatchMQ, nil)
	req.Body, _ = json.Marshal(&body)
	resp := m.call(req, false)
	var out protocol.LockBatchResponseBody
	json.Unmarshal(resp.Body, &out)
	if len(out.LockOKMQSet) > 0 {
		t.Errorf("%d queues of unknown topics locked", len(out.LockOKMQSet))
	}
	return nothing
}

// kvConfigFlood: PUT_KV_CONFIG (100) to the nameserver kept any number of
// entries of any size: 5000 entries of 60 KB.
func kvConfigFlood(t *testing.T, m *mqd) func() {
	nc, err := remoting.Dial(context.Background(), m.nsAddr, remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	value := strings.Repeat("v", 60<<10)
	for i := range 5000 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := nc.Invoke(ctx, protocol.NewRequest(protocol.PutKVConfig, &protocol.KVConfigHeader{
			Namespace: "hostile", Key: strconv.Itoa(i), Value: value}))
		cancel()
		if err != nil {
			t.Fatalf("put kv %d: %v", i, err)
		}
	}
	return nothing
}

// pipelinedUnreadQueries: 40 QUERY_MESSAGE (12) requests whose replies
// (~8 MB before maxQueryReplyBytes, now at most one 3.9 MB record over the
// 4 MiB cap) are never read: the replies queued without a byte budget,
// +320 MB; bounded by the per-connection byte budget.
func pipelinedUnreadQueries(t *testing.T, m *mqd) func() {
	big := bytes.Repeat([]byte("q"), 3_900_000)
	for range 2 {
		m.sendProbeRecord(3, "KEYS\x01hostile_qk", big)
	}
	query := &protocol.QueryMessageRequestHeader{Topic: probeTopic, Key: "hostile_qk", MaxNum: 32,
		BeginTimestamp: 0, EndTimestamp: math.MaxInt64}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp := m.call(protocol.NewRequest(protocol.QueryMessage, query), false)
		if resp.Code == protocol.ResponseSuccess && len(resp.Body) > 3_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query never found a record: code %d", resp.Code)
		}
	}
	c := m.rawConn(m.brokerAddr)
	cmds := make([]*protocol.Command, 40)
	for i := range cmds {
		cmds[i] = protocol.NewRequest(protocol.QueryMessage, query)
	}
	m.writeFrames(c, cmds...)
	return func() { c.Close() }
}

// parkedPullsJunkBodies: 40 long-polling PULL_MESSAGE (11) on an empty
// queue, each with a 4 MB junk body kept while parked: +316 MB. The body
// of a PULL_MESSAGE is now dropped unread (maxRequestBody of the code).
func parkedPullsJunkBodies(t *testing.T, m *mqd) func() {
	c := m.rawConn(m.brokerAddr)
	junk := bytes.Repeat([]byte{0xEE}, 4<<20)
	cmds := make([]*protocol.Command, 40)
	for i := range cmds {
		cmds[i] = protocol.NewRequest(protocol.PullMessage, &protocol.PullMessageRequestHeader{
			ConsumerGroup: probeGroup, Topic: probeTopic, QueueID: 3, QueueOffset: 0, MaxMsgNums: 32,
			SysFlag: protocol.PullFlagSuspend | protocol.PullFlagSubscription, SuspendTimeoutMillis: 20000,
			Subscription: "*", ExpressionType: protocol.ExpressionTypeTag})
		cmds[i].Body = junk
	}
	m.writeFrames(c, cmds...)
	return func() { c.Close() }
}

// connectionFlood: no connection limit; 1000 connections each start a
// 16 MiB frame and send its first 64 KiB, pinning a read buffer and a
// frame buffer per connection (slowloris): +134 MiB. Bounded by small
// read buffers and the global inbound budget (maxInboundBytes).
func connectionFlood(t *testing.T, m *mqd) func() {
	prefix := make([]byte, 64<<10)
	binary.BigEndian.PutUint32(prefix, 16<<20-8)
	var conns []net.Conn
	for range 1000 {
		c, err := net.DialTimeout("tcp", m.brokerAddr, 2*time.Second)
		if err != nil {
			t.Logf("dial refused after %d connections: %v", len(conns), err)
			break
		}
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.Write(prefix) // an error means the server pushed back or closed: fine
		conns = append(conns, c)
	}
	return func() {
		for _, c := range conns {
			c.Close()
		}
	}
}

// jsonRegisterTinyEntries: an uncompressed REGISTER_BROKER (103) whose
// 8 MiB JSON body holds ~600k tiny topic entries ("t1":{}), twice. It was
// decoded whole, into a map of every entry, before its count was checked
// against MaxRegisterTopics (200000).
func jsonRegisterTinyEntries(t *testing.T, m *mqd) func() {
	var js bytes.Buffer
	js.WriteString(`{"topicConfigSerializeWrapper":{"dataVersion":{"timestamp":1,"counter":1},"topicConfigTable":{`)
	for i := 0; js.Len() < 8<<20; i++ {
		if i > 0 {
			js.WriteByte(',')
		}
		js.WriteString(`"t` + strconv.Itoa(i) + `":{}`)
	}
	js.WriteString(`}},"filterServerList":[]}`)
	for range 2 {
		req := protocol.NewRequest(protocol.RegisterBroker, &protocol.RegisterBrokerRequestHeader{
			BrokerName: "hostile-json", BrokerAddr: "127.0.0.1:1", ClusterName: "HostileCluster",
			HaServerAddr: "127.0.0.1:2"})
		req.Body = js.Bytes()
		if resp := m.call(req, true); resp.Code == protocol.ResponseSuccess {
			t.Errorf("register with %d bytes of tiny entries accepted", js.Len())
		}
	}
	return nothing
}

// autoCreateKill9: each auto-created topic rewrote all of topics.json
// (and its .bak), and auto-created groups were written only by the 5 s
// flush, so kill -9 lost acknowledged ones. Now each creation appends one
// journal line (topics.json is not rewritten during the flood), and every
// acknowledged topic and group is there after kill -9.
func autoCreateKill9(t *testing.T, m *mqd) func() {
	wrote := m.writtenBytes()
	var topics []string
	for i := range 60 {
		name := "hostile_k9_" + strconv.Itoa(i)
		req := protocol.NewRequest(protocol.SendMessage, &protocol.SendMessageRequestHeader{
			ProducerGroup: "hostile_producer", Topic: name, DefaultTopic: "TBW102",
			DefaultTopicQueueNums: 4, QueueID: -1, BornTimestamp: time.Now().UnixMilli()})
		req.Body = []byte("x")
		if m.call(req, false).Code == protocol.ResponseSuccess {
			topics = append(topics, name)
		}
	}
	var groups []string
	for i := range 50 {
		groups = append(groups, "hostile_k9_group_"+strconv.Itoa(i))
	}
	m.call(heartbeat(groups...), false)
	// wchar counts every write(2): files, the log, and the re-registrations
	// each new topic triggers (the whole table to the nameserver).
	t.Logf("%d topics and %d groups auto-created; mqd wrote %d bytes", len(topics), len(groups), m.writtenBytes()-wrote)
	if len(topics) < 20 {
		t.Fatalf("only %d topics created", len(topics))
	}
	file, err := os.ReadFile(filepath.Join(m.dir, "store", "config", "topics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(file), `"hostile_k9_`); n > 0 {
		t.Errorf("topics.json rewritten during the flood (%d new topics in it, %d bytes)", n, len(file))
	}
	m.kill9()
	m.launch()
	have := m.tableNames(protocol.GetAllTopicConfig, "topicConfigTable")
	for _, name := range topics {
		if !have[name] {
			t.Errorf("acknowledged topic %s lost to kill -9", name)
		}
	}
	have = m.tableNames(protocol.GetAllSubscriptionGroupConfig, "subscriptionGroupTable")
	for _, g := range groups {
		if !have[g] {
			t.Errorf("acknowledged group %s lost to kill -9", g)
		}
	}
	return nothing
}

// writtenBytes is what mqd has written through write(2) so far (wchar of
// /proc/<pid>/io: files, log, sockets).
func (m *mqd) writtenBytes() int64 {
	m.t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(m.cmd.Process.Pid) + "/io")
	if err != nil {
		m.t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	m.t.Fatal("no wchar in /proc/<pid>/io")
	return 0
}

// kill9 kills mqd with SIGKILL: nothing is flushed or written at exit.
func (m *mqd) kill9() {
	m.client.Close()
	m.client = nil
	m.cmd.Process.Kill()
	m.cmd.Wait()
	m.cmd = nil
}

// tableNames is the set of names in the table key of an admin request's
// body (see tableSize).
func (m *mqd) tableNames(code int16, key string) map[string]bool {
	m.t.Helper()
	resp := m.call(protocol.NewRequest(code, nil), false)
	var body map[string]map[string]json.RawMessage
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		m.t.Fatalf("%s: %v", protocol.RequestCodeName(code), err)
	}
	out := map[string]bool{}
	for k := range body[key] {
		out[k] = true
	}
	return out
}
