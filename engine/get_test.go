package engine

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
)

type tagFilter struct{ code int64 }

func (f tagFilter) MatchTagsCode(c int64) bool { return c == f.code }
func (f tagFilter) MatchRecord(rec []byte) bool {
	v, _ := message.Parse(rec)
	tag, _ := v.Property(message.PropTags)
	return message.TagsCode(tag) == f.code
}

func openTest(t *testing.T, ft FlushDiskType) *Store {
	t.Helper()
	s, err := Open(testConfig(t.TempDir(), ft))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putN(t *testing.T, s *Store, topic string, q int32, n int, tag func(i int) string) []PutResult {
	t.Helper()
	var rs []PutResult
	for i := 0; i < n; i++ {
		r := s.PutMessage(msg(topic, q, fmt.Sprintf("m%d", i), map[string]string{"TAGS": tag(i), "KEYS": fmt.Sprintf("key%d shared", i), "UNIQ_KEY": fmt.Sprintf("U%d", i)}))
		if r.Status != PutOK {
			t.Fatal(r.Status, r.Err)
		}
		rs = append(rs, r)
	}
	waitFor(t, func() bool { return s.DispatchLag() == 0 && s.MaxOffsetInQueue(topic, q) == int64(n) })
	return rs
}

func TestGetMessageStatuses(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		s := openTest(t, ft)
		if r := s.GetMessage("none", 0, 0, 32, nil); r.Status != NoMatchedLogicQueue {
			t.Fatal(r.Status)
		}
		putN(t, s, "T", 0, 40, func(int) string { return "A" })
		cases := []struct {
			off    int64
			max    int
			status GetStatus
			n      int
			next   int64
		}{
			{0, 32, Found, 32, 32},
			{0, 0, Found, 1, 1}, // a pull for 0 messages still returns the next one
			{35, 32, Found, 5, 40},
			{40, 32, OffsetOverflowOne, 0, 40},
			{41, 32, OffsetOverflowBadly, 0, 0}, // min offset 0 → corrected to 0
		}
		for _, c := range cases {
			r := s.GetMessage("T", 0, c.off, c.max, nil)
			if r.Status != c.status || len(r.Messages) != c.n || r.NextBeginOffset != c.next || r.MaxOffset != 40 {
				t.Errorf("offset %d max %d: %v n=%d next=%d", c.off, c.max, r.Status, len(r.Messages), r.NextBeginOffset)
			}
			for i, m := range r.Messages {
				v, err := message.Parse(m)
				if err != nil || v.QueueOffset != c.off+int64(i) {
					t.Fatalf("message %d: %v %d", i, err, v.QueueOffset)
				}
			}
			r.Release()
		}
	})
}

func TestGetMessageFilters(t *testing.T) {
	s := openTest(t, SyncFlush)
	putN(t, s, "F", 1, 60, func(i int) string {
		if i%3 == 0 {
			return "A"
		}
		return "B"
	})
	r := s.GetMessage("F", 1, 0, 32, tagFilter{message.TagsCode("A")})
	defer r.Release()
	if r.Status != Found || len(r.Messages) != 20 || r.NextBeginOffset != 60 {
		t.Fatalf("%v %d %d", r.Status, len(r.Messages), r.NextBeginOffset)
	}
	r2 := s.GetMessage("F", 1, 0, 32, tagFilter{message.TagsCode("nope")})
	defer r2.Release()
	if r2.Status != NoMatchedMessage || r2.NextBeginOffset != 60 {
		t.Fatalf("%v %d", r2.Status, r2.NextBeginOffset)
	}
}

func TestGetMessageByteCap(t *testing.T) {
	s := openTest(t, AsyncFlush)
	big := strings.Repeat("x", 30<<10)
	for i := 0; i < 20; i++ {
		s.PutMessage(msg("Big", 0, big, nil))
	}
	waitFor(t, func() bool { return s.MaxOffsetInQueue("Big", 0) == 20 })
	r := s.GetMessage("Big", 0, 0, 32, nil)
	defer r.Release()
	if r.TotalSize > 256<<10 || len(r.Messages) < 2 || len(r.Messages) > 8 {
		t.Fatalf("%d messages, %d bytes", len(r.Messages), r.TotalSize)
	}
}

