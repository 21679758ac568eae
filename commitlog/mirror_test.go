package commitlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
	"golang.org/x/sys/unix"
)

// TestMirrorChunkHolds: a dropped chunk refuses new holders, keeps its
// bytes until its last holder lets go, then reads as zeros (its pages went
// back to the kernel); a hold across a dropped chunk takes nothing.
func TestMirrorChunkHolds(t *testing.T) {
	const size, chunk = 1 << 20, 64 << 10
	m, err := newMirror(size, chunk, 0, 0, false, nil, pacer{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.buf {
		m.buf[i] = byte(i) | 1
	}
	zero := func(c int) bool {
		return bytes.IndexFunc(m.buf[c*chunk:(c+1)*chunk], func(r rune) bool { return r != 0 }) < 0
	}
	if !m.hold(2*chunk+10, 100) || !m.hold(5*chunk-10, 20) { // chunk 2; chunks 4 and 5
		t.Fatal("hold refused before any drop")
	}
	m.dropBelow(4*chunk + 1) // chunks 0..3
	for c := range 4 {
		if m.resident(int64(c) * chunk) {
			t.Fatalf("chunk %d resident after the drop", c)
		}
	}
	if !zero(0) || !zero(1) || !zero(3) {
		t.Fatal("a dropped chunk nobody held kept its pages")
	}
	if zero(2) {
		t.Fatal("a held chunk lost its bytes")
	}
	if m.hold(2*chunk, 1) || m.hold(4*chunk-1, 2) {
		t.Fatal("a dropped chunk was held again")
	}
	if m.state[4].Load() != 1 {
		t.Fatalf("chunk 4 holders %d after a refused hold across it, want 1", m.state[4].Load())
	}
	m.state[7].Or(chunkGone) // (drops are a prefix; this checks the rollback)
	if m.hold(6*chunk, 2*chunk) || m.state[6].Load() != 0 {
		t.Fatalf("a hold of chunks 6-7 with 7 gone held %d of chunk 6", m.state[6].Load())
	}
	m.state[7].And(^int32(chunkGone))
	m.unhold(2*chunk+10, 100)
	if !zero(2) {
		t.Fatal("the last holder of a dropped chunk did not release its pages")
	}
	m.unhold(5*chunk-10, 20)
	if !m.resident(4*chunk) || zero(4) || zero(5) {
		t.Fatal("chunks in the window lost")
	}
	m.dropBelow(size)
	m.release()
	if m.acquire() || m.hold(0, 1) {
		t.Fatal("a released mirror was held")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a release beyond the last did not panic")
		}
	}()
	m.release()
}

// TestMirrorHoldsRaceDrops: readers hold and check random ranges while
// the window moves over them; a reader never sees a byte of its range
// change (under -race, the holds and drops also race for real).
func TestMirrorHoldsRaceDrops(t *testing.T) {
	const size, chunk = 4 << 20, 64 << 10
	m, err := newMirror(size, chunk, 0, 0, false, nil, pacer{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.release()
	for i := range m.buf {
		m.buf[i] = byte(i%251) | 1
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				rel, n := r.Int64N(size-3*chunk), 1+r.Int64N(3*chunk)
				if !m.hold(rel, n) {
					continue
				}
				for i := rel; i < rel+n; i += 97 {
					if m.buf[i] != byte(i%251)|1 {
						bad.Store(i)
					}
				}
				m.unhold(rel, n)
				runtime.Gosched()
			}
		}()
	}
	for low := int64(0); low <= size; low += chunk / 4 {
		m.dropBelow(low)
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	if i := bad.Load(); i != 0 {
		t.Fatalf("a held byte changed at %d", i)
	}
	for c := range m.state {
		if v := m.state[c].Load(); v != chunkGone {
			t.Fatalf("chunk %d state %#x after every holder let go, want gone with no holder", c, v)
		}
	}
}

// TestIteratorReadAheadStopsAtWritten: an iterator that read a file
// window near the written end (below the tail block recovery reloads)
// must not serve later records from that stale window once their chunks
// left memory.
func TestIteratorReadAheadStopsAtWritten(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		dir := t.TempDir()
		cfg := Config{Dir: dir, SegmentSize: 1 << 20, MirrorChunk: 16 << 10, MirrorWindow: 64 << 10, Policy: p}
		l, err := Open(fs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ; l.Tail() < 300<<10; n++ {
			mustAppend(t, l, one(rollBody(n)))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		cfg.Recovery = Hint{}
		if l, err = Open(fs, cfg); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		it := l.NewIterator(0)
		defer it.Close()
		got := 0
		next := func() {
			t.Helper()
			for {
				off, rec, err := it.Next(l.Written())
				if err != nil {
					t.Fatalf("record %d: %v", got, err)
				}
				if rec == nil {
					return
				}
				if v, err := message.Parse(rec); err != nil || v.PhysOffset != off || string(v.Body) != rollBody(got) {
					t.Fatalf("record %d at %d: %v %.20q", got, off, err, v.Body)
				}
				got++
			}
		}
		next()
		for ; l.Tail() < 900<<10; n++ {
			mustAppend(t, l, one(rollBody(n)))
		}
		waitWritten(t, l, l.Tail())
		next()
		if got != n {
			t.Fatalf("iterated %d records of %d", got, n)
		}
	})
}

// TestChunkPoolMovesPages: a dropped chunk's pages move to the pool and
// from there, zeroed, onto another mirror's chunk, never onto one a
// writer claimed; the dropped range reads as zeros.
func TestChunkPoolMovesPages(t *testing.T) {
	const size, chunk = 1 << 20, 256 << 10
	pool := &chunkPool{size: chunk, max: 2}
	defer pool.close()
	m1, err := newMirror(size, chunk, 0, size, true, pool, pacer{})
	if err != nil {
		t.Fatal(err)
	}
	defer m1.release()
	for i := range m1.buf {
		m1.buf[i] = 0xA5
	}
	m1.dropBelow(3 * chunk)
	if pool.len() != 2 {
		t.Skipf("the kernel refused MREMAP_DONTUNMAP (parked %d of 2): chunks are freed instead", pool.len())
	}
	if bytes.IndexByte(m1.buf[:3*chunk], 0xA5) >= 0 {
		t.Fatal("a dropped chunk's range still reads its bytes")
	}
	m2, err := newMirror(size, chunk, 0, 0, true, pool, pacer{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.release()
	m2.claim(chunk + 1) // a writer reached into chunk 1
	if m2.fillChunk(chunk) {
		t.Fatal("a pool chunk was moved onto a chunk a writer claimed")
	}
	m2.populate(3*chunk, pacer{}) // chunks 0-1 (claimed) faulted in, chunk 2 from the pool
	if pool.moves != [2]int{2, 1} || pool.len() != 1 || m2.ready.Load() != 3*chunk || m2.populated.Load() != 3*chunk {
		t.Fatalf("moves %v pool %d ready %d populated %d after populating 3 chunks, want [2 1] 1 %d %d",
			pool.moves, pool.len(), m2.ready.Load(), m2.populated.Load(), 3*chunk, 3*chunk)
	}
	if n := residentPages(t, m2.buf[2*chunk:3*chunk]); n != chunk/os.Getpagesize() {
		t.Fatalf("chunk 2 filled from the pool has %d resident pages, want all %d", n, chunk/os.Getpagesize())
	}
	if n := residentPages(t, pool.empty[0]); n != 0 {
		t.Fatalf("the slot a chunk left still has %d resident pages", n)
	}
	if i := bytes.IndexFunc(m2.buf, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("populated mirror not zero at %d", i)
	}
	for i := range m2.buf[:3*chunk] {
		m2.buf[i] = 1
	}
	if bytes.Count(m1.buf[3*chunk:], []byte{0xA5}) != size-3*chunk {
		t.Fatal("a move disturbed another chunk")
	}
}

// residentPages counts b's pages in memory (mincore), without touching them.
func residentPages(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestWindowReads: with a window smaller than a segment, every record
// reads back (copied, viewed, iterated) whether in memory or not; memory
// holds no more than the window and the chunks populated ahead; a view
// held across a drop keeps its bytes until released.
func TestWindowReads(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		const seg, chunk, window = 256 << 10, 16 << 10, 64 << 10
		l, err := Open(fs, Config{Dir: t.TempDir(), SegmentSize: seg, MirrorChunk: chunk, MirrorWindow: window, Policy: p, Prefault: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var offs []int64
		var sizes []int32
		var view []byte
		var ref Ref
		for n := 0; l.Tail() < 3*seg+seg/2+5000; n++ { // off a chunk boundary
			r := mustAppend(t, l, one(rollBody(n)))
			offs, sizes = append(offs, r.Offset), append(sizes, int32(r.End-r.Offset-TrailerSize))
			if n == 3 {
				waitWritten(t, l, r.End)
				var ok bool
				if view, ref, ok = l.View(r.Offset, sizes[n]); !ok {
					t.Fatal("a record just written is not in memory")
				}
			}
		}
		waitWritten(t, l, l.Tail())
		if l.InMemory(offs[3]) {
			t.Fatal("a record far behind the window is in memory")
		}
		if v, err := message.Parse(view); err != nil || string(v.Body) != rollBody(3) {
			t.Fatalf("a view held across the drop changed: %v %.20q", err, v.Body)
		}
		ref.Release()
		if !l.InMemory(offs[len(offs)-1]) {
			t.Fatal("the last record is not in memory")
		}
		for i := range offs {
			b, err := l.ReadVerified(offs[i], sizes[i], nil)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if v, err := message.Parse(b); err != nil || string(v.Body) != rollBody(i) {
				t.Fatalf("record %d: %v %.20q", i, err, v.Body)
			}
		}
		checkRecords(t, l, len(offs), rollBody)
		segs := l.segments()
		tail := segs[len(segs)-1]
		// The loop is woken as the written end enters a chunk, and populates
		// two chunks past where it finds the written end.
		want := min(seg, (l.Written()-tail.base)/chunk*chunk+mirrorAheadChunks*chunk)
		for deadline := time.Now().Add(5 * time.Second); populated(tail) < want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("tail populated to %d, want %d (written %d)", populated(tail), want, l.Written()-tail.base)
			}
		}
		resident := 0
		for _, s := range l.segments() {
			if m := s.mem.Load(); m != nil {
				for c := range m.state {
					if m.state[c].Load()&chunkGone == 0 && int64(c)*chunk < m.populated.Load() {
						resident++
					}
				}
			}
		}
		if max := window/chunk + mirrorAheadChunks + 1; resident > max {
			t.Fatalf("%d chunks populated and not dropped, want at most %d", resident, max)
		}
		l.pool.mu.Lock()
		moves := l.pool.moves
		l.pool.mu.Unlock()
		t.Logf("chunks parked %d, filled from the pool %d", moves[0], moves[1])
		switch {
		case moves[0] == 0 && l.pool.broken:
			t.Log("the kernel refused MREMAP_DONTUNMAP: dropped chunks were freed, not reused")
		case moves[0] == 0 || moves[1] == 0:
			t.Fatal("the pool was not used: dropped chunks were not reused")
		}
	})
}

// populated is how far the mirror loop populated seg's mirror.
func populated(seg *segment) int64 {
	m := seg.mem.Load()
	if m == nil {
		return 0
	}
	return m.populated.Load()
}

// TestRollsAcrossTheWindow: many rolls, the window dropping whole mirrors:
// every record reads back, from the mirrors and after reopening from the
// files, and nothing past the tail resurrects.
func TestRollsAcrossTheWindow(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		dir := t.TempDir()
		l := openLog(t, fs, dir, p, Hint{})
		n := 0
		for l.Tail() < 12*l.SegmentSize() {
			mustAppend(t, l, one(rollBody(n)))
			n++
		}
		waitWritten(t, l, l.Tail())
		checkRecords(t, l, n, rollBody)
		// The flush loop publishes the written end before it drops what
		// fell behind the window (round: writeRange, then
		// dropBehindWritten), so the drop may follow Written by a moment.
		mirrored := func() int {
			m := 0
			for _, s := range l.segments() {
				if s.mem.Load() != nil {
					m++
				}
			}
			return m
		}
		if !eventually(func() bool { return mirrored() <= 3 }) { // window = 2 segments, plus the tail's
			t.Fatalf("%d segments still mirrored", mirrored())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openLog(t, fs, dir, p, Hint{})
		defer l.Close()
		checkRecords(t, l, n, rollBody)
	})
}

// rollBody is the body of record i in TestRollsAcrossTheWindow: sizes
// vary so records straddle block and segment ends differently.
func rollBody(i int) string {
	return fmt.Sprintf("%d-%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, 700+i%300))
}
