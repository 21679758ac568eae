package index

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

const t0 = int64(1_700_000_000_000) // a store time in ms

// clock returns a Now that advances one millisecond per call.
func clock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2024, 1, 31, 23, 59, 59, 0, time.Local)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

func small(slots, entries int) Config {
	return Config{MaxHashSlotNum: slots, MaxIndexNum: entries, Now: clock()}
}

func openSvc(t testing.TB, dir string, cfg Config) *Service {
	t.Helper()
	s, err := Open(vfs.Default(), dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func put(t testing.TB, s *Service, topic string, phy, ts int64, keys ...string) {
	t.Helper()
	if err := s.Put(topic, keys, phy, ts); err != nil {
		t.Fatalf("Put(%d): %v", phy, err)
	}
}

func query(t testing.TB, s *Service, topic, key string, maxNum int, begin, end int64) []int64 {
	t.Helper()
	got, _, _, err := s.Query(topic, key, maxNum, begin, end)
	if err != nil {
		t.Fatalf("Query(%s): %v", key, err)
	}
	return got
}

func expect(t testing.TB, got []int64, want ...int64) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets = %v, want %v", got, want)
	}
}

func TestKeyHash(t *testing.T) {
	keys := []string{"", "k", "order-123", "标签", "😀x", "a\xffb", "\xe2\x82", "#"}
	for _, topic := range []string{"", "T", "主题", "TopicTest"} {
		for _, key := range keys {
			h := message.JavaStringHash(topic + "#" + key)
			want := h
			if want < 0 {
				want = -want
			}
			if want < 0 {
				want = 0
			}
			if got := KeyHash(topic, key); got != want {
				t.Errorf("KeyHash(%q, %q) = %d, want %d", topic, key, got, want)
			}
		}
	}
	// Pinned by Java 17 (Math.abs of String.hashCode, as IndexFile.putKey
	// hashes): the checks above share JavaStringHash's code.
	for _, c := range []struct {
		topic, key string
		want       int32
	}{
		{"TopicTest", "C0A8000100002A9F0000000000000000", 1140060131},
		{"主题", "订单-C0A8000100002A9F000000😀", 2136514280},
	} {
		if got := KeyHash(c.topic, c.key); got != c.want {
			t.Errorf("KeyHash(%q, %q) = %d, Java %d", c.topic, c.key, got, c.want)
		}
	}
	key := minHashKey("T")
	if h := message.JavaStringHash("T#" + key); h != math.MinInt32 {
		t.Fatalf("constructed key hashes to %d", h)
	}
	if got := KeyHash("T", key); got != 0 {
		t.Fatalf("KeyHash of a MinInt32 hash = %d, want 0", got)
	}
}

// minHashKey builds a key whose topic#key Java hash is Int32.MinValue.
func minHashKey(topic string) string {
	for i := 0; ; i++ {
		prefix := fmt.Sprint(i)
		h := message.JavaStringHash(topic + "#" + prefix)
		r := uint32(1<<31) - uint32(h)*961 // 31*c1 + c2 must equal r
		if r < 31*0xD000 {
			return prefix + string(rune(r/31)) + string(rune(r%31))
		}
	}
}

func TestAppendKeys(t *testing.T) {
	got := AppendKeys(nil, "UNIQ", "  a b  c ")
	if want := []string{"UNIQ", "a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("AppendKeys = %q, want %q", got, want)
	}
	if got := AppendKeys(nil, "", ""); len(got) != 0 {
		t.Fatalf("AppendKeys of nothing = %q", got)
	}
}

func TestPutQueryBasic(t *testing.T) {
	s := openSvc(t, t.TempDir(), small(64, 100))
	defer s.Close()
	put(t, s, "T", 0, t0, "u0", "order-1", "shared")
	put(t, s, "T", 200, t0+1000, "u1", "order-2", "shared")
	put(t, s, "U", 400, t0+2000, "u2", "order-1")
	expect(t, query(t, s, "T", "order-1", 10, 0, math.MaxInt64), 0)
	expect(t, query(t, s, "T", "shared", 10, 0, math.MaxInt64), 0, 200)
	expect(t, query(t, s, "U", "order-1", 10, 0, math.MaxInt64), 400)
	expect(t, query(t, s, "T", "u1", 10, 0, math.MaxInt64), 200)
	expect(t, query(t, s, "T", "missing", 10, 0, math.MaxInt64))
	_, ts, phy, err := s.Query("T", "x", 10, 0, math.MaxInt64)
	if err != nil || ts != t0+2000 || phy != 400 {
		t.Fatalf("last update = %d, %d, %v", ts, phy, err)
	}
	f := s.files[0]
	if f.h.count != 9 || f.h.beginTs != t0 || f.h.beginPhy != 0 || f.h.endPhy != 400 {
		t.Fatalf("header = %+v", f.h)
	}
}

