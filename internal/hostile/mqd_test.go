package hostile

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/testport"
)

// mqdBin is the mqd binary under test (built by TestMain or MQD_BIN).
var mqdBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // the catalogue skips itself; no binary needed
	}
	if mqdBin = os.Getenv("MQD_BIN"); mqdBin == "" {
		dir, err := os.MkdirTemp("", "hostile-mqd")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		mqdBin = filepath.Join(dir, "mqd")
		build := exec.Command("go", "build", "-o", mqdBin, "github.com/mqd/mqd/cmd/mqd")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building mqd: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// catalogueConf is the broker.conf of every run: a small store (the
// commit log keeps in-memory mirrors of its tail segments, prefaulted in
// the background, so the segment size is noise in RSS), and the
// auto-creation caps lowered so the flood attacks reach them in a few
// hundred requests (the defaults, 10000, bound the same way at a larger
// scale).
const catalogueConf = `flushDiskType=ASYNC_FLUSH
mappedFileSizeCommitLog=16777216
mappedFileSizeConsumeQueue=60000
maxHashSlotNum=5000
maxIndexNum=20000
autoCreateSubscriptionGroupMaxCount=100
autoCreateTopicMaxCount=50
`

// probeTopic is created at start; its route and a send/pull on it are
// checked after each attack.
const (
	probeTopic = "HostileProbe"
	probeGroup = "hostile_probe_group"
)

// mqd is one running mqd process.
type mqd struct {
	t          *testing.T
	dir        string
	brokerAddr string
	nsAddr     string
	cmd        *exec.Cmd
	logPath    string
	client     *remoting.Client
}

// startMqd starts mqd on a new store with free ports and creates the probe
// topic; the process is stopped when the test ends.
func startMqd(t *testing.T) *mqd {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(conf, []byte(catalogueConf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mqd{t: t, dir: dir, logPath: filepath.Join(dir, "mqd.log"),
		brokerAddr: testport.Addr(t), nsAddr: testport.Addr(t)}
	m.launch()
	t.Cleanup(m.stop)
	m.createProbeTopic()
	return m
}

func (m *mqd) launch() {
	t := m.t
	t.Helper()
	_, bport, _ := net.SplitHostPort(m.brokerAddr)
	_, nport, _ := net.SplitHostPort(m.nsAddr)
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	m.cmd = exec.Command(mqdBin, "-c", filepath.Join(m.dir, "broker.conf"), "--store", filepath.Join(m.dir, "store"),
		"--listen-port", bport, "--namesrv-port", nport, "--broker-ip", "127.0.0.1", "--io", "pwrite")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := remoting.Dial(context.Background(), m.brokerAddr, remoting.ClientConfig{})
		if err == nil {
			m.client = c
			break
		}
		if time.Now().After(deadline) || m.exited() {
			m.fatalf("mqd did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mqd) exited() bool {
	var ws syscall.WaitStatus
	pid, _ := syscall.Wait4(m.cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
	return pid == m.cmd.Process.Pid
}

// fatalf fails the test with the tail of mqd's log.
func (m *mqd) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf(format+"\n--- mqd log (tail) ---\n%s", append(args, m.logTail())...)
}

func (m *mqd) logTail() string {
	data, _ := os.ReadFile(m.logPath)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// stop shuts mqd down with SIGTERM (killing it after 30 s).
func (m *mqd) stop() {
	if m.client != nil {
		m.client.Close()
		m.client = nil
	}
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- m.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-done
		m.t.Errorf("mqd did not stop within 30 s after SIGTERM")
	}
	m.cmd = nil
}

// restart stops mqd and starts it again on the same store and ports.
func (m *mqd) restart() {
	m.t.Helper()
	m.stop()
	m.launch()
}

// call invokes req on the broker (or the nameserver with ns).
func (m *mqd) call(req *protocol.Command, ns bool) *protocol.Command {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := m.client
	if ns {
		nc, err := remoting.Dial(ctx, m.nsAddr, remoting.ClientConfig{})
		if err != nil {
			m.fatalf("dial nameserver: %v", err)
		}
		defer nc.Close()
		c = nc
	}
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		m.fatalf("%s: %v", protocol.RequestCodeName(req.Code), err)
	}
	return resp
}

func (m *mqd) createProbeTopic() {
	m.t.Helper()
	resp := m.call(protocol.NewRequest(protocol.UpdateAndCreateTopic, &protocol.CreateTopicRequestHeader{
		Topic: probeTopic, DefaultTopic: "TBW102", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6,
		TopicFilterType: protocol.TopicFilterSingleTag}), false)
	if resp.Code != protocol.ResponseSuccess {
		m.fatalf("create probe topic: %d %s", resp.Code, resp.Remark)
	}
}

// checkServes sends a message to the probe topic and pulls it back, and
// waits until the nameserver routes the probe topic to the broker.
func (m *mqd) checkServes(when string) {
	m.t.Helper()
	off := m.sendProbe(when)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// Not found until dispatched (asynchronously) to the consume queue.
		resp := m.call(protocol.NewRequest(protocol.PullMessage, &protocol.PullMessageRequestHeader{
			ConsumerGroup: probeGroup, Topic: probeTopic, QueueID: 0, QueueOffset: off, MaxMsgNums: 1,
			SysFlag: protocol.PullFlagSubscription, Subscription: "*", ExpressionType: protocol.ExpressionTypeTag}), false)
		if resp.Code == protocol.ResponseSuccess && len(resp.Body) > 0 {
			break
		}
		if resp.Code != protocol.ResponsePullNotFound || time.Now().After(deadline) {
			m.fatalf("%s: pull: code %d %s", when, resp.Code, resp.Remark)
		}
	}
	m.waitRouted(when)
}

func (m *mqd) sendProbe(when string) int64 {
	m.t.Helper()
	req := protocol.NewRequest(protocol.SendMessage, &protocol.SendMessageRequestHeader{
		ProducerGroup: "hostile_probe_producer", Topic: probeTopic, DefaultTopic: "TBW102", DefaultTopicQueueNums: 4,
		QueueID: 0, BornTimestamp: time.Now().UnixMilli()})
	req.Body = []byte("probe")
	resp := m.call(req, false)
	var h protocol.SendMessageResponseHeader
	if resp.Code != protocol.ResponseSuccess || h.Decode(resp.ExtFields) != nil {
		m.fatalf("%s: send: code %d %s", when, resp.Code, resp.Remark)
	}
	return h.QueueOffset
}

// waitRouted waits up to 15 s for the probe topic's route to name the
// broker.
func (m *mqd) waitRouted(when string) {
	m.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := m.call(protocol.NewRequest(protocol.GetRouteInfoByTopic, &protocol.GetRouteInfoRequestHeader{Topic: probeTopic}), true)
		if resp.Code == protocol.ResponseSuccess && bytes.Contains(resp.Body, []byte(m.brokerAddr)) {
			return
		}
		if time.Now().After(deadline) {
			m.fatalf("%s: probe topic not routed to %s: code %d %s", when, m.brokerAddr, resp.Code, resp.Remark)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memory is VmRSS and VmHWM (peak) of the process, in bytes.
type memory struct{ rss, hwm, anon, file int64 }

func (m *mqd) memory() memory {
	m.t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(m.cmd.Process.Pid) + "/status")
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	var mem memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			mem.rss = kb << 10
		case "VmHWM":
			mem.hwm = kb << 10
		case "RssAnon":
			mem.anon = kb << 10
		case "RssFile":
			mem.file = kb << 10
		}
	}
	return mem
}

// settle polls RSS until it has not grown for quiet (at most d): effects
// that build up on the server after the client's last write are counted,
// and a baseline is taken once background preallocation is done.
func (m *mqd) settle(quiet, d time.Duration) {
	deadline := time.Now().Add(d)
	last, since := m.memory().rss, time.Now()
	for time.Now().Before(deadline) && time.Since(since) < quiet {
		time.Sleep(100 * time.Millisecond)
		if cur := m.memory().rss; cur > last+(1<<20) {
			last, since = cur, time.Now()
		}
	}
}

// rawConn is a TCP connection for frames whose replies the attack never
// reads.
func (m *mqd) rawConn(addr string) net.Conn {
	m.t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		m.fatalf("dial %s: %v", addr, err)
	}
	return c
}

// writeFrames writes each command's frame to c.
func (m *mqd) writeFrames(c net.Conn, cmds ...*protocol.Command) {
	m.t.Helper()
	for _, cmd := range cmds {
		frame, err := cmd.Encode()
		if err != nil {
			m.t.Fatal(err)
		}
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write(frame); err != nil {
			m.t.Logf("write: %v (the server may push back or close)", err)
			return
		}
	}
}
