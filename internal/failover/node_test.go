package failover

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/testport"
)

const segSize = 1 << 20

// listen listens on a port from testport: some tests close a listener and
// bind its address again (a restarted node), and an ephemeral port could be
// taken in between.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", testport.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// storeMode is the I/O backend and flush policy the tests' stores use.
type storeMode struct {
	Backend string // "auto" (io_uring where the kernel has it) or "pwrite"
	Flush   engine.FlushDiskType
}

var testMode = storeMode{"auto", engine.SyncFlush}

// forEachMode runs fn under the modes given, or all four.
func forEachMode(t *testing.T, fn func(t *testing.T), modes ...storeMode) {
	if len(modes) == 0 {
		modes = []storeMode{{"auto", engine.SyncFlush}, {"auto", engine.AsyncFlush}, {"pwrite", engine.SyncFlush}, {"pwrite", engine.AsyncFlush}}
	}
	for _, m := range modes {
		t.Run(m.Backend+"/"+string(m.Flush), func(t *testing.T) {
			testMode = m
			defer func() { testMode = storeMode{"auto", engine.SyncFlush} }()
			fn(t)
		})
	}
}

// nodeOptions is a small broker on loopback ports, storing in dir, in
// testMode.
func nodeOptions(dir string, ln, haLn net.Listener) Options {
	cfg := broker.NewConfig()
	cfg.BrokerIP1, cfg.Listener = "127.0.0.1", ln
	cfg.BrokerName = "broker-a"
	cfg.HA.Listener = haLn
	cfg.HA.Heartbeat, cfg.HA.Housekeeping = 200*time.Millisecond, 3*time.Second
	cfg.Store = engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: dir, MappedFileSizeCommitLog: segSize, ConsumeQueueEntriesPerFile: 1000,
		MaxHashSlotNum: 1000, MaxIndexNum: 10000, FlushDiskType: testMode.Flush, SyncFlushTimeout: time.Second,
		IOBackend: testMode.Backend}
	return Options{Broker: cfg, ShutdownTimeout: 10 * time.Second}
}