func TestCollisions(t *testing.T) {
	s := openSvc(t, t.TempDir(), small(1, 100)) // one slot: every key chains together
	defer s.Close()
	for i := int64(0); i < 12; i++ {
		put(t, s, "T", i*100, t0+i*1000, fmt.Sprint("k", i%3))
	}
	expect(t, query(t, s, "T", "k1", 10, 0, math.MaxInt64), 100, 400, 700, 1000)
	// "Aa" and "BB" have the same Java hash: the index cannot tell them
	// apart and returns both; the caller checks the record's keys.
	put(t, s, "T", 2000, t0+20000, "Aa")
	put(t, s, "T", 2100, t0+21000, "BB")
	expect(t, query(t, s, "T", "Aa", 10, 0, math.MaxInt64), 2000, 2100)
	if s.files[0].h.slotCount != 1 {
		t.Fatalf("hashSlotCount = %d, want 1", s.files[0].h.slotCount)
	}
}

func TestTimeRangeAndMaxNum(t *testing.T) {
	s := openSvc(t, t.TempDir(), Config{MaxHashSlotNum: 16, MaxIndexNum: 100, MaxQueryNum: 5, Now: clock()})
	defer s.Close()
	put(t, s, "T", 0, t0, "k") // begin time of the file
	for i := int64(1); i < 10; i++ {
		// Stored at t0+i s+500 ms; indexed at t0+i s (whole seconds after begin).
		put(t, s, "T", i*100, t0+i*1000+500, "k")
	}
	expect(t, query(t, s, "T", "k", 32, t0+2000, t0+4000), 200, 300, 400)
	expect(t, query(t, s, "T", "k", 32, t0+2001, t0+4000), 300, 400)
	expect(t, query(t, s, "T", "k", 32, t0+20000, t0+30000))
	expect(t, query(t, s, "T", "k", 3, 0, math.MaxInt64), 700, 800, 900) // newest first, returned sorted
	expect(t, query(t, s, "T", "k", 100, 0, math.MaxInt64), 500, 600, 700, 800, 900)
	expect(t, query(t, s, "T", "k", 0, 0, math.MaxInt64))
	expect(t, query(t, s, "T", "k", 32, t0+4000, t0+2000))
}

func TestRolloverAndFlushTimestamp(t *testing.T) {
	dir := t.TempDir()
	s := openSvc(t, dir, small(8, 4)) // 3 entries per file
	for i := int64(0); i < 10; i++ {
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	names, _ := vfs.Default().List(dir)
	if len(names) != 4 {
		t.Fatalf("files = %v, want 4", names)
	}
	for i := 1; i < len(names); i++ {
		if names[i] <= names[i-1] {
			t.Fatalf("names not increasing: %v", names)
		}
	}
	if f := s.files[1]; f.h.beginPhy != 300 || f.h.endPhy != 500 || f.h.count != 4 {
		t.Fatalf("second file header = %+v", f.h)
	}
	ts, err := s.Flush()
	if err != nil || ts != t0+8000 {
		t.Fatalf("Flush = %d, %v; want endTimestamp of the third file %d", ts, err, t0+8000)
	}
	if ts, err := s.Flush(); err != nil || ts != 0 {
		t.Fatalf("second Flush = %d, %v; want 0", ts, err)
	}
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 0, 100, 200, 300, 400, 500, 600, 700, 800, 900)
	expect(t, query(t, s, "T", "k", 64, t0+4000, t0+5000), 400, 500)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewFileStartsFromPreviousEnd(t *testing.T) {
	lay := layout{slots: 4, maxIndex: 4}
	prev := &header{beginTs: 1, endTs: 5000, beginPhy: 10, endPhy: 900, count: 4}
	f, err := createFile(vfs.Default(), t.TempDir(), "20240101000000000", lay, prev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	want := header{beginTs: 5000, endTs: 5000, beginPhy: 900, endPhy: 900, count: 1}
	if f.h != want || decodeHeader(f.b) != want {
		t.Fatalf("header = %+v / %+v, want %+v", f.h, decodeHeader(f.b), want)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := openSvc(t, dir, small(8, 6))
	for i := int64(0); i < 7; i++ {
		put(t, s, "T", i*100, t0+i*1000, "k", fmt.Sprint("u", i))
	}
	if _, err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSvc(t, dir, small(8, 6))
	defer s.Close()
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 0, 100, 200, 300, 400, 500, 600)
	expect(t, query(t, s, "T", "u4", 64, 0, math.MaxInt64), 400)
	put(t, s, "T", 700, t0+7000, "k")
	expect(t, query(t, s, "T", "k", 64, t0+6000, math.MaxInt64), 600, 700)
	if _, err := Open(vfs.Default(), dir, small(8, 7)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with another MaxIndexNum: %v", err)
	}
}

func TestIdempotentRedispatch(t *testing.T) {
	s := openSvc(t, t.TempDir(), small(8, 100))
	defer s.Close()
	for i := int64(0); i < 5; i++ {
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	for i := int64(0); i < 4; i++ { // redispatch: below endPhyOffset, skipped
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	if got := s.files[0].h.count; got != 6 {
		t.Fatalf("indexCount = %d, want 6 (5 entries)", got)
	}
	// The last message again is added (facts: skip only below the end)
	// but Query returns its offset once.
	put(t, s, "T", 400, t0+4000, "k")
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 0, 100, 200, 300, 400)
}

func TestDropNewerThan(t *testing.T) {
	dir := t.TempDir()
	s := openSvc(t, dir, small(8, 4))
	for i := int64(0); i < 10; i++ {
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSvc(t, dir, small(8, 4))
	defer s.Close()
	n, err := s.DropNewerThan(t0 + 5000) // files end at 2000, 5000, 8000, 9000
	if err != nil || n != 2 {
		t.Fatalf("DropNewerThan = %d, %v; want 2", n, err)
	}
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 0, 100, 200, 300, 400, 500)
	for i := int64(0); i < 10; i++ { // redispatch from the start
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 0, 100, 200, 300, 400, 500, 600, 700, 800, 900)
	if names, _ := vfs.Default().List(dir); len(names) != 4 {
		t.Fatalf("files = %v", names)
	}
	if n, err := s.DropNewerThan(0); err != nil || n != 4 {
		t.Fatalf("DropNewerThan(0) = %d, %v", n, err)
	}
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64))
}

func TestDeleteFilesBelow(t *testing.T) {
	dir := t.TempDir()
	s := openSvc(t, dir, small(8, 4))
	defer s.Close()
	for i := int64(0); i < 10; i++ {
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	n, err := s.DeleteFilesBelow(500) // endPhyOffsets 200, 500, 800, 900
	if err != nil || n != 1 {
		t.Fatalf("DeleteFilesBelow(500) = %d, %v", n, err)
	}
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 300, 400, 500, 600, 700, 800, 900)
	n, err = s.DeleteFilesBelow(1 << 40)
	if err != nil || n != 2 {
		t.Fatalf("DeleteFilesBelow(all) = %d, %v; the newest file must stay", n, err)
	}
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 900)
	if names, _ := vfs.Default().List(dir); len(names) != 1 {
		t.Fatalf("files = %v", names)
	}
}

