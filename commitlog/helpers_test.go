package commitlog

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// msgs is a Batch of messages with queue offsets assigned in Encode.
type msgs struct {
	ms   []*message.Message
	phys []int64
}

func (b *msgs) Len() int       { return len(b.ms) }
func (b *msgs) Size(i int) int { return b.ms[i].Size() }
func (b *msgs) Encode(i int, dst []byte, phys, ts int64) {
	m := b.ms[i]
	m.Encode(dst, message.BodyCRC(m.Body), int64(i), phys, ts)
	b.phys = append(b.phys, phys)
}

func testMessage(body string) *message.Message {
	return &message.Message{
		Topic: "T", QueueID: 1, BornTimestamp: 1,
		BornHost:  netip.MustParseAddrPort("127.0.0.1:1000"),
		StoreHost: netip.MustParseAddrPort("127.0.0.1:10911"),
		Body:      []byte(body), Properties: "KEYS\x01" + body,
	}
}

func one(body string) *msgs { return &msgs{ms: []*message.Message{testMessage(body)}} }

// backend is one file layer the storage tests run on.
type backend struct {
	name string
	fs   func(t *testing.T) vfs.FS
}

// backends lists every file layer the storage tests run on: pwrite
// always, io_uring when the kernel allows it, and crashfs (in memory; the
// same code paths, plus the durability model the crash tests rely on).
func backends() []backend {
	bs := []backend{{"pwrite", func(*testing.T) vfs.FS { return vfs.Default() }}}
	if uringAvailable() {
		bs = append(bs, backend{"io_uring", newUringFS})
	}
	bs = append(bs, backend{"crashfs", func(*testing.T) vfs.FS { return crashfs.New() }})
	return bs
}

var policies = []struct {
	name string
	p    flush.Policy
}{
	{"sync", flush.Sync{Timeout: 5 * time.Second}},
	{"async", flush.Async{Interval: 5 * time.Millisecond, LeastBytes: 1, Thorough: 20 * time.Millisecond}},
}

// forEachConfig runs fn under every flush policy and every backend.
func forEachConfig(t *testing.T, fn func(t *testing.T, fs vfs.FS, p flush.Policy)) {
	for _, b := range backends() {
		for _, p := range policies {
			t.Run(fmt.Sprintf("%s/%s", b.name, p.name), func(t *testing.T) {
				fs := b.fs(t)
				fn(t, fs, p.p)
			})
		}
	}
}

func openLog(t *testing.T, fs vfs.FS, dir string, p flush.Policy, hint Hint) *Log {
	t.Helper()
	l, err := Open(fs, Config{Dir: dir, SegmentSize: 64 << 10, Policy: p, Recovery: hint})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustAppend(t *testing.T, l *Log, b Batch) Result {
	t.Helper()
	r, err := l.Append(b, l.cfg.Policy.Wait())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitWritten waits until the loop has written up to off (async policy).
func waitWritten(t *testing.T, l *Log, off int64) {
	t.Helper()
	if !eventually(func() bool { return l.Written() >= off }) {
		t.Fatalf("written %d, want %d", l.Written(), off)
	}
}

// eventually polls cond every millisecond for at most 5 s and reports
// whether it came true: for what the flush loop does just after what a
// test can wait on.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func crcOf(b []byte) uint32 { return crc32Checksum(b) }

// checkRecords iterates the log from 0 and expects exactly n records, the
// i-th at its own offset with body body(i).
func checkRecords(t *testing.T, l *Log, n int, body func(i int) string) {
	t.Helper()
	it := l.NewIterator(0)
	defer it.Close()
	got := 0
	for {
		off, rec, err := it.Next(l.Written())
		if err != nil {
			t.Fatal(err)
		}
		if rec == nil {
			break
		}
		v, err := message.Parse(rec)
		if err != nil || v.PhysOffset != off || string(v.Body) != body(got) {
			t.Fatalf("record %d at %d: %v, body %.20q", got, off, err, v.Body)
		}
		got++
	}
	if got != n {
		t.Fatalf("read %d records, appended %d", got, n)
	}
}
