package engine

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

// testIOBackend is the I/O backend testConfig uses; forEachFlush sets it.
var testIOBackend = "auto"

// testMaxWrite is the commit log's write piece in tests: small, so that
// large records and busy rounds are written in several pieces.
const testMaxWrite = 8 << 10

// testConfig keeps at most 2 consume-queue files open, so that every test
// with more queue files closes and reopens them (consumequeue/files.go).
func testConfig(dir string, ft FlushDiskType) Config {
	return Config{Dir: dir, FlushDiskType: ft, IOBackend: testIOBackend, MappedFileSizeCommitLog: 256 << 10, CheckpointInterval: 10 * time.Millisecond,
		FlushInterval: 5 * time.Millisecond, MaxMessageSize: 64 << 10, CommitLogMaxWrite: testMaxWrite,
		ConsumeQueueEntriesPerFile: 1000, MaxHashSlotNum: 1000, MaxIndexNum: 4000, QueueFlushThoroughInterval: 50 * time.Millisecond,
		MaxOpenConsumeQueueFiles: 2, Retention: RetentionConfig{DiskUsage: roomyDisk}}
}

// roomyDisk is the disk usage the tests' stores see: the host's disk may
// be above cleanFileForciblyRatio (85%), where retention deletes even
// unexpired segments by design, and a durability test would then see
// acknowledged messages deleted. Retention tests set their own.
func roomyDisk(string) (float64, error) { return 0.1, nil }

func msg(topic string, q int32, body string, props map[string]string) *message.Message {
	return &message.Message{
		Topic: topic, QueueID: q, BornTimestamp: time.Now().UnixMilli(),
		BornHost:  netip.MustParseAddrPort("127.0.0.1:40000"),
		StoreHost: netip.MustParseAddrPort("127.0.0.1:10911"),
		Body:      []byte(body), Properties: message.EncodeProperties(props),
	}
}

// recorder is a Dispatcher that keeps what it saw.
type recorder struct {
	mu   sync.Mutex
	seen map[int64]DispatchRequest // by physical offset
}

func (r *recorder) Dispatch(d *DispatchRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int64]DispatchRequest{}
	}
	c := *d
	c.Topic, c.Properties = string([]byte(d.Topic)), ""
	r.seen[d.PhysOffset] = c
	return nil
}

func (r *recorder) get(off int64) (DispatchRequest, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.seen[off]
	return d, ok
}

// forEachFlush runs fn under both flush policies on both I/O backends
// (io_uring is skipped where the kernel refuses it).
func forEachFlush(t *testing.T, fn func(t *testing.T, ft FlushDiskType)) {
	for _, be := range []string{"io_uring", "pwrite"} {
		if be == "io_uring" && !uringWorks() {
			continue
		}
		for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
			t.Run(be+"/"+string(ft), func(t *testing.T) {
				testIOBackend = be
				defer func() { testIOBackend = "auto" }()
				fn(t, ft)
			})
		}
	}
}

func uringWorks() bool {
	fs, err := vfs.NewUring(8)
	if err != nil {
		return false
	}
	fs.Close()
	return true
}

func TestPutReadDispatchReopen(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		dir := t.TempDir()
		rec := &recorder{}
		cfg := testConfig(dir, ft)
		cfg.Dispatchers = []Dispatcher{rec}
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var results []PutResult
		for i := 0; i < 200; i++ {
			r := s.PutMessage(msg("T", int32(i%3), fmt.Sprintf("body-%d", i), map[string]string{"TAGS": "TagA", "KEYS": fmt.Sprintf("k%d", i)}))
			if r.Status != PutOK {
				t.Fatalf("put %d: %v %v", i, r.Status, r.Err)
			}
			if r.QueueOffset != int64(i/3) {
				t.Fatalf("put %d: queue offset %d", i, r.QueueOffset)
			}
			results = append(results, r)
		}
		waitFor(t, func() bool { _, ok := rec.get(results[199].Offset); return ok })
		d, _ := rec.get(results[5].Offset)
		if d.Topic != "T" || d.QueueID != 2 || d.QueueOffset != 1 || d.TagsCode != 2598919 || d.Size != int32(results[5].Size) {
			t.Fatalf("dispatch: %+v", d)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(testConfig(dir, ft))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i, r := range results {
			b, err := s.ReadMessage(r.Offset)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := message.Parse(b)
			if !bytes.Equal(v.Body, []byte(fmt.Sprintf("body-%d", i))) {
				t.Fatalf("record %d: %q", i, v.Body)
			}
		}
		if r := s.PutMessage(msg("T", 0, "x", nil)); r.QueueOffset != 67 {
			t.Fatalf("queue offset after reopen %d", r.QueueOffset)
		}
	})
}

func TestPutStatuses(t *testing.T) {
	s, err := Open(testConfig(t.TempDir(), SyncFlush))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := s.PutMessage(msg("T", 0, string(make([]byte, 64<<10+1)), nil)); r.Status != MessageIllegal {
		t.Fatal(r.Status)
	}
	long := string(bytes.Repeat([]byte("t"), 128))
	if r := s.PutMessage(msg(long, 0, "x", nil)); r.Status != MessageIllegal {
		t.Fatal(r.Status)
	}
	if r := s.PutMessage(msg("T", 0, "x", map[string]string{"P": string(make([]byte, 40000))})); r.Status != PropertiesSizeExceeded {
		t.Fatal(r.Status)
	}
	// A topic is a directory of the consume queues: one path element.
	for _, topic := range []string{"a/b", "/", "ab/", "a\x00b", "\x00", ".", ".."} {
		if r := s.PutMessage(msg(topic, 0, "x", nil)); r.Status != MessageIllegal {
			t.Fatalf("topic %q: %v", topic, r.Status)
		}
	}
	if r := s.PutMessage(msg("a.b%|-_", 0, "x", nil)); r.Status != PutOK {
		t.Fatalf("a.b%%|-_: %v %v", r.Status, r.Err)
	}
	batch := []*message.Message{msg("B", 1, "a", nil), msg("B", 1, "b", nil)}
	r := s.PutMessages(batch)
	if r.Status != PutOK || len(r.Offsets) != 2 || r.QueueOffset != 0 {
		t.Fatalf("%+v", r)
	}
	if r := s.PutMessage(msg("B", 1, "c", nil)); r.QueueOffset != 2 {
		t.Fatal(r.QueueOffset)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStoreTimeSurvivesCleanReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testConfig(dir, SyncFlush))
	if err != nil {
		t.Fatal(err)
	}
	last := s.PutMessage(msg("TS", 0, "x", nil)).StoreTimestamp
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(testConfig(dir, SyncFlush))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.cl.DurableTimestamp(); got != last {
		t.Fatalf("durable store time after a clean reopen %d, want %d", got, last)
	}
}
