package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

// fillLog appends n records and closes the log, returning their offsets.
func fillLog(t *testing.T, fs vfs.FS, dir string, n int) (offs []int64, end int64) {
	l := openLog(t, fs, dir, flush.DefaultSync, Hint{})
	for i := 0; i < n; i++ {
		offs = append(offs, mustAppend(t, l, one(fmt.Sprintf("rec-%04d", i))).Offset)
	}
	end = l.Tail()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return offs, end
}

func segFile(dir string, off int64) (string, int64) {
	base := off - off%(64<<10)
	return filepath.Join(dir, segmentName(base)), off - base
}

func patch(t *testing.T, dir string, off int64, b []byte) {
	t.Helper()
	path, rel := segFile(dir, off)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, rel); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverTornTail(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string, last, end int64){
		"zeroed last record": func(t *testing.T, dir string, last, end int64) {
			patch(t, dir, last, make([]byte, end-last))
		},
		"partial last record": func(t *testing.T, dir string, last, end int64) {
			patch(t, dir, last+40, make([]byte, end-last-40))
		},
		"garbage after the end": func(t *testing.T, dir string, last, end int64) {
			patch(t, dir, end, []byte("torn write garbage"))
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			offs, end := fillLog(t, vfs.Default(), dir, 50)
			last := offs[len(offs)-1]
			damage(t, dir, last, end)
			l := openLog(t, vfs.Default(), dir, flush.DefaultSync, Hint{Offset: offs[10]})
			defer l.Close()
			want := last
			if strings.HasPrefix(name, "garbage") {
				want = end
			}
			if l.Tail() != want {
				t.Fatalf("tail %d, want %d", l.Tail(), want)
			}
			r := mustAppend(t, l, one("next"))
			if r.Offset != want {
				t.Fatalf("append at %d", r.Offset)
			}
		})
	}
}

func TestRecoverReportsCorruption(t *testing.T) {
	dir := t.TempDir()
	offs, _ := fillLog(t, vfs.Default(), dir, 100)
	patch(t, dir, offs[20]+90, []byte{0xFF}) // inside record 20's body
	for _, cfg := range []Config{
		// valid data reaches beyond what one interrupted write can explain
		{Dir: dir, SegmentSize: 64 << 10, MaxWrite: 4096, Policy: flush.DefaultSync},
		{Dir: dir, SegmentSize: 64 << 10, MaxWrite: 4096, Policy: flush.DefaultSync, Recovery: Hint{Offset: offs[5]}},
	} {
		_, err := Open(vfs.Default(), cfg)
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.Offset != offs[20] || ce.NextValid != offs[21] {
			t.Fatalf("want corruption at %d, got %v", offs[20], err)
		}
		if !strings.Contains(ce.Error(), segmentName(0)) {
			t.Fatalf("error does not name the file: %v", ce)
		}
	}
}

func TestEveryBitFlipDetected(t *testing.T) {
	m := testMessage("payload")
	size := int64(m.Size())
	frame := make([]byte, size+trailerSize+blankSize)
	b := &msgs{ms: []*message.Message{m}}
	b.Encode(0, frame[:size], 0, 1)
	putUint32(frame[size:], crcOf(frame[:size]))
	putUint32(frame[size+trailerSize:], blankSize)
	putUint32(frame[size+trailerSize+4:], message.MagicBlank)
	if _, _, reason := checkFrame(frame, 0, 0); reason != "" {
		t.Fatal(reason)
	}
	for bit := 0; bit < int(size+trailerSize)*8; bit++ {
		frame[bit/8] ^= 1 << (bit % 8)
		if n, _, reason := checkFrame(frame, 0, 0); reason == "" && n > 0 {
			t.Fatalf("flip of bit %d (byte %d) not detected", bit, bit/8)
		}
		frame[bit/8] ^= 1 << (bit % 8)
	}
}

func TestRecoverAfterFullSegments(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		dir := t.TempDir()
		l := openLog(t, fs, dir, p, Hint{})
		for l.Tail() < 2*l.SegmentSize()+100 {
			mustAppend(t, l, one(strings.Repeat("s", 700)))
		}
		waitWritten(t, l, l.Tail())
		end := l.Tail()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// abnormal restart: scan everything from the start
		l = openLog(t, fs, dir, p, Hint{})
		defer l.Close()
		if l.Tail() != end {
			t.Fatalf("tail %d, want %d", l.Tail(), end)
		}
	})
}

// Under ASYNC_FLUSH nothing after the last fdatasync was promised and a
// power loss may keep later blocks but not earlier ones: a bad record
// followed by valid ones is a torn tail, truncated with a .broken copy.
func TestAsyncRecoveryTreatsHolesAsTorn(t *testing.T) {
	dir := t.TempDir()
	offs, _ := fillLog(t, vfs.Default(), dir, 100)
	patch(t, dir, offs[20]+90, []byte{0xFF})
	l, err := Open(vfs.Default(), Config{Dir: dir, SegmentSize: 64 << 10, MaxWrite: 4096, Policy: flush.DefaultAsync})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Tail() != offs[20] {
		t.Fatalf("tail %d, want the bad record's offset %d", l.Tail(), offs[20])
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.broken-*")); len(m) != 1 {
		t.Fatalf(".broken copies: %v", m)
	}
}
