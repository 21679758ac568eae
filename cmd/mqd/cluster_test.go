package main

// Multi-process controller-mode cluster for the failover tests: three
// controllers and three brokers of one broker name run as child processes
// (this test binary re-executed with mqd's arguments, so kill -9 is real);
// two nameservers run in the test process.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/namesrv"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/testport"
)

const childArgsEnv = "MQD_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		if err := run(strings.Split(args, "\x1f"), log); err != nil {
			log.Error("mqd: " + err.Error())
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is one mqd child process.
type proc struct {
	args []string
	cmd  *exec.Cmd
	log  *syncBuf
	done chan error
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(p.args, "\x1f"))
	if p.log == nil {
		p.log = &syncBuf{}
	}
	fmt.Fprintf(p.log, "==== start %v\n", p.args)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(p.cmd, p.done)
}

func (p *proc) running() bool { return p.cmd != nil }

func (p *proc) kill9() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// cluster is the whole failover setup.
type cluster struct {
	t        *testing.T
	ns       []*namesrv.Server
	nsAddrs  []string
	ctrls    []*proc
	ctrlAddr []string
	brokers  []*proc
	bAddrs   []string // remoting addresses, index = broker
	bHAAddrs []string
	proxies  []*cutProxy // per broker: its path to the controllers (partition tests)
	haProxy  []*cutProxy // per broker: its slaves' path to its HA server (haAdvertisedAddr)
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// newCluster starts two nameservers, three controllers and three brokers
// (controllerHeartBeatTimeoutMills = timeout) and waits for a master.
// The children's ports come from testport, below the ephemeral range the
// in-process listeners (nameservers, proxies) take theirs from.
func newCluster(t *testing.T, timeout time.Duration) *cluster {
	c := &cluster{t: t}
	reserve := func() string { return testport.Addr(t) }
	var peers []string
	for i := range 3 {
		a := reserve()
		c.ctrlAddr = append(c.ctrlAddr, a)
		peers = append(peers, fmt.Sprintf("n%d=%s=%s", i, reserve(), a))
	}
	for range 3 {
		c.bAddrs = append(c.bAddrs, reserve())
		c.bHAAddrs = append(c.bHAAddrs, reserve())
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ns, err := namesrv.New(namesrv.Config{Listener: ln, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := ns.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Shutdown(context.Background()) })
		c.ns, c.nsAddrs = append(c.ns, ns), append(c.nsAddrs, ln.Addr().String())
	}
	for i := range 3 {
		c.haProxy = append(c.haProxy, newCutProxy(t, c.bHAAddrs[i]))
	}
	var confs []string
	for i := range 3 {
		var ctrl []string
		for _, a := range c.ctrlAddr {
			p := newCutProxy(t, a)
			c.proxies = append(c.proxies, p)
			ctrl = append(ctrl, p.addr())
		}
		conf := filepath.Join(t.TempDir(), "broker.conf")
		os.WriteFile(conf, []byte(strings.Join([]string{
			"brokerClusterName=FailoverCluster", "brokerName=broker-a", "brokerRole=SYNC_MASTER",
			"enableControllerMode=true", "controllerAddr=" + strings.Join(ctrl, ";"),
			fmt.Sprintf("controllerHeartBeatTimeoutMills=%d", timeout.Milliseconds()),
			"brokerHeartbeatInterval=" + fmt.Sprint(failoverInterval.Milliseconds()), "haMaxTimeSlaveNotCatchup=3000",
			"haListenPort=" + portOf(c.bHAAddrs[i]), "mappedFileSizeCommitLog=4194304",
			"registerNameServerPeriod=1000",
			"haAdvertisedAddr=" + c.haProxy[i].addr(),
		}, "\n")), 0o644)
		confs = append(confs, conf)
	}
	for i := range 3 {
		p := &proc{args: []string{"controller", "--id", fmt.Sprintf("n%d", i), "--peers", strings.Join(peers, ";"),
			"--dir", filepath.Join(t.TempDir(), "ctl")}}
		p.start(t)
		c.ctrls = append(c.ctrls, p)
	}
	for i := range 3 {
		p := &proc{args: []string{"broker", "-c", confs[i], "--store", filepath.Join(t.TempDir(), "store"),
			"--listen-port", portOf(c.bAddrs[i]), "--broker-ip", "127.0.0.1", "--namesrv", strings.Join(c.nsAddrs, ";")}}
		p.start(t)
		c.brokers = append(c.brokers, p)
	}
	t.Cleanup(func() {
		for _, p := range append(c.brokers, c.ctrls...) {
			p.kill9()
		}
		if t.Failed() {
			for i, p := range c.brokers {
				t.Logf("broker %d log:\n%s", i, tail(p.log.String(), 6000))
			}
			for i, p := range c.ctrls {
				t.Logf("controller %d log:\n%s", i, tail(p.log.String(), 3000))
			}
		}
	})
	c.waitMaster(-1, 30*time.Second)
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// cutController cuts (or restores) broker i's paths to the controllers.
func (c *cluster) cutController(i int, cut bool) {
	for _, p := range c.proxies[i*3 : i*3+3] {
		p.set(cut)
	}
}

// cutHA cuts (or restores) every path into broker i's HA server: the
// connections its slaves have through its advertised proxy are closed and
// new ones refused.
func (c *cluster) cutHA(i int, cut bool) { c.haProxy[i].set(cut) }

// master returns the broker index every nameserver routes brokerId 0 of
// broker-a to, or -1.
func (c *cluster) master() int {
	idx := -1
	for _, ns := range c.ns {
		ci := ns.ClusterInfo()
		bd, ok := ci.BrokerAddrTable["broker-a"]
		if !ok {
			return -1
		}
		a := bd.BrokerAddrs[0]
		i := -1
		for j, ba := range c.bAddrs {
			if ba == a {
				i = j
			}
		}
		if i < 0 || idx >= 0 && idx != i {
			return -1
		}
		idx = i
	}
	return idx
}

// waitMaster waits until the nameservers route to a master other than
// not (-1: any) that accepts a send; it returns its index.
func (c *cluster) waitMaster(not int, timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := c.master(); m >= 0 && m != not {
			if code, _, err := sendOne(c.bAddrs[m], "probe"); err == nil && code == protocol.ResponseSuccess {
				return m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no master (other than %d) within %v", not, timeout)
	return -1
}

var clients sync.Map // addr → *remoting.Client

func client(addr string) (*remoting.Client, error) {
	if c, ok := clients.Load(addr); ok && !c.(*remoting.Client).Closed() {
		return c.(*remoting.Client), nil
	}
	c, err := remoting.Dial(context.Background(), addr, remoting.ClientConfig{DialTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	clients.Store(addr, c)
	return c, nil
}

// sendOne sends a message to topic FT on addr; it returns the code and,
// on success, the commit-log offset.
func sendOne(addr, body string) (int16, int64, error) { return sendWithin(addr, body, 5*time.Second) }

// sendWithin is sendOne with the client's timeout.
func sendWithin(addr, body string, timeout time.Duration) (int16, int64, error) {
	c, err := client(addr)
	if err != nil {
		return 0, 0, err
	}
	req := protocol.NewRequest(protocol.SendMessage, nil)
	req.ExtFields = (&protocol.SendMessageRequestHeader{ProducerGroup: "pg", Topic: "FT", DefaultTopic: "TBW102",
		DefaultTopicQueueNums: 2, QueueID: 0, BornTimestamp: time.Now().UnixMilli()}).Encode()
	req.Body = []byte(body)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
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
	_, off, err := message.ParseOffsetMsgID(rh.MsgID)
	return resp.Code, off, err
}

// readAt returns the body of the message at a commit-log offset on addr.
func readAt(addr string, off int64) (string, error) {
	c, err := client(addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, protocol.NewRequest(protocol.ViewMessageByID, &protocol.ViewMessageRequestHeader{Offset: off}))
	if err != nil {
		return "", err
	}
	if resp.Code != protocol.ResponseSuccess {
		return "", fmt.Errorf("view %d: code %d %s", off, resp.Code, resp.Remark)
	}
	v, err := message.Parse(resp.Body)
	if err != nil {
		return "", err
	}
	return string(v.Body), nil
}

// acks records every acknowledged send: offset → body.
type acks struct {
	mu      sync.Mutex
	acked   map[int64]string
	refused map[int16]int
	n       int
}

// load runs workers that send to whichever broker the nameservers route
// to as master, until stop closes.
func (c *cluster) load(a *acks, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := c.master()
				if m < 0 {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				body := fmt.Sprintf("w%d-%d", w, i)
				code, off, err := sendOne(c.bAddrs[m], body)
				a.mu.Lock()
				a.n++
				switch {
				case err != nil:
					a.refused[-1]++
				case code == protocol.ResponseSuccess:
					if old, dup := a.acked[off]; dup {
						a.refused[-2]++ // two acknowledged messages at one offset: reported by check
						a.acked[off] = old + "|" + body
					} else {
						a.acked[off] = body
					}
				default:
					a.refused[code]++
				}
				a.mu.Unlock()
				if err != nil || code != protocol.ResponseSuccess {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return &wg
}

// check verifies that every acknowledged message reads back at its offset
// on broker m.
func (c *cluster) check(a *acks, m int) {
	c.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refused[-2] > 0 {
		c.t.Fatalf("%d offsets were acknowledged twice", a.refused[-2])
	}
	for off, body := range a.acked {
		got, err := readAt(c.bAddrs[m], off)
		if err != nil || got != body {
			c.t.Fatalf("acknowledged message at %d: read %q (%v), want %q", off, got, err, body)
		}
	}
}

// cutProxy forwards to target; set(true) closes its connections and
// refuses new ones until set(false).
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.set(true) })
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		u, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut { // cut while dialling
			p.mu.Unlock()
			c.Close()
			u.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close(); c.Close() }()
		go func() { io.Copy(c, u); u.Close(); c.Close() }()
	}
}

func (p *cutProxy) set(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}
