package compat

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/namesrv"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/testport"
)

const childEnv = "MQD_COMPAT_CHILD" // "<store dir>;<namesrv port>;<broker port>"

// TestChildBroker runs a nameserver and broker (SYNC_FLUSH, or the flush
// type the spec's optional fourth field names) until killed; it is the
// process TestKillNineBrokerKeepsAcknowledgedSends kills.
func TestChildBroker(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run by TestKillNineBrokerKeepsAcknowledgedSends")
	}
	parts := strings.Split(spec, ";")
	nl, err := net.Listen("tcp", "127.0.0.1:"+parts[1])
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := namesrv.New(namesrv.Config{Listener: nl})
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	bl, err := net.Listen("tcp", "127.0.0.1:"+parts[2])
	if err != nil {
		t.Fatal(err)
	}
	flushType := engine.SyncFlush
	if len(parts) > 3 {
		flushType = engine.FlushDiskType(parts[3])
	}
	cfg := broker.NewConfig()
	cfg.BrokerIP1, cfg.Listener, cfg.NamesrvAddrs = "127.0.0.1", bl, []string{nl.Addr().String()}
	cfg.Store = engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: parts[0], MappedFileSizeCommitLog: 16 << 20, FlushDiskType: flushType,
		ConsumeQueueEntriesPerFile: 10000, MaxHashSlotNum: 10000, MaxIndexNum: 40000}
	if d, err := time.ParseDuration(os.Getenv(childTxnEnv)); err == nil { // txn_test.go
		cfg.TransactionCheckInterval, cfg.TransactionTimeOut = d, 2*d
		// A check sent while the restarted broker knows no producer of
		// the group still counts (as in Java), and the test's producer
		// heartbeats only once its consumer has started: at this short
		// interval the default 15 checks could run out first on a
		// loaded machine (CI once), so allow about a minute of them.
		cfg.TransactionCheckMax = int(time.Minute / d)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}

func freePort(t *testing.T) int { return testport.Free(t) }

func startChild(t *testing.T, spec string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildBroker$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+spec)
	out, _ := cmd.StdoutPipe()
	logf, err := os.CreateTemp(t.TempDir(), "child-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf // the broker's log, shown when the test fails
	t.Cleanup(func() { showChildLog(t, logf) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child broker did not start")
	}
	return cmd
}

// showChildLog logs the end of a child broker's log if the test failed.
func showChildLog(t *testing.T, f *os.File) {
	defer f.Close()
	if !t.Failed() {
		return
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return
	}
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	t.Logf("child broker log (%s), last %d bytes:\n%s", f.Name(), len(b), b)
}

// TestKillNineBrokerKeepsAcknowledgedSends: a broker killed with SIGKILL
// under a Go client's sends keeps every send it acknowledged, under
// SYNC_FLUSH and under ASYNC_FLUSH (which, as a Java broker's page cache
// does, keeps what it acknowledged through a crash of the process).
func TestKillNineBrokerKeepsAcknowledgedSends(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, ft := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) { killNineBroker(t, ft) })
	}
}

func killNineBroker(t *testing.T, ft engine.FlushDiskType) {
	nsPort, bPort := freePort(t), freePort(t)
	spec := fmt.Sprintf("%s;%d;%d;%s", t.TempDir(), nsPort, bPort, ft)
	child := startChild(t, spec)
	c := &cluster{t: t, nsAddr: fmt.Sprintf("127.0.0.1:%d", nsPort)}
	waitUntil(t, 10*time.Second, func() bool { return c.routed("TBW102") })
	p := c.producer(producerSendTimeout())
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := p.SendSync(context.Background(), primitive.NewMessage("Crashy", []byte(fmt.Sprintf("g%d-%d", g, i))))
				if err == nil && res.Status == primitive.SendOK {
					mu.Lock()
					acked = append(acked, res.OffsetMsgID)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	child.Process.Signal(syscall.SIGKILL)
	child.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}
	child = startChild(t, spec)
	defer func() { child.Process.Signal(syscall.SIGTERM); child.Wait() }()
	cl, err := remoting.Dial(context.Background(), fmt.Sprintf("127.0.0.1:%d", bPort), remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, id := range acked {
		_, off, err := message.ParseOffsetMsgID(id)
		if err != nil {
			t.Fatal(err)
		}
		req := protocol.NewRequest(protocol.ViewMessageByID, nil)
		req.SetExt("offset", strconv.FormatInt(off, 10))
		resp, err := cl.Invoke(context.Background(), req)
		if err != nil || resp.Code != protocol.ResponseSuccess || len(primitive.DecodeMessage(resp.Body)) != 1 {
			t.Fatalf("acknowledged message %s lost after kill -9: %v", id, err)
		}
	}
	t.Logf("%d acknowledged sends survived kill -9", len(acked))
}
