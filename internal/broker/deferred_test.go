package broker

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// A SYNC_FLUSH send is answered only once its message is durable (its
// answer is deferred to the commit log's flush loop, no goroutine waiting),
// with FLUSH_DISK_TIMEOUT when the fdatasync outlasts syncFlushTimeout,
// as the Java broker answers; sends on the same connection meanwhile are
// answered as their own syncs complete.
func TestDeferredSendAnsweredWhenDurable(t *testing.T) {
	fsys := crashfs.New()
	fsys.GateSyncs("/commitlog/", 0)
	b, c := startBroker(t, func(cfg *Config) {
		cfg.Store.FS = fsys
		cfg.Store.SyncFlushTimeout = 300 * time.Millisecond
	})
	send := func(body string) *protocol.Command { return call(t, c, v2Send("DeferTopic", "", 0, body)) }
	if resp := send("first"); resp.Code != protocol.ResponseSuccess {
		t.Fatalf("send: %d %s", resp.Code, resp.Remark)
	}
	fsys.HoldSyncs()
	began := time.Now()
	resp := send("held")
	if resp.Code != protocol.ResponseFlushDiskTimeout || time.Since(began) < 300*time.Millisecond {
		fsys.ReleaseSyncs()
		t.Fatalf("send with its fdatasync held: %d %q after %v, want FLUSH_DISK_TIMEOUT after 300 ms",
			resp.Code, resp.Remark, time.Since(began))
	}
	if resp.Ext("queueOffset") != "1" || resp.Ext("msgId") == "" {
		fsys.ReleaseSyncs()
		t.Fatalf("FLUSH_DISK_TIMEOUT without the stored message's result: %v", resp.Fields())
	}
	got := make(chan *protocol.Command, 1)
	go func() { got <- send("waits") }()
	time.Sleep(50 * time.Millisecond)
	select {
	case r := <-got:
		fsys.ReleaseSyncs()
		t.Fatalf("answered (%d) while its fdatasync is held", r.Code)
	default:
	}
	// deferred, not a handler goroutine waiting: the send is counted in
	// progress, and no worker holds it
	if n := b.deferred.Load(); n != 1 || b.stats.Send.InProgress.Load() != 1 {
		fsys.ReleaseSyncs()
		t.Fatalf("%d deferred sends, %d in progress; want 1 and 1", n, b.stats.Send.InProgress.Load())
	}
	fsys.ReleaseSyncs()
	if r := <-got; r.Code != protocol.ResponseSuccess {
		t.Fatalf("send after the sync completed: %d %s", r.Code, r.Remark)
	}
	// the connection's reservation ends right after the answer is queued
	// (remoting.Conn.ReplyDeferred), so the client may see it first
	for _, conn := range b.server.Conns() {
		waitFor(t, "no deferred answers left on a connection", func() bool { return conn.Deferred() == 0 })
	}
	if b.deferred.Load() != 0 || b.stats.Send.InProgress.Load() != 0 {
		t.Fatalf("after the answers: %d deferred, %d in progress", b.deferred.Load(), b.stats.Send.InProgress.Load())
	}
}

