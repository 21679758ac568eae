package failover

// Operator-driven failover across processes: broker A runs in a child
// process (this test binary, re-executed) so it can be killed with
// SIGKILL; broker B and the nameserver run in the test process.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/namesrv"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/testport"
)

const childEnv = "MQD_FAILOVER_CHILD"

// childSpec is what a child broker runs.
type childSpec struct {
	Dir, Addr, HAAddr, Namesrv string
	Role                       Role
	Mode                       storeMode
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

// runChild runs one broker node until SIGTERM (clean shutdown) or SIGKILL.
func runChild(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var haLn net.Listener
	if s.Role.Master {
		if haLn, err = net.Listen("tcp", s.HAAddr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	testMode = s.Mode
	o := nodeOptions(s.Dir, ln, haLn)
	o.Broker.NamesrvAddrs = []string{s.Namesrv}
	o.Broker.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	n, err := Start(o, s.Role)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	code := 0
	select {
	case <-sig:
	case err := <-n.Fatal():
		fmt.Fprintln(os.Stderr, "fatal:", err)
		code = 1
	}
	if err := n.Shutdown(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// child is a broker process.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *lockedBuf
	done chan error
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startChild(t *testing.T, s childSpec) *child {
	t.Helper()
	spec, _ := json.Marshal(s)
	c := &child{t: t, log: &lockedBuf{}, done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.kill9() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			conn.Close()
			return c
		}
		select {
		case err := <-c.done:
			c.cmd = nil
			t.Fatalf("child exited: %v\n%s", err, c.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("child did not start\n%s", c.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *child) kill9() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.cmd = nil
}

func (c *child) stop() {
	c.t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Fatalf("child: %v\n%s", err, c.log)
		}
	case <-time.After(30 * time.Second):
		c.t.Fatalf("child did not stop\n%s", c.log)
	}
	c.cmd = nil
}

// linkProxy forwards connections to target until cut, then refuses them.
type linkProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	p := &linkProxy{ln: listen(t), target: target}
	go func() {
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			u, err := net.Dial("tcp", p.target)
			if down || err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close(); c.Close() }()
			go func() { io.Copy(c, u); u.Close(); c.Close() }()
		}
	}()
	t.Cleanup(func() { p.ln.Close(); p.cut() })
	return p
}

func (p *linkProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// ackLog records acknowledged sends (offset → body) and stored but
// unacknowledged ones.
type ackLog struct {
	mu       sync.Mutex
	acked    map[int64]string
	unacked  int
	failures []string
}

// load sends from workers connections to addr until stop closes or the
// connection fails, and records the outcome.
func (l *ackLog) load(addr string, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := remoting.Dial(context.Background(), addr, remoting.ClientConfig{})
			if err != nil {
				return
			}
			defer c.Close()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("m", i%97))
				code, off, err := trySend(c, body)
				if err != nil {
					return // A was killed
				}
				l.mu.Lock()
				switch code {
				case protocol.ResponseSuccess:
					l.acked[off] = body
				case protocol.ResponseFlushSlaveTimeout, protocol.ResponseSlaveNotAvailable, protocol.ResponseFlushDiskTimeout:
					l.unacked++ // stored, not acknowledged
				default: // refused (busy, …): not acknowledged either
					l.failures = append(l.failures, fmt.Sprintf("code %d", code))
				}
				l.mu.Unlock()
			}
		}()
	}
	return &wg
}

func trySend(c *remoting.Client, body string) (int16, int64, error) {
	req := protocol.NewRequest(protocol.SendMessage, nil)
	req.ExtFields = (&protocol.SendMessageRequestHeader{ProducerGroup: "pg", Topic: "FT", DefaultTopic: "TBW102",
		DefaultTopicQueueNums: 2, QueueID: 0, BornTimestamp: time.Now().UnixMilli()}).Encode()
	req.Body = []byte(body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		return 0, 0, err
	}
	if resp.Code != protocol.ResponseSuccess {
		return resp.Code, -1, nil
	}
	var rh protocol.SendMessageResponseHeader
	if err := rh.Decode(resp.ExtFields); err != nil {
		return 0, 0, err
	}
	off, err := offsetOf(rh.MsgID)
	return resp.Code, off, err
}