// TestDeleteFilesThroughReaper: with a Reaper, removed files are unlinked
// at once (queries and the directory no longer see them) and their space
// is freed by the reaper, which truncates each to nothing and closes it.
func TestDeleteFilesThroughReaper(t *testing.T) {
	dir := t.TempDir()
	cfg := small(8, 4)
	stop := make(chan struct{})
	defer close(stop)
	cfg.Reaper = vfs.NewReaper(stop, nil)
	var mu sync.Mutex
	var reaped []vfs.File
	cfg.Reaper.Truncated = func(f vfs.File, size int64) {
		mu.Lock()
		defer mu.Unlock()
		if size == 0 {
			reaped = append(reaped, f)
		}
	}
	s := openSvc(t, dir, cfg)
	defer s.Close()
	for i := int64(0); i < 10; i++ {
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	if n, err := s.DeleteFilesBelow(1 << 40); err != nil || n != 3 {
		t.Fatalf("DeleteFilesBelow(all) = %d, %v", n, err)
	}
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 900)
	if names, _ := vfs.Default().List(dir); len(names) != 1 {
		t.Fatalf("files = %v", names)
	}
	cfg.Reaper.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(reaped) != 3 {
		t.Fatalf("%d files truncated to nothing by the reaper, want 3", len(reaped))
	}
	for _, f := range reaped {
		if _, err := f.Size(); err == nil {
			t.Fatalf("%s still open after its reaping", f.Name())
		}
	}
}

func TestBadInput(t *testing.T) {
	for _, cfg := range []Config{{MaxHashSlotNum: -1}, {MaxIndexNum: 1}, {MaxQueryNum: -2}, {MaxIndexNum: math.MaxInt32 + 1}} {
		if _, err := Open(vfs.Default(), t.TempDir(), cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%+v) err = %v", cfg, err)
		}
	}
	s := openSvc(t, t.TempDir(), small(8, 8))
	if err := s.Put("T", []string{"k"}, -1, t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Put(-1) err = %v", err)
	}
	put(t, s, "T", 0, t0, "", "k", "") // empty keys skipped
	if got := s.files[0].h.count; got != 2 {
		t.Errorf("indexCount = %d, want 2", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("T", []string{"k"}, 100, t0); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if _, _, _, err := s.Query("T", "k", 1, 0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Query after Close: %v", err)
	}
	if _, err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestEmptyService(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	s := openSvc(t, dir, small(8, 8))
	defer s.Close()
	got, ts, phy, err := s.Query("T", "k", 10, 0, math.MaxInt64)
	if err != nil || len(got) != 0 || ts != 0 || phy != 0 {
		t.Fatalf("Query on empty = %v %d %d %v", got, ts, phy, err)
	}
	if ts, err := s.Flush(); err != nil || ts != 0 {
		t.Fatalf("Flush on empty = %d, %v", ts, err)
	}
}
