package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

func TestAppendReadReopen(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		dir := t.TempDir()
		l := openLog(t, fs, dir, p, Hint{})
		var offs []int64
		var sizes []int32
		for i := 0; i < 300; i++ { // ~45 KiB per 300: crosses segments of 64 KiB
			b := one(fmt.Sprintf("body-%03d-%s", i, bytes.Repeat([]byte("x"), i)))
			r := mustAppend(t, l, b)
			offs = append(offs, r.Offset)
			sizes = append(sizes, int32(b.ms[0].Size()))
		}
		waitWritten(t, l, l.Tail())
		check := func(l *Log) {
			for i, off := range offs {
				rec, err := l.ReadRecord(off, sizes[i], nil)
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				v, err := message.Parse(rec)
				if err != nil || v.PhysOffset != off || !bytes.HasPrefix(v.Body, []byte(fmt.Sprintf("body-%03d", i))) {
					t.Fatalf("record %d: %v %+v", i, err, v)
				}
			}
		}
		check(l)
		end := l.Tail()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openLog(t, fs, dir, p, Hint{Clean: true, Offset: end})
		defer l.Close()
		if l.Tail() != end || l.Durable() != end {
			t.Fatalf("tail %d durable %d, want %d", l.Tail(), l.Durable(), end)
		}
		check(l)
		r := mustAppend(t, l, one("after reopen"))
		if r.Offset != end {
			t.Fatalf("append after reopen at %d, want %d", r.Offset, end)
		}
	})
}

func TestIteratorSkipsBlanks(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		l := openLog(t, fs, t.TempDir(), p, Hint{})
		defer l.Close()
		n := 0
		for l.Tail() < 3*l.SegmentSize() {
			mustAppend(t, l, one(fmt.Sprintf("%d-%s", n, bytes.Repeat([]byte("y"), 900))))
			n++
		}
		waitWritten(t, l, l.Tail())
		checkRecords(t, l, n, func(i int) string { return fmt.Sprintf("%d-%s", i, bytes.Repeat([]byte("y"), 900)) })
	})
}

func TestBatchIsContiguous(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		l := openLog(t, fs, t.TempDir(), p, Hint{})
		defer l.Close()
		for round := 0; round < 40; round++ {
			b := &msgs{}
			for i := 0; i < 10; i++ {
				b.ms = append(b.ms, testMessage(fmt.Sprintf("r%d-m%d-%s", round, i, bytes.Repeat([]byte("z"), 200))))
			}
			r := mustAppend(t, l, b)
			if r.Offset != b.phys[0] || r.Offset/l.SegmentSize() != (r.End-1)/l.SegmentSize() {
				t.Fatalf("batch split across segments: %d..%d", r.Offset, r.End)
			}
			for i := 1; i < len(b.phys); i++ {
				if b.phys[i] != b.phys[i-1]+int64(b.ms[i-1].Size())+trailerSize {
					t.Fatal("batch not contiguous")
				}
			}
		}
	})
}

func TestConcurrentSyncAppends(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		l := openLog(t, fs, t.TempDir(), p, Hint{})
		defer l.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					r, err := l.Append(one(fmt.Sprintf("g%d-%d", g, i)), l.cfg.Policy.Wait())
					if err != nil {
						errs <- err
						return
					}
					if p.Durable() && l.Durable() < r.End {
						errs <- fmt.Errorf("acknowledged at %d before durable (%d)", r.End, l.Durable())
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

func TestTooLarge(t *testing.T) {
	l := openLog(t, vfs.Default(), t.TempDir(), flush.DefaultSync, Hint{})
	defer l.Close()
	b := one(string(make([]byte, 64<<10)))
	if _, err := l.Append(b, l.cfg.Policy.Wait()); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}
