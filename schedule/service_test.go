package schedule

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// fakeStore holds one level's schedule records and records puts.
type fakeStore struct {
	recs    [][]byte
	puts    []*message.Message
	fail    int // puts to refuse before accepting
	tail    int64
	durable int64
	waited  bool // a put asked to wait for the flush
}

func (f *fakeStore) GetMessage(_ string, q int32, off int64, n int, _ engine.MessageFilter) *engine.GetResult {
	r := &engine.GetResult{}
	if q != 0 || off >= int64(len(f.recs)) {
		r.Status = engine.OffsetOverflowOne
		return r
	}
	r.Status = engine.Found
	r.Messages = append([][]byte(nil), f.recs[off:min(int(off)+n, len(f.recs))]...) // Release clears it
	return r
}

func (f *fakeStore) PutMessageWait(m *message.Message, wait bool) engine.PutResult {
	return f.PutMessagesWait([]*message.Message{m}, wait)
}

func (f *fakeStore) PutMessagesWait(ms []*message.Message, wait bool) engine.PutResult {
	f.waited = f.waited || wait
	if f.fail > 0 {
		f.fail--
		return engine.PutResult{Status: engine.ServiceNotAvailable}
	}
	f.puts = append(f.puts, ms...)
	f.tail += int64(100 * len(ms))
	return engine.PutResult{Status: engine.PutOK}
}

func (f *fakeStore) MinOffsetInQueue(string, int32) int64 { return 0 }
func (f *fakeStore) MaxOffsetInQueue(_ string, q int32) int64 {
	if q == 0 {
		return int64(len(f.recs))
	}
	return 0
}
func (f *fakeStore) MaxPhysOffset() int64 { return f.tail }
func (f *fakeStore) DurableOffset() int64 { return f.durable }

// record encodes a level-1 schedule record stored at storeMs.
func record(t *testing.T, qo, storeMs int64, props string) []byte {
	t.Helper()
	host := netip.MustParseAddrPort("127.0.0.1:1")
	m := &message.Message{Topic: engine.ScheduleTopic, Body: []byte("b" + strconv.FormatInt(qo, 10)),
		BornHost: host, StoreHost: host, Properties: props}
	buf := make([]byte, m.Size())
	m.Encode(buf, message.BodyCRC(m.Body), qo, 1000*qo, storeMs)
	return buf
}

func newTestService(f *fakeStore) *Service {
	s := New(Config{Levels: []time.Duration{time.Second}})
	s.SetStore(f, nil)
	return s
}

func TestDeliversOnlyDueMessagesAndWaitsForTheNext(t *testing.T) {
	now := time.Now().UnixMilli()
	props := "DELAY\x011\x02REAL_TOPIC\x01T\x02REAL_QID\x013\x02WAIT\x01false\x02KEYS\x01k"
	f := &fakeStore{recs: [][]byte{
		record(t, 0, now-2000, props), record(t, 1, now-1500, props), record(t, 2, now-500, props)}}
	s := newTestService(f)
	wait, err := s.deliverDue(s.levels[0])
	if err != nil || len(f.puts) != 2 || s.levels[0].offset.Load() != 2 {
		t.Fatalf("err %v, %d puts, offset %d", err, len(f.puts), s.levels[0].offset.Load())
	}
	if wait < 400*time.Millisecond || wait > 500*time.Millisecond {
		t.Fatalf("sleeps %v until the next due time", wait)
	}
	m := f.puts[0]
	if m.Topic != "T" || m.QueueID != 3 || m.Properties != "DELAY\x011\x02REAL_TOPIC\x01T\x02REAL_QID\x013\x02KEYS\x01k" {
		t.Fatalf("re-put %s/%d %q", m.Topic, m.QueueID, m.Properties)
	}
}

func TestFailedPutKeepsTheOffset(t *testing.T) {
	props := "DELAY\x011\x02REAL_TOPIC\x01T\x02REAL_QID\x010"
	f := &fakeStore{recs: [][]byte{record(t, 0, 1, props), record(t, 1, 2, props)}, fail: 1}
	s := newTestService(f)
	if _, err := s.deliverDue(s.levels[0]); err == nil || s.levels[0].offset.Load() != 0 {
		t.Fatalf("err %v, offset %d", err, s.levels[0].offset.Load())
	}
	if _, err := s.deliverDue(s.levels[0]); err != nil || s.levels[0].offset.Load() != 2 || len(f.puts) != 2 {
		t.Fatalf("retry: err %v, offset %d, puts %d", err, s.levels[0].offset.Load(), len(f.puts))
	}
}

func TestUnroutableRecordSkipped(t *testing.T) {
	f := &fakeStore{recs: [][]byte{record(t, 0, 1, "DELAY\x011"), record(t, 1, 1, "DELAY\x011\x02REAL_TOPIC\x01T\x02REAL_QID\x010")}}
	s := newTestService(f)
	if _, err := s.deliverDue(s.levels[0]); err != nil || len(f.puts) != 1 || s.levels[0].skipped.Load() != 1 {
		t.Fatalf("err %v puts %d skipped %d", err, len(f.puts), s.levels[0].skipped.Load())
	}
}

func TestCheckpointWaitsForDurableReputs(t *testing.T) {
	props := "DELAY\x011\x02REAL_TOPIC\x01T\x02REAL_QID\x010"
	f := &fakeStore{recs: [][]byte{record(t, 0, 1, props)}}
	s := newTestService(f)
	if _, err := s.deliverDue(s.levels[0]); err != nil {
		t.Fatal(err)
	}
	if f.waited {
		t.Fatal("the re-put waited for the flush: the level stalls for an fsync while messages fall due")
	}
	if offs, ok := s.Checkpoint(); ok {
		t.Fatalf("checkpoint %v saved before the re-put is durable", offs)
	}
	f.durable = f.tail
	offs, ok := s.Checkpoint()
	if !ok || offs[1] != 1 {
		t.Fatalf("checkpoint %v %v", offs, ok)
	}
}

func TestOffsetsCorrectedIntoQueue(t *testing.T) {
	f := &fakeStore{recs: [][]byte{record(t, 0, 1, "")}}
	s := New(Config{Levels: []time.Duration{time.Second, time.Second}})
	s.SetStore(f, map[int]int64{1: 99, 2: 5})
	if o := s.Offsets(); o[1] != 1 || o[2] != 0 {
		t.Fatal(o)
	}
}
