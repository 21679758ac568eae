package commitlog

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// TestMirrorSpareReusedZeroed: a retired mirror's memory is what the next
// segment gets, cleared; one spare at most; a closed pool frees.
func TestMirrorSpareReusedZeroed(t *testing.T) {
	const size = 1 << 20
	l := &Log{}
	l.spare.keepBelow = 3
	m1, err := l.newMirror(size, pacer{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range m1.buf {
		m1.buf[i] = byte(i) | 1
	}
	if !m1.acquire() { // a reader still copying when the log retires it
		t.Fatal("acquire")
	}
	m1.release()
	if l.spare.buf != nil {
		t.Fatal("spare taken while a reader holds the mirror")
	}
	m1.release()
	if l.spare.buf == nil {
		t.Fatal("the last release did not keep the memory")
	}
	m2, err := l.newMirror(size, pacer{stop: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	if &m2.buf[0] != &m1.buf[0] {
		t.Fatal("the next mirror did not reuse the retired one's memory")
	}
	if i := bytes.IndexFunc(m2.buf, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("reused mirror not zeroed at %d", i)
	}
	m3, err := l.newMirror(size, pacer{}) // no spare: fresh memory
	if err != nil {
		t.Fatal(err)
	}
	m2.release()
	m3.release() // the pool holds one spare: this one is freed
	if &l.spare.buf[0] != &m2.buf[0] {
		t.Fatal("the spare changed: a second put must free, not replace")
	}
	if b := l.spare.take(size / 2); b != nil || l.spare.buf != nil {
		t.Fatal("a spare of another size was handed out or kept")
	}
	m4, _ := l.newMirror(size, pacer{})
	l.spare.close()
	m4.release()
	if l.spare.buf != nil {
		t.Fatal("a closed pool kept memory")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a release beyond the last did not panic")
		}
	}()
	m4.release()
}

// TestMirrorSpareNotKeptBeyondUse: a retired mirror is freed, not kept,
// when as many mirrors as the log uses already live (a preparation made
// a fresh one before this one was retired).
func TestMirrorSpareNotKeptBeyondUse(t *testing.T) {
	l := &Log{}
	l.spare.keepBelow = 2
	var ms []*mirror
	for range 3 {
		m, err := l.newMirror(1<<20, pacer{})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	ms[0].release() // two still live: enough without a spare
	if l.spare.buf != nil {
		t.Fatal("a spare kept beside as many live mirrors as the log uses")
	}
	ms[1].release() // one live: the next preparation will need this memory
	if l.spare.buf == nil {
		t.Fatal("no spare kept for the next preparation")
	}
	ms[2].release()
	l.spare.close()
}

// TestRollsOnReusedMirrors: many rolls, each new segment likely on the
// memory of a retired one: every record reads back, from the mirrors and
// after reopening from the files, and nothing past the tail resurrects.
func TestRollsOnReusedMirrors(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		dir := t.TempDir()
		l := openLog(t, fs, dir, p, Hint{})
		seen := map[*byte]int64{}
		reused, n := 0, 0
		for l.Tail() < 12*l.SegmentSize() {
			mustAppend(t, l, one(rollBody(n)))
			n++
			l.mu.Lock()
			tail := l.segs[len(l.segs)-1]
			if m := tail.mem.Load(); m != nil {
				if base, ok := seen[&m.buf[0]]; ok && base != tail.base {
					reused++
				}
				seen[&m.buf[0]] = tail.base
			}
			l.mu.Unlock()
		}
		waitWritten(t, l, l.Tail())
		checkRecords(t, l, n, rollBody)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d records, %d appends on a segment whose mirror was a retired one's", n, reused)
		if p.Durable() && reused == 0 {
			// appends wait for their round, so the mirror retired at each
			// roll is free before the next preparation asks for memory
			t.Fatal("no segment reused a retired mirror")
		}
		l = openLog(t, fs, dir, p, Hint{})
		defer l.Close()
		checkRecords(t, l, n, rollBody)
	})
}

// rollBody is the body of record i in TestRollsOnReusedMirrors: sizes
// vary so records straddle block and segment ends differently.
func rollBody(i int) string {
	return fmt.Sprintf("%d-%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, 700+i%300))
}
