package index

import (
	"errors"
	"testing"
)

// stepMapping records WriteBack calls; it fails from the failAt-th call.
type stepMapping struct {
	calls  [][2]int64
	failAt int
}

func (m *stepMapping) Bytes() []byte { return nil }
func (m *stepMapping) Sync() error   { return nil }
func (m *stepMapping) Close() error  { return nil }
func (m *stepMapping) WriteBack(off, n int64) error {
	m.calls = append(m.calls, [2]int64{off, n})
	if m.failAt > 0 && len(m.calls) >= m.failAt {
		return errors.New("eio")
	}
	return nil
}

// TestWriteBackPacedCoversTheFile: the write-back before an index msync
// covers the whole file in writeBackStep pieces, in order, and stops at
// the first failure (left to the msync to report).
func TestWriteBackPacedCoversTheFile(t *testing.T) {
	size := int64(3*writeBackStep + 100)
	m := &stepMapping{}
	writeBackPaced(m, size)
	want := [][2]int64{{0, writeBackStep}, {writeBackStep, writeBackStep}, {2 * writeBackStep, writeBackStep}, {3 * writeBackStep, 100}}
	if len(m.calls) != len(want) {
		t.Fatalf("calls %v, want %v", m.calls, want)
	}
	for i := range want {
		if m.calls[i] != want[i] {
			t.Fatalf("calls %v, want %v", m.calls, want)
		}
	}
	m = &stepMapping{failAt: 2}
	writeBackPaced(m, size)
	if len(m.calls) != 2 {
		t.Fatalf("%d calls after a failure at the second, want 2", len(m.calls))
	}
}