// logBytes reads [from, to) of a stopped store's commit log, one piece per
// segment, each with its trailing zeros trimmed (what a copy of it holds).
func logBytes(t *testing.T, dir string, from, to int64) [][]byte {
	t.Helper()
	var out [][]byte
	for base := from / segSize * segSize; base < to; base += segSize {
		data, err := os.ReadFile(filepath.Join(dir, "commitlog", fmt.Sprintf("%020d", base)))
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := max(from, base)-base, min(to, base+segSize)-base
		out = append(out, bytes.TrimRight(data[lo:hi], "\x00"))
	}
	return out
}

// brokenCopies lists the .broken copies of a store.
func brokenCopies(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "commitlog", "*.broken*"))
	sort.Strings(names) // 20-digit segment names: log order
	return names
}

// keptCopies reads the .broken copies of a store not in before, in log
// order, each with its trailing zeros trimmed.
func keptCopies(t *testing.T, dir string, before []string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, n := range brokenCopies(dir) {
		if slices.Contains(before, n) {
			continue
		}
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.TrimRight(data, "\x00"))
	}
	return out
}

// TestOperatorFailoverAcrossProcesses: A masters epoch 1 (SYNC_MASTER)
// with B replicating through a proxy, under load from 4 senders; the link
// is cut, so A stores messages it cannot acknowledge; A is killed with
// SIGKILL; B becomes master of epoch 2 and takes writes; A restarts as B's
// slave, truncates exactly its unacknowledged tail (copies kept) and
// replicates. Every acknowledged message is on B at its offset, and the
// two logs are byte-identical.
func TestOperatorFailoverAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a broker process")
	}
	forEachMode(t, testOperatorFailover, storeMode{"auto", engine.SyncFlush}, storeMode{"pwrite", engine.AsyncFlush})
}