func TestQueryByKeyAndOffsets(t *testing.T) {
	s := openTest(t, SyncFlush)
	before := time.Now().UnixMilli()
	rs := putN(t, s, "Q", 2, 30, func(int) string { return "" })
	now := time.Now().UnixMilli()
	res, err := s.QueryMessage("Q", "key7", 32, 0, now+1000)
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("%v %d", err, len(res.Records))
	}
	if v, _ := message.Parse(res.Records[0]); v.PhysOffset != rs[7].Offset {
		t.Fatal("wrong record")
	}
	if res, _ := s.QueryMessage("Q", "shared", 10, 0, now+1000); len(res.Records) != 10 {
		t.Fatalf("shared key: %d", len(res.Records))
	}
	if res, _ := s.QueryMessage("Q", "U3", 32, 0, now+1000); len(res.Records) != 1 {
		t.Fatal("uniq key")
	}
	if res, _ := s.QueryMessage("Other", "key7", 32, 0, now+1000); len(res.Records) != 0 {
		t.Fatal("topic not checked")
	}
	if off, err := s.OffsetInQueueByTime("Q", 2, before-10_000); err != nil || off != 0 {
		t.Fatal(off, err)
	}
	if off, _ := s.OffsetInQueueByTime("Q", 2, now+10_000); off != 29 {
		t.Fatal(off)
	}
	if ts := s.EarliestMessageTime("Q", 2); ts < before || ts > now {
		t.Fatal(ts)
	}
	if s.MinOffsetInQueue("Q", 2) != 0 || s.MaxOffsetInQueue("Q", 2) != 30 || s.MaxOffsetInQueue("Q", 3) != 0 {
		t.Fatal("offsets")
	}
}

// durabilityProbe fails when a record is dispatched (made visible to
// consumers) before it is durable.
type durabilityProbe struct {
	s   atomic.Pointer[Store]
	bad chan int64
}

func (p *durabilityProbe) Dispatch(r *DispatchRequest) error {
	if s := p.s.Load(); s != nil && r.PhysOffset+int64(r.Size) > s.DurableOffset() {
		select {
		case p.bad <- r.PhysOffset:
		default:
		}
	}
	return nil
}

func TestSyncFlushVisibilityIsDurable(t *testing.T) {
	probe := &durabilityProbe{bad: make(chan int64, 1)}
	cfg := testConfig(t.TempDir(), SyncFlush)
	cfg.Dispatchers = []Dispatcher{probe}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	probe.s.Store(s)
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				s.PutMessageWait(msg("V", int32(g), "x", nil), false)
			}
			done <- struct{}{}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
	select {
	case off := <-probe.bad:
		t.Fatalf("record at %d dispatched before it was durable", off)
	default:
	}
}

func TestReadMessageRejectsForgedOffsets(t *testing.T) {
	s := openTest(t, SyncFlush)
	// A body that looks like a record header claiming ~1 GiB.
	forged := string([]byte{0x3F, 0xFF, 0xFF, 0xF0, 0xDA, 0xA3, 0x20, 0xA7}) + strings.Repeat("x", 200)
	r := s.PutMessage(msg("F", 0, forged, nil))
	if r.Status != PutOK {
		t.Fatal(r.Status)
	}
	if _, err := s.ReadMessage(r.Offset); err != nil {
		t.Fatalf("the real record: %v", err)
	}
	for delta := int64(1); delta < int64(r.Size); delta++ {
		if _, err := s.ReadMessage(r.Offset + delta); err == nil {
			t.Fatalf("offset %d inside a record was read as a message", r.Offset+delta)
		}
	}
	putN(t, s, "Big", 0, 3, func(int) string { return "" })
	res := s.GetMessage("Big", 0, 0, 1<<30, nil) // a client may ask for any count
	defer res.Release()
	if res.Status != Found || len(res.Messages) != 3 {
		t.Fatal(res.Status, len(res.Messages))
	}
}

// A query's records stay within its byte budget (at least one record is
// returned, however large); no budget returns every match.
func TestQueryMessageByteBudget(t *testing.T) {
	for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
		s := openTest(t, ft)
		big := strings.Repeat("x", 30<<10)
		for range 10 {
			if r := s.PutMessage(msg("QB", 0, big, map[string]string{"KEYS": "k"})); r.Status != PutOK {
				t.Fatal(r.Status, r.Err)
			}
		}
		waitFor(t, func() bool { return s.DispatchLag() == 0 && s.MaxOffsetInQueue("QB", 0) == 10 })
		end := time.Now().Add(time.Hour).UnixMilli()
		all, err := s.QueryMessageWithin("QB", "k", 64, 0, 0, end)
		if err != nil || len(all.Records) != 10 || all.Truncated {
			t.Fatalf("%s: unbounded: %v %d %v", ft, err, len(all.Records), all.Truncated)
		}
		size := len(all.Records[0])
		res, err := s.QueryMessageWithin("QB", "k", 64, 3*size+size/2, 0, end)
		total := 0
		for _, r := range res.Records {
			total += len(r)
		}
		if err != nil || len(res.Records) != 3 || total > 3*size+size/2 || !res.Truncated {
			t.Fatalf("%s: budget 3.5 records: %v %d records, %d bytes, truncated %v", ft, err, len(res.Records), total, res.Truncated)
		}
		if one, _ := s.QueryMessageWithin("QB", "k", 64, 1, 0, end); len(one.Records) != 1 || !one.Truncated {
			t.Fatalf("%s: budget below one record: %d records", ft, len(one.Records))
		}
	}
}