// sendInline takes on the read loop only sends answered without waiting.
func TestSendInlineChoice(t *testing.T) {
	b, c := startBroker(t, nil)
	send := func(topic, props string) {
		req := protocol.NewRequest(protocol.SendMessageV2, nil)
		req.ExtFields = goSendHeaderFor(topic, props).EncodeV2()
		req.Body = []byte("x")
		if resp := call(t, c, req); resp.Code != protocol.ResponseSuccess {
			t.Fatalf("send: %d %s", resp.Code, resp.Remark)
		}
	}
	send("Known", "") // creates the topic (not inline)
	conn := b.server.Conns()[0]
	decoded := func(code int16, h *protocol.SendMessageRequestHeader, ext map[string]string, oneway bool) *protocol.Command {
		t.Helper()
		req := protocol.NewRequest(code, nil)
		req.ExtFields = ext
		if ext == nil {
			req.ExtFields = h.EncodeV2()
		}
		if oneway {
			req.Flag |= protocol.FlagOneway
		}
		req.Body = []byte("x")
		return readAsServer(t, req) // reply_test.go
	}
	hdr := func(topic, props string) *protocol.SendMessageRequestHeader { return goSendHeaderFor(topic, props) }
	batch := hdr("Known", "")
	batch.Batch = true
	signed := hdr("Known", "").EncodeV2()
	signed["AccessKey"], signed["Signature"] = "ak", "sig"
	for _, tc := range []struct {
		name string
		req  *protocol.Command
		want bool
	}{
		{"single send to a known topic", decoded(protocol.SendMessageV2, hdr("Known", ""), nil, false), true},
		{"WAIT=false", decoded(protocol.SendMessageV2, hdr("Known", "WAIT\x01false"), nil, false), true},
		{"unknown topic (created by the send)", decoded(protocol.SendMessageV2, hdr("Unknown", ""), nil, false), false},
		{"retry topic", decoded(protocol.SendMessageV2, hdr("%RETRY%g", ""), nil, false), false},
		{"transactional", decoded(protocol.SendMessageV2, hdr("Known", "TRAN_MSG\x01true"), nil, false), false},
		{"batch", decoded(protocol.SendBatchMessage, batch, nil, false), false},
		{"oneway", decoded(protocol.SendMessageV2, hdr("Known", ""), nil, true), false},
		{"signed (not typed)", decoded(protocol.SendMessageV2, nil, signed, false), false},
	} {
		if got := b.sendInline(conn, tc.req); got != tc.want {
			t.Errorf("%s: inline %v, want %v", tc.name, got, tc.want)
		}
	}
	// no room to defer that the connection's handlers could not take: to
	// a handler goroutine (SYNC_FLUSH)
	waitFor(t, "the first send's reservation ended", func() bool { return conn.Deferred() == 0 })
	room := maxDeferredSends - remoting.DefaultMaxInflight
	for range room - 1 {
		if !conn.Defer(maxDeferredSends) {
			t.Fatal("Defer refused")
		}
	}
	if !b.sendInline(conn, decoded(protocol.SendMessageV2, hdr("Known", ""), nil, false)) {
		t.Error("not inline with room for the connection's handlers and one more")
	}
	conn.Defer(maxDeferredSends)
	if b.sendInline(conn, decoded(protocol.SendMessageV2, hdr("Known", ""), nil, false)) {
		t.Error("inline with no more room than the connection's handlers could take")
	}
	for range room {
		conn.EndDefer()
	}
}

// A SYNC_MASTER send is deferred to its slave's report (no goroutine
// waiting), under both flush policies: answered SUCCESS only once the
// slave holds it, FLUSH_SLAVE_TIMEOUT with the stored message's result
// when the slave does not acknowledge within syncFlushTimeout (Java's
// answer), and SLAVE_NOT_AVAILABLE at once without a slave.
func TestDeferredSyncMasterSend(t *testing.T) {
	for _, ft := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) { testDeferredSyncMasterSend(t, ft) })
	}
}

