package schedule

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// On a real store under each flush policy, the re-put (which does not
// wait for the flush) is never visible before it is due and, under
// SYNC_FLUSH, never before it is durable; a checkpoint saved afterwards
// covers only durable re-puts.
func TestRealStoreDeliversDueAndDurable(t *testing.T) {
	for _, flush := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		t.Run(string(flush), func(t *testing.T) {
			levels := []time.Duration{300 * time.Millisecond}
			svc := New(Config{Levels: levels})
			st, err := engine.Open(engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: t.TempDir(), FlushDiskType: flush, MappedFileSizeCommitLog: 4 << 20,
				DelayLevels: levels, Dispatchers: []engine.Dispatcher{svc}})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			svc.SetStore(st, nil)
			stop, done := make(chan struct{}), make(chan struct{})
			go func() { svc.Run(stop); close(done) }()
			defer func() { close(stop); <-done }()
			host := netip.MustParseAddrPort("127.0.0.1:1")
			const n = 50
			due := map[string]int64{}
			for i := range n {
				body := strconv.Itoa(i)
				res := st.PutMessage(&message.Message{Topic: engine.ScheduleTopic, Body: []byte(body), BornHost: host, StoreHost: host,
					Properties: "DELAY\x011\x02REAL_TOPIC\x01Real\x02REAL_QID\x010"})
				if res.Status != engine.PutOK {
					t.Fatal(res.Status, res.Err)
				}
				due[body] = res.StoreTimestamp + 300
			}
			seen := 0
			deadline := time.Now().Add(10 * time.Second)
			for off := int64(0); seen < n; {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d delivered", seen, n)
				}
				g := st.GetMessage("Real", 0, off, 32, nil)
				durable := st.DurableOffset()
				for _, rec := range g.Messages {
					v, err := message.Parse(rec)
					if err != nil {
						t.Fatal(err)
					}
					if v.StoreTimestamp < due[string(v.Body)] {
						t.Errorf("%s stored at %d, due %d: early", v.Body, v.StoreTimestamp, due[string(v.Body)])
					}
					if flush == engine.SyncFlush && v.PhysOffset+int64(len(rec)) > durable {
						t.Errorf("%s visible at %d before durable (%d)", v.Body, v.PhysOffset, durable)
					}
					off, seen = v.QueueOffset+1, seen+1
				}
				g.Release()
				time.Sleep(5 * time.Millisecond)
			}
			if offs, ok := svc.Checkpoint(); !ok || offs[1] != n {
				// the deliveries are durable once visible under SYNC_FLUSH; under
				// ASYNC_FLUSH the snapshot may wait for the next flush
				if flush == engine.SyncFlush {
					t.Fatalf("checkpoint %v %v after every copy is durable", offs, ok)
				}
			}
		})
	}
}

// roomyDisk is the disk usage the tests' stores see, whatever the host
// disk's (above 85% retention deletes unexpired segments, above 90% the
// store refuses writes, by design).
func roomyDisk(string) (float64, error) { return 0.1, nil }