func startNode(t *testing.T, o Options, r Role) *Node {
	t.Helper()
	n, err := Start(o, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

func dial(t *testing.T, addr string) *remoting.Client {
	t.Helper()
	c, err := remoting.Dial(context.Background(), addr, remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func invoke(t *testing.T, c *remoting.Client, req *protocol.Command) *protocol.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// send sends body to topic FT and returns the response code and, when
// stored, the commit-log offset from the offsetMsgId.
func send(t *testing.T, c *remoting.Client, body string) (int16, string, int64) {
	t.Helper()
	req := protocol.NewRequest(protocol.SendMessage, nil)
	req.ExtFields = (&protocol.SendMessageRequestHeader{ProducerGroup: "pg", Topic: "FT", DefaultTopic: broker.TopicAutoCreate,
		DefaultTopicQueueNums: 2, QueueID: 0, BornTimestamp: time.Now().UnixMilli()}).Encode()
	req.Body = []byte(body)
	resp := invoke(t, c, req)
	var rh protocol.SendMessageResponseHeader
	if resp.Code != protocol.ResponseSuccess {
		return resp.Code, resp.Remark, -1
	}
	if err := rh.Decode(resp.ExtFields); err != nil {
		t.Fatal(err)
	}
	_, off, err := message.ParseOffsetMsgID(rh.MsgID)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Code, "", off
}

func viewBody(t *testing.T, c *remoting.Client, off int64) string {
	t.Helper()
	resp := invoke(t, c, protocol.NewRequest(protocol.ViewMessageByID, &protocol.ViewMessageRequestHeader{Offset: off}))
	if resp.Code != protocol.ResponseSuccess {
		t.Fatalf("view %d: %d %s", off, resp.Code, resp.Remark)
	}
	v, err := message.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Body)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var segmentName = regexp.MustCompile(`^[0-9]{20}$`)

// sameLogs compares two stopped stores' commit-log segments byte for byte.
func sameLogs(t *testing.T, a, b string) {
	t.Helper()
	read := func(dir string) map[string][]byte {
		ents, err := os.ReadDir(filepath.Join(dir, "commitlog"))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]byte{}
		for _, e := range ents {
			if segmentName.MatchString(e.Name()) {
				data, err := os.ReadFile(filepath.Join(dir, "commitlog", e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				m[e.Name()] = bytes.TrimRight(data, "\x00")
			}
		}
		return m
	}
	ma, mb := read(a), read(b)
	for name, da := range ma {
		db, ok := mb[name]
		if len(da) == 0 && !ok {
			continue
		}
		if !bytes.Equal(da, db) {
			t.Fatalf("segment %s differs: %d vs %d bytes", name, len(da), len(db))
		}
	}
	for name, db := range mb {
		if _, ok := ma[name]; !ok && len(db) > 0 {
			t.Fatalf("segment %s only in %s", name, b)
		}
	}
}

// TestFailoverTruncatesOldMaster: A masters epoch 1 with B as its slave;
// A then stores messages B never gets (B is down: SLAVE_NOT_AVAILABLE, not
// acknowledged); A stops; B becomes master of epoch 2 and takes writes;
// A comes back as B's slave: it truncates exactly its unreplicated bytes
// (a copy kept), replicates, and the logs are byte-identical.
func TestFailoverTruncatesOldMaster(t *testing.T) { forEachMode(t, testFailoverTruncates) }

func testFailoverTruncates(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	lnA, haA, lnB, haB := listen(t), listen(t), listen(t), listen(t)
	addrA, haAddrA, addrB, haAddrB := lnA.Addr().String(), haA.Addr().String(), lnB.Addr().String(), haB.Addr().String()
	a := startNode(t, nodeOptions(dirA, lnA, haA), Role{Master: true, Epoch: 1})
	b := startNode(t, nodeOptions(dirB, lnB, haB), Role{BrokerID: 1, MasterAddr: addrA, MasterHAAddr: haAddrA})
	waitFor(t, "slave connected", func() bool { return a.Status().HA.Slaves == 1 })

	ca := dial(t, addrA)
	acked := map[int64]string{}
	for i := range 30 {
		body := "acked-" + strings.Repeat("x", i)
		code, remark, off := send(t, ca, body)
		if code != protocol.ResponseSuccess {
			t.Fatalf("send %d: %d %s", i, code, remark)
		}
		acked[off] = body
	}
	if got := b.Status().Epoch; got != (ha.Entry{Epoch: 1, Start: 0}) {
		t.Fatalf("slave's epoch %+v, want the master's {1 0}", got)
	}

	// B's link to A is cut (it follows a master that does not answer); A
	// stores what it cannot acknowledge.
	replicated := a.Status().LogEnd
	waitFor(t, "slave caught up", func() bool { return b.Status().LogEnd == replicated })
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	if err := b.SwitchRole(Role{BrokerID: 1, MasterAddr: deadAddr, MasterHAAddr: deadAddr}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slave gone", func() bool { return a.Status().HA.Slaves == 0 })
	for i := range 5 {
		code, _, _ := send(t, ca, "unacked-"+strings.Repeat("y", i))
		if code != protocol.ResponseSlaveNotAvailable {
			t.Fatalf("send without slave: code %d, want SLAVE_NOT_AVAILABLE", code)
		}
	}
	// (ASYNC_FLUSH hands appended bytes to the files a little later.)
	var extraEnd int64
	waitFor(t, "A's unreplicated bytes written", func() bool {
		prev := extraEnd
		time.Sleep(50 * time.Millisecond)
		extraEnd = a.Status().LogEnd
		return extraEnd > replicated && extraEnd == prev
	})
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// B becomes master of epoch 2 and takes writes (stored, not
	// acknowledged: a SYNC_MASTER without a slave).
	if err := b.SwitchRole(Role{Master: true, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	if got := b.Status().Epoch; got != (ha.Entry{Epoch: 2, Start: replicated}) {
		t.Fatalf("new master's epoch %+v, want {2 %d}", got, replicated)
	}
	cb := dial(t, addrB)
	for i := range 10 {
		if code, remark, _ := send(t, cb, "epoch2-"+strings.Repeat("z", i)); code != protocol.ResponseSlaveNotAvailable {
			t.Fatalf("send to the new master without a slave: %d %s", code, remark)
		}
	}

	// A comes back as B's slave and truncates its extra bytes.
	lnA2, err := net.Listen("tcp", addrA)
	if err != nil {
		t.Fatal(err)
	}
	a = startNode(t, nodeOptions(dirA, lnA2, nil), Role{BrokerID: 1, MasterAddr: addrB, MasterHAAddr: haAddrB})
	waitFor(t, "old master replicating", func() bool {
		st := a.Status()
		return st.Running && st.HA.Connected && st.LogEnd == b.Status().LogEnd
	})
	for i := range 10 { // acknowledged now that a slave is back
		body := "after-" + strings.Repeat("w", i)
		code, remark, off := send(t, cb, body)
		if code != protocol.ResponseSuccess {
			t.Fatalf("send %d with slave back: %d %s", i, code, remark)
		}
		acked[off] = body
	}
	if got, want := a.Status().Epoch, (ha.Entry{Epoch: 2, Start: replicated}); got != want {
		t.Fatalf("old master's epochs end in %+v, want %+v", got, want)
	}
	kept, _ := filepath.Glob(filepath.Join(dirA, "commitlog", "*.broken*"))
	if len(kept) != 1 {
		t.Fatalf("copies of the cut bytes: %v", kept)
	}
	if fi, err := os.Stat(kept[0]); err != nil || fi.Size() != extraEnd-replicated {
		t.Fatalf("copy %s: %v bytes, want %d (err %v)", kept[0], fi.Size(), extraEnd-replicated, err)
	}
	for off, body := range acked {
		if got := viewBody(t, cb, off); got != body {
			t.Fatalf("acknowledged message at %d reads %q, want %q", off, got, body)
		}
	}
	waitFor(t, "the master to see its replica caught up", func() bool {
		r := b.Status().HA.Replicas
		return len(r) == 1 && r[0].BrokerID == 1 && r[0].Acked == b.Status().LogEnd
	})
	if ea, eb := a.Broker().Epochs().Entries(), b.Broker().Epochs().Entries(); !slices.Equal(ea, eb) {
		t.Fatalf("epoch files differ: slave %v, master %v", ea, eb)
	}
	// Fenced, the master refuses sends and says why.
	b.Fence(true)
	if code, remark, _ := send(t, cb, "fenced"); code != protocol.ResponseServiceNotAvailable || !strings.Contains(remark, "fenced") {
		t.Fatalf("send to a fenced master: %d %q", code, remark)
	}
	if !b.Status().Fenced || !b.Broker().Fenced() {
		t.Fatal("fence not reported")
	}
	b.Fence(false)
	if code, remark, _ := send(t, cb, "unfenced"); code != protocol.ResponseSuccess {
		t.Fatalf("send after unfencing: %d %q", code, remark)
	}
	waitFor(t, "slave caught up", func() bool { return a.Status().LogEnd == b.Status().LogEnd })
	a.Shutdown(context.Background())
	b.Shutdown(context.Background())
	sameLogs(t, dirA, dirB)
	sameQueues(t, dirA, dirB)
}

// TestSlaveDropsAnEpochItsMasterNeverHad: a slave whose last epoch (with
// no bytes in it) is unknown to its master drops that epoch, cuts nothing,
// and replicates.
func TestSlaveDropsAnEpochItsMasterNeverHad(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	lnA, haA, lnB := listen(t), listen(t), listen(t)
	a := startNode(t, nodeOptions(dirA, lnA, haA), Role{Master: true, Epoch: 1})
	ca := dial(t, lnA.Addr().String())
	for i := range 5 {
		if code, remark, _ := send(t, ca, strings.Repeat("v", i)); code != protocol.ResponseSlaveNotAvailable {
			t.Fatalf("send %d: %d %s", i, code, remark)
		}
	}
	var end int64
	waitFor(t, "A's bytes written", func() bool {
		prev := end
		time.Sleep(50 * time.Millisecond)
		end = a.Status().LogEnd
		return end > 0 && end == prev
	})
	// B's store claims an epoch 5 that starts at 0 and holds nothing.
	e, err := ha.OpenEpochFile(filepath.Join(dirB, broker.EpochFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Begin(5, 0); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, nodeOptions(dirB, lnB, nil), Role{BrokerID: 1, MasterAddr: lnA.Addr().String(), MasterHAAddr: haA.Addr().String()})
	waitFor(t, "B replicating", func() bool { st := b.Status(); return st.HA.Connected && st.LogEnd == end })
	if got := b.Status().Epoch; got != (ha.Entry{Epoch: 1, Start: 0}) {
		t.Fatalf("B's last epoch %+v, want {1 0}", got)
	}
	if kept := brokenCopies(dirB); len(kept) != 0 {
		t.Fatalf("copies %v: nothing should have been cut", kept)
	}
}

// sameQueues opens two stopped stores and compares the consume queues of
// topic FT entry by entry: the truncated slave's queues were rolled back
// and rebuilt to match its master's.
func sameQueues(t *testing.T, dirA, dirB string) {
	t.Helper()
	open := func(dir string) *engine.Store {
		s, err := engine.Open(nodeOptions(dir, nil, nil).Broker.Store)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(dirA), open(dirB)
	for q := range int32(2) {
		waitFor(t, "queues dispatched", func() bool {
			return a.DispatchLag() == 0 && b.DispatchLag() == 0 && a.MaxOffsetInQueue("FT", q) == b.MaxOffsetInQueue("FT", q)
		})
		for off := int64(0); off < b.MaxOffsetInQueue("FT", q); {
			ra, rb := a.GetMessage("FT", q, off, 32, nil), b.GetMessage("FT", q, off, 32, nil)
			if ra.Status != rb.Status || ra.NextBeginOffset != rb.NextBeginOffset || len(ra.Messages) != len(rb.Messages) || len(rb.Messages) == 0 {
				t.Fatalf("queue %d at %d: slave %v next %d (%d messages), master %v next %d (%d)", q, off,
					ra.Status, ra.NextBeginOffset, len(ra.Messages), rb.Status, rb.NextBeginOffset, len(rb.Messages))
			}
			for i := range ra.Messages {
				if !bytes.Equal(ra.Messages[i], rb.Messages[i]) {
					t.Fatalf("queue %d: message %d differs", q, off+int64(i))
				}
			}
			off = rb.NextBeginOffset
			ra.Release()
			rb.Release()
		}
	}
}

// TestSwitchRoleRefusesAStaleEpoch: a master epoch below the store's last
// one is refused (the node then runs no broker) and a higher one works.
func TestSwitchRoleRefusesAStaleEpoch(t *testing.T) {
	ln, haLn := listen(t), listen(t)
	n := startNode(t, nodeOptions(t.TempDir(), ln, haLn), Role{Master: true, Epoch: 3})
	if err := n.SwitchRole(Role{Master: true, Epoch: 2}); !errors.Is(err, ha.ErrStaleEpoch) {
		t.Fatalf("switch to epoch 2 after 3: %v", err)
	}
	if n.Status().Running {
		t.Fatal("a broker runs after a refused switch")
	}
	if err := n.SwitchRole(Role{Master: true, Epoch: 4}); err != nil {
		t.Fatal(err)
	}
	if got := n.Status().Epoch; got.Epoch != 4 {
		t.Fatalf("epoch %+v", got)
	}
	if err := n.SwitchRole(Role{Master: true, Epoch: 5, BrokerID: 2}); err == nil {
		t.Fatal("a master with brokerId 2 accepted")
	}
}

// roomyDisk is the disk usage the tests' stores see, whatever the host
// disk's (above 85% retention deletes unexpired segments, above 90% the
// store refuses writes, by design).
func roomyDisk(string) (float64, error) { return 0.1, nil }
