package protocol

import (
	"bytes"
	"math"
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

// FuzzCompactShortcuts is differential: memberKey reads what rawString
// and expect(':') read, and a number shortUint takes is the one number
// and parseInt read, ending at the same byte.
func FuzzCompactShortcuts(f *testing.F) {
	f.Add([]byte(`"code":310,`))
	f.Add([]byte(`"k\"" :"v"`))
	f.Add([]byte(`"opaque":1234567890123456789}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, slow := jsonScanner{b: data}, jsonScanner{b: data}
		k1, err1 := fast.memberKey()
		k2, err2 := slow.rawString()
		if err2 == nil {
			err2 = slow.expect(':')
		}
		if (err1 == nil) != (err2 == nil) || (err1 == nil && (!bytes.Equal(k1, k2) || fast.i != slow.i)) {
			t.Fatalf("memberKey %q %v at %d; rawString+expect %q %v at %d", k1, err1, fast.i, k2, err2, slow.i)
		}
		for i := range data {
			fast.i, slow.i = i, i
			n, end, ok := fast.shortUint()
			if !ok {
				continue
			}
			text, err := slow.number()
			v, vok := parseInt(text, math.MinInt64, math.MaxInt64)
			if err != nil || !vok || v != n || slow.i != end {
				t.Fatalf("at %d shortUint %d to %d; number %q (%v) = %d to %d", i, n, end, text, err, v, slow.i)
			}
		}
	})
}
