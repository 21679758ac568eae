package ha

import (
	"errors"
	"slices"
	"testing"

	"github.com/mqd/mqd/internal/vfs/crashfs"
)

func TestEpochsBeginEndTruncate(t *testing.T) {
	fsys := crashfs.New()
	fsys.MkdirAll("/s")
	e, err := OpenEpochs(fsys, "/s/epochs")
	if err != nil {
		t.Fatal(err)
	}
	if (e.Last() != Entry{}) {
		t.Fatalf("empty history: last %+v", e.Last())
	}
	for _, x := range []Entry{{1, 0}, {2, 100}, {5, 100}, {7, 300}} {
		if err := e.Begin(x.Epoch, x.Start); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Begin(7, 400); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("Begin of the last epoch again: %v", err)
	}
	if err := e.Begin(8, 299); err == nil {
		t.Fatal("Begin below the last start succeeded")
	}
	for _, c := range []struct {
		epoch  int32
		end    int64
		closed bool
	}{{0, 0, true}, {1, 100, true}, {2, 100, true}, {3, 100, true}, {5, 300, true}, {7, 0, false}, {9, 0, false}} {
		end, closed := e.EndOf(c.epoch)
		if end != c.end || closed != c.closed {
			t.Errorf("EndOf(%d) = %d,%v; want %d,%v", c.epoch, end, closed, c.end, c.closed)
		}
	}
	// Reopen after a crash: Begin was durable before it returned.
	after := fsys.Crash()
	e2, err := OpenEpochs(after, "/s/epochs")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Entry{{1, 0}, {2, 100}, {5, 100}, {7, 300}}; !slices.Equal(e2.Entries(), want) {
		t.Fatalf("after crash: %v, want %v", e2.Entries(), want)
	}
	if err := e2.TruncateAfter(100); err != nil {
		t.Fatal(err)
	}
	if want := []Entry{{1, 0}}; !slices.Equal(e2.Entries(), want) {
		t.Fatalf("TruncateAfter(100): %v, want %v", e2.Entries(), want)
	}
	e3, err := OpenEpochs(after.Crash(), "/s/epochs")
	if err != nil || !slices.Equal(e3.Entries(), []Entry{{1, 0}}) {
		t.Fatalf("after truncation and crash: %v %v", e3.Entries(), err)
	}
}

// TestEpochsCrashDuringBegin crashes at every file operation of a Begin:
// the file then holds the old or the new history, never anything else,
// and a Begin that returned nil is always there.
func TestEpochsCrashDuringBegin(t *testing.T) {
	old := []Entry{{1, 0}, {3, 500}}
	for n := 0; ; n++ {
		fsys := crashfs.New()
		fsys.MkdirAll("/s")
		e, err := OpenEpochs(fsys, "/s/epochs")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range old {
			if err := e.Begin(x.Epoch, x.Start); err != nil {
				t.Fatal(err)
			}
		}
		fsys.CrashAt(crashfs.Fault{Op: crashfs.OpAll, After: n}, crashfs.CrashOptions{})
		berr := e.Begin(4, 900)
		after := fsys.Crashed()
		if after == nil {
			if berr != nil {
				t.Fatal(berr)
			}
			if n < 3 {
				t.Fatalf("Begin took only %d file operations", n)
			}
			return // every operation of Begin was crashed at once
		}
		got, err := OpenEpochs(after, "/s/epochs")
		if err != nil {
			t.Fatalf("crash at op %d: %v", n, err)
		}
		newer := append(slices.Clone(old), Entry{4, 900})
		if !slices.Equal(got.Entries(), old) && !slices.Equal(got.Entries(), newer) {
			t.Fatalf("crash at op %d: %v", n, got.Entries())
		}
		if berr == nil && !slices.Equal(got.Entries(), newer) {
			t.Fatalf("crash at op %d: Begin returned nil but the file holds %v", n, got.Entries())
		}
	}
}

func TestEpochFileRejectsDamage(t *testing.T) {
	b := encodeEpochs([]Entry{{1, 0}, {2, 64}})
	if _, err := decodeEpochs(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		c := slices.Clone(b)
		c[i] ^= 0x10
		if _, err := decodeEpochs(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, err := decodeEpochs(b[:len(b)-1]); err == nil {
		t.Fatal("short file accepted")
	}
	if _, err := decodeEpochs(encodeEpochs([]Entry{{2, 0}, {1, 64}})); err == nil {
		t.Fatal("decreasing epochs accepted")
	}
}
