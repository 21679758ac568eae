package ha_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
	"github.com/mqd/mqd/internal/message"
)

// source and sink plug an engine store into the ha package, as the broker
// does.
type source struct{ *engine.Store }

func (s source) OpenReader(from int64) (ha.Reader, error) { return s.NewFrameReader(from) }

func storeConfig(dir string, ft engine.FlushDiskType) engine.Config {
	return engine.Config{Dir: dir, FlushDiskType: ft, IOBackend: "pwrite", MappedFileSizeCommitLog: 256 << 10,
		CheckpointInterval: 10 * time.Millisecond, FlushInterval: 5 * time.Millisecond, MaxMessageSize: 64 << 10,
		CommitLogMaxWrite: 8 << 10, ConsumeQueueEntriesPerFile: 1000, MaxHashSlotNum: 1000, MaxIndexNum: 4000,
		QueueFlushThoroughInterval: 50 * time.Millisecond,
		Retention:                  engine.RetentionConfig{DiskUsage: roomyDisk}}
}

func open(t *testing.T, dir string, ft engine.FlushDiskType) *engine.Store {
	t.Helper()
	s, err := engine.Open(storeConfig(dir, ft))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func msg(i int) *message.Message {
	body := strings.Repeat(fmt.Sprintf("m%05d-", i), 1+i%97) // varied sizes, segments roll
	return &message.Message{Topic: "T", QueueID: int32(i % 4), BornTimestamp: time.Now().UnixMilli(),
		BornHost: netip.MustParseAddrPort("127.0.0.1:40000"), StoreHost: netip.MustParseAddrPort("127.0.0.1:10911"),
		Body: []byte(body), Properties: message.EncodeProperties(map[string]string{"KEYS": fmt.Sprintf("k%d", i)})}
}

func put(t *testing.T, s *engine.Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if r := s.PutMessage(msg(i)); r.Status != engine.PutOK {
			t.Fatalf("put %d: %v %v", i, r.Status, r.Err)
		}
	}
}

type cluster struct {
	t      *testing.T
	ft     engine.FlushDiskType
	master *engine.Store
	srv    *ha.Server
	cfg    ha.Config
}

func newCluster(t *testing.T, ft engine.FlushDiskType) *cluster {
	master := open(t, t.TempDir(), ft)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := ha.Config{BatchSize: 16 << 10, Heartbeat: 200 * time.Millisecond, Housekeeping: 2 * time.Second}
	srv := ha.NewServer(ln, source{master}, cfg)
	go srv.Serve()
	t.Cleanup(func() { srv.Close(); master.Close() })
	return &cluster{t: t, ft: ft, master: master, srv: srv, cfg: cfg}
}

// slave runs a client into s until the returned stop is called; its
// result (nil or the refusal) is sent on the channel.
func (c *cluster) slave(s *engine.Store, addr string) (stop func(), done chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	cl := ha.NewClient(s, func() string { return addr }, c.cfg)
	done = make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	return func() { cancel(); <-done }, done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func caughtUp(m, s *engine.Store) func() bool {
	return func() bool { return s.WrittenOffset() == m.WrittenOffset() && s.MaxPhysOffset() == m.MaxPhysOffset() }
}

// sameLogs compares the commit-log segments of two closed stores byte for
// byte, up to the end of the data (a preallocated empty segment may exist
// on one side only).
func sameLogs(t *testing.T, a, b string, end int64) {
	t.Helper()
	for base := int64(0); base < end; base += 256 << 10 {
		name := fmt.Sprintf("%020d", base)
		x, err := os.ReadFile(filepath.Join(a, "commitlog", name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, "commitlog", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			for i := range x {
				if i >= len(y) || x[i] != y[i] {
					t.Fatalf("segment %s differs at byte %d", name, i)
				}
			}
			t.Fatalf("segment %s: %d vs %d bytes", name, len(x), len(y))
		}
	}
}

func TestReplicateByteIdenticalAndRestart(t *testing.T) {
	for _, ft := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) {
			c := newCluster(t, ft)
			addr := c.srv.Addr().String()
			put(t, c.master, 0, 1500) // several segments before the slave exists: catch-up from zero
			slaveDir := t.TempDir()
			slave := open(t, slaveDir, ft)
			stop, _ := c.slave(slave, addr)
			var wg sync.WaitGroup
			wg.Go(func() { put(t, c.master, 1500, 3000) }) // and while it streams
			waitFor(t, "slave to reach 1500 messages", func() bool { return slave.MaxPhysOffset() > 0 })
			time.Sleep(20 * time.Millisecond)
			stop() // mid-stream
			if err := slave.Close(); err != nil {
				t.Fatal(err)
			}
			slave = open(t, slaveDir, ft)
			stop, _ = c.slave(slave, addr)
			wg.Wait()
			waitFor(t, "slave to catch up", caughtUp(c.master, slave))
			stop()
			// The slave's dispatcher built its consume queues.
			waitFor(t, "slave dispatch", func() bool { return slave.DispatchLag() == 0 })
			for q := int32(0); q < 4; q++ {
				if m, s := c.master.MaxOffsetInQueue("T", q), slave.MaxOffsetInQueue("T", q); m != s || m != 750 {
					t.Fatalf("queue %d: master %d slave %d entries, want 750", q, m, s)
				}
			}
			r := slave.GetMessage("T", 2, 700, 1, nil)
			if len(r.Messages) != 1 {
				t.Fatalf("slave pull: %+v", r.Status)
			}
			r.Release()
			end := c.master.MaxPhysOffset()
			if err := slave.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.master.Close(); err != nil {
				t.Fatal(err)
			}
			sameLogs(t, c.master.Dir(), slaveDir, end)
		})
	}
}

// roomyDisk is the disk usage the tests' stores see, whatever the host
// disk's (above 85% retention deletes unexpired segments, above 90% the
// store refuses writes, by design).
func roomyDisk(string) (float64, error) { return 0.1, nil }
