package protocol

import (
	"testing"
	"unicode/utf8"
)

// plainRunRef is plainRun byte by byte.
func plainRunRef(b []byte, j int) int {
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return j
		}
	}
	return len(b)
}

// TestPlainRunEveryStopByte: every byte value at every position of a
// word, behind plain bytes and behind bytes just above a stop class (the
// borrow edge cases: 0x20, '"'+1, '\\'+1, 0x7f), from every start
// alignment, agrees with the byte-by-byte scan.
func TestPlainRunEveryStopByte(t *testing.T) {
	fills := []byte{'a', 0x20, '"' + 1, '\\' + 1, 0x7f, '"' - 1, '\\' - 1, '0'}
	for _, fill := range fills {
		for n := 0; n <= 24; n++ {
			for at := 0; at <= n; at++ {
				for c := 0; c < 256; c++ {
					b := make([]byte, n+1)
					for i := range b {
						b[i] = fill
					}
					if at < len(b) {
						b[at] = byte(c)
					}
					for j := 0; j <= len(b); j++ {
						if got, want := plainRun(b, j), plainRunRef(b, j); got != want {
							t.Fatalf("fill %#x, len %d, byte %#x at %d, from %d: plainRun %d, want %d", fill, len(b), c, at, j, got, want)
						}
					}
				}
			}
		}
	}
}

// FuzzPlainRun compares plainRun with the byte-by-byte scan.
func FuzzPlainRun(f *testing.F) {
	f.Add([]byte(`TAGS\u0001TagA\u0002UNIQ_KEY\u0001C0000202"`), 0)
	f.Add([]byte("abcdefgh\x80ijk"), 3)
	f.Fuzz(func(t *testing.T, b []byte, j int) {
		if j < 0 || j > len(b) {
			return
		}
		if got, want := plainRun(b, j), plainRunRef(b, j); got != want {
			t.Fatalf("plainRun(%q, %d) = %d, want %d", b, j, got, want)
		}
	})
}