func testDeferredSyncMasterSend(t *testing.T, ft engine.FlushDiskType) {
	m, c := startBroker(t, func(cfg *Config) {
		cfg.HA.Role = RoleSyncMaster
		cfg.Store.FlushDiskType = ft
		cfg.Store.SyncFlushTimeout = time.Second
	})
	send := func(body string) *protocol.Command { return call(t, c, v2Send("SyncMasterTopic", "", 0, body)) }
	if resp := send("no slave"); resp.Code != protocol.ResponseSlaveNotAvailable {
		t.Fatalf("no slave: %d %q", resp.Code, resp.Remark)
	}
	if !m.sendInline(m.server.Conns()[0], readAsServer(t, v2Send("SyncMasterTopic", "", 0, "x"))) {
		t.Fatal("a SYNC_MASTER send to a known topic is not taken on the read loop")
	}

	// A slave that connects and never acknowledges.
	mute, err := net.Dial("tcp", m.HAAddr())
	if err != nil {
		t.Fatal(err)
	}
	hello := make([]byte, 32)
	binary.BigEndian.PutUint32(hello, 0x4D514841)
	binary.BigEndian.PutUint32(hello[4:], 1)
	binary.BigEndian.PutUint64(hello[8:], uint64(m.store.SegmentSize()))
	mute.Write(hello)
	waitFor(t, "mute slave", func() bool { return m.HAStatus().Slaves == 1 })
	got := make(chan *protocol.Command, 1)
	began := time.Now()
	go func() { got <- send("unacknowledged") }()
	waitFor(t, "the send deferred", func() bool { return m.deferred.Load() == 1 })
	if n := m.stats.Send.InProgress.Load(); n != 1 {
		t.Fatalf("%d sends in progress while one is deferred", n)
	}
	// The held send took the read loop (inline) and did not keep it: a
	// send that does not wait, on the same connection, is answered now.
	if r := call(t, c, v2Send("SyncMasterTopic", "WAIT\x01false", 1, "does not wait")); r.Code != protocol.ResponseSuccess ||
		time.Since(began) >= time.Second {
		t.Fatalf("WAIT=false send behind the held one: %d %q after %v (the held one times out after 1 s)",
			r.Code, r.Remark, time.Since(began))
	}
	select {
	case r := <-got:
		t.Fatalf("the held send answered (%d after %v) before the WAIT=false send behind it", r.Code, time.Since(began))
	default:
	}
	resp := <-got
	if resp.Code != protocol.ResponseFlushSlaveTimeout || time.Since(began) < time.Second {
		t.Fatalf("mute slave: %d %q after %v, want FLUSH_SLAVE_TIMEOUT after 1 s", resp.Code, resp.Remark, time.Since(began))
	}
	if resp.Ext("queueOffset") != "1" || resp.Ext("msgId") == "" {
		t.Fatalf("FLUSH_SLAVE_TIMEOUT without the stored message's result: %v", resp.Fields())
	}
	mute.Close()
	waitFor(t, "mute slave gone", func() bool { return m.HAStatus().Slaves == 0 })

	// A real slave: acknowledged once it holds the message.
	s, _ := startBroker(t, func(cfg *Config) {
		cfg.BrokerID = 1
		cfg.HA = HAConfig{Role: RoleSlave, MasterAddress: m.HAAddr()}
	})
	waitFor(t, "slave connected", func() bool { return m.HAStatus().Slaves == 1 })
	for i := range 20 {
		mustSendOK(t, send(fmt.Sprint("replicated ", i)))
		if got, want := s.store.WrittenOffset(), m.store.MaxPhysOffset(); got < want {
			t.Fatalf("send %d acknowledged with the slave at %d of %d", i, got, want)
		}
	}
	if m.deferred.Load() != 0 || m.stats.Send.InProgress.Load() != 0 {
		t.Fatalf("after the answers: %d deferred, %d in progress", m.deferred.Load(), m.stats.Send.InProgress.Load())
	}
}

// blockingReplica is a replica waiter that can only block.
type blockingReplica struct{}

func (blockingReplica) WaitReplica(int64) engine.PutStatus { return engine.PutOK }

// A send whose put would block (a replica waiter without an asynchronous
// wait) is never taken on the read loop.
func TestSendInlineNeverBlocks(t *testing.T) {
	for _, ft := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		b, c := startBroker(t, func(cfg *Config) { cfg.Store.FlushDiskType = ft })
		addTopic(t, b, "Known", 4)
		b.store.SetReplicaWaiter(blockingReplica{}) // before any put, as its contract says
		runtimeTable(t, c)                          // connects, puts nothing
		if b.sendInline(b.server.Conns()[0], readAsServer(t, v2Send("Known", "", 0, "x"))) {
			t.Errorf("%s: a send that would block on its slave wait taken on the read loop", ft)
		}
		if !b.sendInline(b.server.Conns()[0], readAsServer(t, v2Send("Known", "WAIT\x01false", 0, "x"))) {
			t.Errorf("%s: a WAIT=false send not taken on the read loop", ft)
		}
	}
}

// v2Send is a Go client's SEND_MESSAGE_V2 of body to topic's queue.
func v2Send(topic, props string, queue int32, body string) *protocol.Command {
	req := protocol.NewRequest(protocol.SendMessageV2, nil)
	h := goSendHeaderFor(topic, props)
	h.QueueID = queue
	req.ExtFields = h.EncodeV2()
	req.Body = []byte(body)
	return req
}