func testOperatorFailover(t *testing.T) {
	nsLn := listen(t)
	ns, err := namesrv.New(namesrv.Config{Listener: nsLn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	free := func() string { return testport.Addr(t) }
	dirA, dirB := t.TempDir(), t.TempDir()
	addrA, haAddrA := free(), free()
	specA := childSpec{Dir: dirA, Addr: addrA, HAAddr: haAddrA, Namesrv: nsLn.Addr().String(), Role: Role{Master: true, Epoch: 1}, Mode: testMode}
	a := startChild(t, specA)

	proxy := newLinkProxy(t, haAddrA)
	lnB, haB := listen(t), listen(t)
	addrB, haAddrB := lnB.Addr().String(), haB.Addr().String()
	ob := nodeOptions(dirB, lnB, haB)
	ob.Broker.NamesrvAddrs = []string{nsLn.Addr().String()}
	ob.Broker.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b := startNode(t, ob, Role{BrokerID: 1, MasterAddr: addrA, MasterHAAddr: proxy.ln.Addr().String()})

	ca := dial(t, addrA)
	waitFor(t, "a replicated send", func() bool {
		code, _, _ := trySend(ca, "first")
		return code == protocol.ResponseSuccess
	})

	// Load; the link is cut under it; A is killed under it.
	l := &ackLog{acked: map[int64]string{}}
	stop := make(chan struct{})
	wg := l.load(addrA, 4, stop)
	time.Sleep(1500 * time.Millisecond)
	proxy.cut()
	time.Sleep(2500 * time.Millisecond)
	a.kill9()
	close(stop)
	wg.Wait()
	t.Logf("acknowledged %d, stored unacknowledged %d, other %v", len(l.acked), l.unacked, l.failures)
	if len(l.acked) == 0 || l.unacked == 0 {
		t.Fatalf("load: %d acknowledged, %d unacknowledged, failures %v\n%s", len(l.acked), l.unacked, l.failures, a.log)
	}

	// B: master of epoch 2.
	replicated := b.Status().LogEnd
	switchStart := time.Now()
	if err := b.SwitchRole(Role{Master: true, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	switchTook := time.Since(switchStart)
	if got := b.Status().Epoch; got != (ha.Entry{Epoch: 2, Start: replicated}) {
		t.Fatalf("B's epoch %+v, want {2 %d}", got, replicated)
	}
	cb := dial(t, addrB)
	for i := range 10 {
		if code, _, err := trySend(cb, fmt.Sprintf("epoch2-%d", i)); err != nil || code != protocol.ResponseSlaveNotAvailable {
			t.Fatalf("send to B without a slave: %d %v", code, err)
		}
	}

	// What A holds beyond the shared history (recovered as A's restart will).
	st, err := engine.Open(nodeOptions(dirA, nil, nil).Broker.Store)
	if err != nil {
		t.Fatal(err)
	}
	aEnd := st.WrittenOffset()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if aEnd <= replicated {
		t.Fatalf("A's log ends at %d, B's at %d: no unreplicated bytes", aEnd, replicated)
	}
	extra := logBytes(t, dirA, replicated, aEnd)
	// Recovery keeps a torn tail (ASYNC_FLUSH) as a copy too; the
	// truncation's copies are the ones that come after this.
	recoveryCopies := brokenCopies(dirA)

	// A comes back as B's slave.
	rejoinStart := time.Now()
	a = startChild(t, childSpec{Dir: dirA, Addr: addrA, Namesrv: nsLn.Addr().String(),
		Role: Role{BrokerID: 1, MasterAddr: addrB, MasterHAAddr: haAddrB}, Mode: testMode})
	waitFor(t, "A to replicate from B", func() bool { return b.Status().HA.Slaves == 1 })
	rejoinTook := time.Since(rejoinStart)
	for i := range 20 {
		body := fmt.Sprintf("after-%d", i)
		code, off, err := trySend(cb, body)
		if err != nil || code != protocol.ResponseSuccess {
			t.Fatalf("send to B with A as slave: %d %v\n%s", code, err, a.log)
		}
		l.acked[off] = body
	}
	waitFor(t, "routes to B as master and A as slave", func() bool {
		r, ok := ns.TopicRoute("FT")
		if !ok {
			return false
		}
		for _, bd := range r.BrokerDatas {
			if bd.BrokerName == "broker-a" {
				return bd.BrokerAddrs[0] == addrB && bd.BrokerAddrs[1] == addrA
			}
		}
		return false
	})
	waitFor(t, "A caught up", func() bool { return b.Status().HA.Acked == b.Status().LogEnd })
	for off, body := range l.acked {
		if got := viewBody(t, cb, off); got != body {
			t.Fatalf("acknowledged message at %d reads %q, want %q", off, got, body)
		}
	}
	masterEpochs := b.Broker().Epochs().Entries()
	a.stop()
	ea, err := ha.OpenEpochFile(filepath.Join(dirA, broker.EpochFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ea.Entries(), masterEpochs) {
		t.Fatalf("A's epoch file %v, B's %v", ea.Entries(), masterEpochs)
	}
	if !strings.Contains(a.log.String(), "truncated to the history it shares") {
		t.Fatalf("A did not truncate:\n%s", a.log)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameLogs(t, dirA, dirB)
	sameQueues(t, dirA, dirB)
	kept := keptCopies(t, dirA, recoveryCopies)
	if len(kept) != len(extra) {
		t.Fatalf("%d copies for %d segments of cut bytes", len(kept), len(extra))
	}
	for i := range kept {
		if !bytes.Equal(kept[i], extra[i]) {
			t.Fatalf("copy %d holds %d bytes, A's cut bytes were %d", i, len(kept[i]), len(extra[i]))
		}
	}
	t.Logf("SwitchRole slave→master took %v; A's restart, truncation and reconnection as a slave took %v", switchTook, rejoinTook)
	t.Logf("A cut %d bytes at %d (its end %d); %s", aEnd-replicated, replicated, aEnd, strconv.Itoa(len(l.acked))+" acknowledged messages verified on B")
}

func offsetOf(msgID string) (int64, error) {
	_, off, err := message.ParseOffsetMsgID(msgID)
	return off, err
}
