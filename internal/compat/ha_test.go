package compat

// Replication across processes: a nameserver, a master and a slave, each
// an mqd process with its own store and ports on loopback, the slave
// reaching the master's HA port through a fault-injecting proxy.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

var mqdBinary struct {
	once sync.Once
	path string
	err  error
}

// buildMQD builds cmd/mqd once per test binary.
func buildMQD(t *testing.T) string {
	t.Helper()
	mqdBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "mqd-ha-bin")
		if err != nil {
			mqdBinary.err = err
			return
		}
		mqdBinary.path = filepath.Join(dir, "mqd")
		out, err := exec.Command("go", "build", "-o", mqdBinary.path, "github.com/mqd/mqd/cmd/mqd").CombinedOutput()
		if err != nil {
			mqdBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if mqdBinary.err != nil {
		t.Fatal(mqdBinary.err)
	}
	return mqdBinary.path
}

// syncBuf is a process's output, safe to read while the process writes.
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

// mqdProc is one mqd process.
type mqdProc struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd
	log  *syncBuf
	port int // the port that says it is up
	done chan error
}

func startMQD(t *testing.T, port int, args ...string) *mqdProc {
	t.Helper()
	p := &mqdProc{t: t, args: args, port: port}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *mqdProc) start() {
	p.t.Helper()
	p.log = &syncBuf{}
	p.cmd = exec.Command(buildMQD(p.t), p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-p.done:
			p.t.Fatalf("mqd %v exited: %v\n%s", p.args, err, p.log)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("mqd %v did not start\n%s", p.args, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9 kills the process without letting it flush or close anything.
func (p *mqdProc) kill9() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// stop shuts the process down cleanly (SIGTERM).
func (p *mqdProc) stop() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("mqd %v: %v\n%s", p.args, err, p.log)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("mqd %v did not stop", p.args)
	}
	p.cmd = nil
}

func (p *mqdProc) kill() { p.kill9() }

// haCluster is a nameserver, a master and a slave of broker-a.
type haCluster struct {
	*cluster
	master, slave *mqdProc
	masterStore   string
	slaveStore    string
	masterPort    int
	slavePort     int
	proxy         *faultProxy
}

const haSegment = 1 << 20 // mappedFileSizeCommitLog: segments roll during the tests

func writeConf(t *testing.T, kv map[string]string) string {
	var b strings.Builder
	for k, v := range kv {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	path := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startHACluster(t *testing.T, role, flushType string, slaveConf map[string]string) *haCluster {
	if testing.Short() {
		t.Skip("spawns mqd processes")
	}
	nsPort := freePort(t)
	startMQD(t, nsPort, "namesrv", "--namesrv-port", strconv.Itoa(nsPort))
	c := &haCluster{cluster: &cluster{t: t, nsAddr: fmt.Sprintf("127.0.0.1:%d", nsPort)}}
	c.masterPort, c.slavePort = freePort(t), freePort(t)
	haPort := freePort(t)
	c.masterStore, c.slaveStore = t.TempDir(), t.TempDir()
	common := map[string]string{"brokerName": "broker-a", "mappedFileSizeCommitLog": strconv.Itoa(haSegment),
		"flushDiskType": flushType, "haSendHeartbeatInterval": "500", "haHousekeepingInterval": "3000", "syncFlushTimeout": "3000"}
	mconf := map[string]string{"brokerRole": role, "brokerId": "0", "haListenPort": strconv.Itoa(haPort)}
	c.proxy = newFaultProxy(t, fmt.Sprintf("127.0.0.1:%d", haPort))
	sconf := map[string]string{"brokerRole": "SLAVE", "brokerId": "1", "haMasterAddress": c.proxy.addr()}
	for k, v := range common {
		mconf[k], sconf[k] = v, v
	}
	for k, v := range slaveConf {
		sconf[k] = v
	}
	c.master = startMQD(t, c.masterPort, c.brokerArgs(mconf, c.masterStore, c.masterPort)...)
	c.slave = startMQD(t, c.slavePort, c.brokerArgs(sconf, c.slaveStore, c.slavePort)...)
	waitUntil(t, 20*time.Second, func() bool { return c.brokerIDs("TBW102") == 2 })
	return c
}

func (c *haCluster) brokerArgs(conf map[string]string, store string, port int) []string {
	return []string{"broker", "-c", writeConf(c.t, conf), "--store", store, "--listen-port", strconv.Itoa(port),
		"--namesrv", c.nsAddr, "--broker-ip", "127.0.0.1", "--io", "pwrite"}
}

// brokerIDs is how many broker ids the route of topic shows for broker-a.
func (c *haCluster) brokerIDs(topic string) int { return routeIDs(c.nsAddr, topic)["broker-a"] }

// routeIDs maps each broker name in the route of topic at nameserver
// nsAddr to how many broker ids it shows.
func routeIDs(nsAddr, topic string) map[string]int {
	ids := map[string]int{}
	cl, err := remoting.Dial(context.Background(), nsAddr, remoting.ClientConfig{})
	if err != nil {
		return ids
	}
	defer cl.Close()
	req := protocol.NewRequest(protocol.GetRouteInfoByTopic, nil)
	req.SetExt("topic", topic)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, req)
	if err != nil || resp.Code != protocol.ResponseSuccess {
		return ids
	}
	rd, err := protocol.DecodeTopicRouteData(resp.Body)
	if err != nil {
		return ids
	}
	for _, bd := range rd.BrokerDatas {
		ids[bd.BrokerName] = len(bd.BrokerAddrs)
	}
	return ids
}

// slaveHasTopic reports whether the slave's topic table has topic
// (GET_ALL_TOPIC_CONFIG).
func (c *haCluster) slaveHasTopic(topic string) bool {
	cl, err := remoting.Dial(context.Background(), fmt.Sprintf("127.0.0.1:%d", c.slavePort), remoting.ClientConfig{})
	if err != nil {
		return false
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, protocol.NewRequest(protocol.GetAllTopicConfig, nil))
	if err != nil || resp.Code != protocol.ResponseSuccess {
		return false
	}
	var w protocol.TopicConfigSerializeWrapper
	if err := protocol.DecodeJSON(resp.Body, &w); err != nil {
		return false
	}
	_, ok := w.TopicConfigTable[topic]
	return ok
}

// viewOn reads the record at phys from the slave (VIEW_MESSAGE_BY_ID);
// nil when it is not there.
func viewOn(t *testing.T, port int, phys int64) *primitive.MessageExt {
	cl, err := remoting.Dial(context.Background(), fmt.Sprintf("127.0.0.1:%d", port), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := protocol.NewRequest(protocol.ViewMessageByID, nil)
	req.SetExt("offset", strconv.FormatInt(phys, 10))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, req)
	if err != nil || resp.Code != protocol.ResponseSuccess {
		return nil
	}
	ms := primitive.DecodeMessage(resp.Body)
	if len(ms) != 1 {
		return nil
	}
	return ms[0]
}

// sent is one acknowledged send.
type sent struct {
	phys   int64
	body   string
	broker string
}

// sendLoad sends from workers goroutines until stop is closed or each sent
// max messages; it returns the acknowledged (SEND_OK) sends.
func (c *haCluster) sendLoad(p rocketmq.Producer, topic string, workers, max int, stop <-chan struct{}, progress *atomic.Int64) []sent {
	var mu sync.Mutex
	var acked []sent
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range max {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("g%d-%d-%s", g, i, strings.Repeat("x", 200+i%700))
				res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
				if progress != nil {
					progress.Add(1)
				}
				if err != nil || res.Status != primitive.SendOK {
					continue
				}
				_, off, err := message.ParseOffsetMsgID(res.OffsetMsgID)
				if err != nil {
					c.t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, sent{off, body, res.MessageQueue.BrokerName})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acked
}

func waitProgress(t *testing.T, n *atomic.Int64, at int64) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() bool { return n.Load() >= at })
}

// TestHAAsyncMasterByteIdentical: 1m-1s under ASYNC_MASTER; mid-stream the
// link is cut and restored, slowed, and loses bytes, and the slave is
// killed (-9) and restarted; the two commit logs end byte-identical and the
// slave serves every message.
func TestHAAsyncMasterByteIdentical(t *testing.T) {
	c := startHACluster(t, "ASYNC_MASTER", "ASYNC_FLUSH", map[string]string{"haStreamCompression": "s2"}) // the cut, slow and lossy link carries a compressed stream
	p := c.producer(producerSendTimeout())
	var progress atomic.Int64
	done := make(chan []sent, 1)
	go func() { done <- c.sendLoad(p, "HA1", 4, 1000, nil, &progress) }()
	connects := func() int { return strings.Count(c.master.log.String(), "ha: slave connected") }
	waitProgress(t, &progress, 600)
	c.proxy.cut()
	waitProgress(t, &progress, 1200)
	c.proxy.restore()
	waitUntil(t, 10*time.Second, func() bool { return connects() >= 2 })
	c.proxy.delay.Store(int64(3 * time.Millisecond)) // a slow link
	waitProgress(t, &progress, 1600)
	c.proxy.delay.Store(0)
	// Bytes lost mid-stream (not something TCP does, but a broken
	// middlebox might): when the loss breaks the framing, the slave must
	// notice (header, offsets, checksums), append nothing bad and resume
	// from its own end; when whole messages are lost, the next data
	// message's offset does not match and the slave reconnects. Either
	// way the logs must end identical (checked below).
	c.proxy.drop.Store(true)
	time.Sleep(200 * time.Millisecond)
	c.proxy.drop.Store(false)
	waitProgress(t, &progress, 2400)
	c.slave.kill9()
	waitProgress(t, &progress, 3000)
	c.slave.start()
	acked := <-done
	if len(acked) != 4000 {
		t.Fatalf("%d of 4000 sends acknowledged by an ASYNC_MASTER", len(acked))
	}
	last := acked[0]
	for _, s := range acked {
		if s.phys > last.phys {
			last = s
		}
	}
	waitUntil(t, 30*time.Second, func() bool { return viewOn(t, c.slavePort, last.phys) != nil })
	for _, s := range acked[:200] {
		if m := viewOn(t, c.slavePort, s.phys); m == nil || string(m.Body) != s.body {
			t.Fatalf("message at %d missing or different on the slave", s.phys)
		}
	}
	t.Logf("the master accepted %d slave connections", connects())
	c.slave.stop()
	c.master.stop()
	sameCommitLogs(t, c.masterStore, c.slaveStore)
}

// sameCommitLogs compares two stores' commit-log segments byte for byte; a
// segment only one side has must hold no data.
func sameCommitLogs(t *testing.T, a, b string) {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{a, b} {
		es, err := os.ReadDir(filepath.Join(dir, "commitlog"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if len(e.Name()) == 20 {
				names[e.Name()] = true
			}
		}
	}
	compared := 0
	for name := range names {
		x, _ := os.ReadFile(filepath.Join(a, "commitlog", name))
		y, _ := os.ReadFile(filepath.Join(b, "commitlog", name))
		if len(x) == 0 || len(y) == 0 {
			if !allZero(x) || !allZero(y) {
				t.Fatalf("segment %s holds data on one side only", name)
			}
			continue
		}
		if !bytes.Equal(x, y) {
			i := 0
			for i < len(x) && i < len(y) && x[i] == y[i] {
				i++
			}
			t.Fatalf("segment %s differs from byte %d", name, i)
		}
		compared++
	}
	if compared < 2 {
		t.Fatalf("only %d segments compared; the test should roll segments", compared)
	}
	t.Logf("%d commit-log segments byte-identical", compared)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestHASyncMasterKillNineLosesNothing: under SYNC_MASTER every
// acknowledged send is on the slave when the master is killed -9 and its
// store deleted.
func TestHASyncMasterKillNineLosesNothing(t *testing.T) {
	c := startHACluster(t, "SYNC_MASTER", "SYNC_FLUSH", nil)
	p := c.producer(producerSendTimeout(), producer.WithRetry(0))
	var progress atomic.Int64
	stop := make(chan struct{})
	done := make(chan []sent, 1)
	go func() { done <- c.sendLoad(p, "HA2", 8, 100000, stop, &progress) }()
	waitProgress(t, &progress, 1500)
	c.master.kill9()
	close(stop)
	acked := <-done
	if err := os.RemoveAll(c.masterStore); err != nil {
		t.Fatal(err)
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d sends acknowledged", len(acked))
	}
	for _, s := range acked {
		if m := viewOn(t, c.slavePort, s.phys); m == nil || string(m.Body) != s.body {
			t.Fatalf("acknowledged message at %d is not on the slave", s.phys)
		}
	}
	t.Logf("%d acknowledged sends all on the slave after the master's kill -9 and store deletion", len(acked))
}

// TestHAConsumeFromSlaveWhileMasterDown: a Go push consumer that was
// consuming from the master keeps consuming from the slave
// (slaveReadEnable) once the master is killed, and the slave refuses sends
// with SERVICE_NOT_AVAILABLE. (The Go client v2.1.2 reads a queue's
// starting offset from the master only, so a consumer must have started
// while the master was up.)
func TestHAConsumeFromSlaveWhileMasterDown(t *testing.T) {
	t.Parallel() // mostly waits for the client's 30 s route refresh
	c := startHACluster(t, "ASYNC_MASTER", "ASYNC_FLUSH", map[string]string{"slaveReadEnable": "true"})
	p := c.producer(producerSendTimeout())
	acked := c.sendLoad(p, "HA3", 2, 150, nil, nil)
	if len(acked) != 300 {
		t.Fatalf("%d of 300 acknowledged", len(acked))
	}
	last := acked[0]
	for _, s := range acked {
		last.phys = max(last.phys, s.phys)
	}
	waitUntil(t, 20*time.Second, func() bool { return viewOn(t, c.slavePort, last.phys) != nil })
	// The slave learns the topic from the master's metadata (every 10 s).
	waitUntil(t, 30*time.Second, func() bool { return c.slaveHasTopic("HA3") })

	want := map[string]bool{}
	for _, s := range acked {
		want[s.body] = true
	}
	var mu sync.Mutex
	got := map[string]int{}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	// A slow consumer: small pulls, spaced out, so most messages are still
	// unread when the master dies.
	pc := c.pushConsumer("ha-cg", consumer.WithPullBatchSize(2), consumer.WithPullInterval(200*time.Millisecond),
		consumer.WithPullThresholdForQueue(4))
	if err := pc.Subscribe("HA3", consumer.MessageSelector{}, func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got[string(m.Body)]++
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	waitUntil(t, 30*time.Second, func() bool { return count() >= 20 })
	c.master.kill9()
	before := count()
	if before >= len(want) {
		t.Fatalf("consumer finished (%d) before the master was killed; slow it down", before)
	}
	waitUntil(t, 20*time.Second, func() bool { return c.brokerIDs("HA3") == 1 })

	// The slave refuses a send with Java's code.
	cl, err := remoting.Dial(context.Background(), fmt.Sprintf("127.0.0.1:%d", c.slavePort), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h := protocol.SendMessageRequestHeader{ProducerGroup: "pg", Topic: "HA3", DefaultTopic: "TBW102", DefaultTopicQueueNums: 4,
		QueueID: 0, BornTimestamp: time.Now().UnixMilli()}
	req := protocol.NewRequest(protocol.SendMessage, &h)
	req.Body = []byte("to the slave")
	if resp, err := cl.Invoke(context.Background(), req); err != nil || resp.Code != protocol.ResponseServiceNotAvailable {
		t.Fatalf("send to slave: %v %+v", err, resp)
	}

	deadline := time.Now().Add(90 * time.Second) // the client refreshes routes every 30 s
	for count() < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d (%d before the master died); slave log:\n%s", count(), len(want), before, c.slave.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fromSlave := len(want) - before

	// The master returns (same store): new sends are consumed too, the
	// consumer's offsets carry over, and duplicates are counted.
	c.master.start()
	waitUntil(t, 30*time.Second, func() bool { return c.brokerIDs("HA3") == 2 })
	var more []sent
	waitUntil(t, 60*time.Second, func() bool { // the producer finds the master again
		more = append(more, c.sendLoad(p, "HA3", 1, 20, nil, nil)...)
		return len(more) >= 100
	})
	for _, s := range more {
		want[s.body] = true
	}
	deadline = time.Now().Add(60 * time.Second)
	for count() < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("after the master returned: consumed %d of %d", count(), len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for body, n := range got {
		if !want[body] {
			t.Fatalf("consumed a message never sent: %q", body)
		}
		dups += n - 1
	}
	// Offsets carried over: had the consumer gone back to the offsets the
	// master held when it died, it would consume most of what it read
	// from the slave again.
	if dups > fromSlave/2 {
		t.Fatalf("%d duplicates: the consumer's offsets did not carry over the outage", dups)
	}
	t.Logf("consumed %d messages before the master died, %d from the slave, %d after it returned; %d duplicates",
		before, fromSlave, len(more), dups)
}

// TestHATwoMastersTwoSlaves: a 2m-2s cluster (broker-a and broker-b, each a
// SYNC_MASTER and a slave) with two nameservers. The slaves learn their
// master's HA address from the nameservers (no haMasterAddress); both
// nameservers route {0: master, 1: slave} for both names; when broker-a's
// master is killed -9, sends go on to broker-b and a push consumer that
// was running receives every acknowledged message, broker-a's from its
// slave.
func TestHATwoMastersTwoSlaves(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns mqd processes")
	}
	t.Parallel() // mostly waits for the client's 30 s route refresh
	var nss []string
	for range 2 {
		port := freePort(t)
		startMQD(t, port, "namesrv", "--namesrv-port", strconv.Itoa(port))
		nss = append(nss, fmt.Sprintf("127.0.0.1:%d", port))
	}
	c := &haCluster{cluster: &cluster{t: t, nsAddr: nss[0]}}
	procs := map[string]*mqdProc{}
	ports := map[string]int{}
	for _, name := range []string{"broker-a", "broker-b"} {
		haPort := freePort(t)
		for id, role := range []string{"SYNC_MASTER", "SLAVE"} {
			conf := map[string]string{"brokerName": name, "brokerId": strconv.Itoa(id), "brokerRole": role,
				"mappedFileSizeCommitLog": strconv.Itoa(haSegment), "flushDiskType": "ASYNC_FLUSH", "slaveReadEnable": "true",
				"haSendHeartbeatInterval": "500", "haHousekeepingInterval": "3000", "syncFlushTimeout": "3000"}
			if role != "SLAVE" {
				conf["haListenPort"] = strconv.Itoa(haPort)
			}
			port := freePort(t)
			args := []string{"broker", "-c", writeConf(t, conf), "--store", t.TempDir(), "--listen-port", strconv.Itoa(port),
				"--namesrv", strings.Join(nss, ";"), "--broker-ip", "127.0.0.1", "--io", "pwrite"}
			key := fmt.Sprintf("%s/%d", name, id)
			procs[key], ports[key] = startMQD(t, port, args...), port
		}
	}
	for _, ns := range nss {
		waitUntil(t, 30*time.Second, func() bool {
			ids := routeIDs(ns, "TBW102")
			return ids["broker-a"] == 2 && ids["broker-b"] == 2
		})
	}
	// The topic on both masters (auto-creation would put it on whichever
	// master the first send reached).
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver(nss)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"broker-a", "broker-b"} {
		if err := a.CreateTopic(context.Background(), admin.WithTopicCreate("HA4"),
			admin.WithBrokerAddrCreate(fmt.Sprintf("127.0.0.1:%d", ports[name+"/0"])), admin.WithReadQueueNums(2),
			admin.WithWriteQueueNums(2)); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	for _, ns := range nss {
		waitUntil(t, 30*time.Second, func() bool {
			ids := routeIDs(ns, "HA4")
			return ids["broker-a"] == 2 && ids["broker-b"] == 2
		})
	}
	p := c.producer(producerSendTimeout())
	// SYNC_MASTERs answer SLAVE_NOT_AVAILABLE until their slave has
	// learned their HA address from a nameserver and connected.
	waitUntil(t, 30*time.Second, func() bool { return len(c.sendLoad(p, "HA4", 1, 8, nil, nil)) == 8 })
	acked := c.sendLoad(p, "HA4", 2, 100, nil, nil)
	if len(acked) != 200 {
		t.Fatalf("%d of 200 acknowledged by two SYNC_MASTERs", len(acked))
	}
	perBroker := map[string]int{}
	for _, s := range acked {
		perBroker[s.broker]++
		// SYNC_MASTER: acknowledged means on that master's slave, which
		// found its master through the nameservers.
		if m := viewOn(t, ports[s.broker+"/1"], s.phys); m == nil || string(m.Body) != s.body {
			t.Fatalf("acknowledged message at %s:%d is not on its slave\nmaster:\n%s\nslave:\n%s", s.broker, s.phys, procs[s.broker+"/0"].log, procs[s.broker+"/1"].log)
		}
	}
	if perBroker["broker-a"] == 0 || perBroker["broker-b"] == 0 {
		t.Fatalf("sends did not reach both brokers: %v", perBroker)
	}
	var mu sync.Mutex
	got := map[string]bool{}
	count := func() int { // acknowledged messages consumed
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range acked {
			if got[s.body] {
				n++
			}
		}
		return n
	}
	pc := c.pushConsumer("ha-2m2s", consumer.WithNsResolver(primitive.NewPassthroughResolver(nss)),
		consumer.WithPullBatchSize(2), consumer.WithPullInterval(200*time.Millisecond), consumer.WithPullThresholdForQueue(4))
	if err := pc.Subscribe("HA4", consumer.MessageSelector{}, func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			got[string(m.Body)] = true
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	waitUntil(t, 30*time.Second, func() bool { return count() >= 10 })
	procs["broker-a/0"].kill9()
	// Sends go on: the producer moves to broker-b.
	more := c.sendLoad(p, "HA4", 1, 50, nil, nil)
	if len(more) < 40 {
		t.Fatalf("only %d of 50 sends acknowledged with broker-a's master down", len(more))
	}
	acked = append(acked, more...)
	deadline := time.Now().Add(90 * time.Second)
	for count() < len(acked) {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d acknowledged messages", count(), len(acked))
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range acked {
		if !got[s.body] {
			t.Fatalf("acknowledged message %q (%s) never consumed", s.body[:12], s.broker)
		}
	}
	t.Logf("2m-2s: %d acknowledged (%v before the kill), all consumed", len(acked), perBroker)
}

// TestHASlaveWithForeignBytesExits: a store that holds a log the master
// never had (here: written by another master) cannot become that master's
// slave: the master refuses it and mqd exits non-zero with the reason,
// leaving the store untouched.
func TestHASlaveWithForeignBytesExits(t *testing.T) {
	c := startHACluster(t, "ASYNC_MASTER", "ASYNC_FLUSH", nil)
	p := c.producer(producerSendTimeout())
	if n := len(c.sendLoad(p, "HA5", 1, 20, nil, nil)); n != 20 {
		t.Fatalf("%d of 20 acknowledged", n)
	}
	// Another master, broker-x, with its own store and messages.
	xPort := freePort(t)
	xStore := t.TempDir()
	xconf := map[string]string{"brokerName": "broker-x", "brokerId": "0", "brokerRole": "ASYNC_MASTER",
		"mappedFileSizeCommitLog": strconv.Itoa(haSegment), "haListenPort": strconv.Itoa(freePort(t))}
	x := startMQD(t, xPort, c.brokerArgs(xconf, xStore, xPort)...)
	waitUntil(t, 20*time.Second, func() bool { return routeIDs(c.nsAddr, "TBW102")["broker-x"] == 1 })
	if n := len(c.sendLoad(p, "HA5X", 1, 50, nil, nil)); n == 0 {
		t.Fatal("nothing acknowledged by broker-x")
	}
	x.stop()
	before, err := os.ReadFile(filepath.Join(xStore, "commitlog", "00000000000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	// broker-x's store restarted as broker-a's slave.
	sconf := map[string]string{"brokerName": "broker-a", "brokerId": "2", "brokerRole": "SLAVE",
		"mappedFileSizeCommitLog": strconv.Itoa(haSegment), "haMasterAddress": c.proxy.addr()}
	cmd := exec.Command(buildMQD(t), c.brokerArgs(sconf, xStore, freePort(t))...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("mqd exited 0; output:\n%s", out.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("slave with foreign bytes kept running; output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "master refused this slave") {
		t.Fatalf("no clear reason in the output:\n%s", out.String())
	}
	after, err := os.ReadFile(filepath.Join(xStore, "commitlog", "00000000000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the refused slave's commit log changed")
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "refused") {
			t.Logf("mqd: %s", line)
			break
		}
	}
}
