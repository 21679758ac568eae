package message

import (
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestJavaStringHash(t *testing.T) {
	// Values from Java's MessageExtBrokerInner.tagsString2tagsCode (computed by Java's String.hashCode).
	cases := map[string]int32{"": 0, "TagA": 2598919, "标签": 857175, "😀": 1772899, "a": 97,
		// Longer than JavaStringHashFrom's four-byte steps, with a
		// non-ASCII start and end (String.hashCode, Java 17).
		"C0A8000100002A9F0000000000000000": 1100359137,
		"订单-C0A8000100002A9F000000😀":       -656336162,
	}
	for s, want := range cases {
		if got := JavaStringHash(s); got != want {
			t.Errorf("JavaStringHash(%q) = %d, want %d", s, got, want)
		}
	}
	if TagsCode("") != 0 || TagsCode("TagA") != 2598919 {
		t.Fatal("TagsCode")
	}
}

// javaHashRef is String.hashCode spelled out, one UTF-16 unit a step.
func javaHashRef(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// TestJavaStringHashFrom checks the four-byte steps and the continuation
// against the reference at every split of strings whose non-ASCII, invalid
// UTF-8 and surrogate-pair characters sit at every position of a step.
func TestJavaStringHashFrom(t *testing.T) {
	parts := []string{"", "a", "TagA", "C0A8000100002A9F0000000000000000", "标", "😀", "\xff", "\xe2\x82", "#"}
	for _, a := range parts {
		for _, b := range parts {
			for _, c := range parts {
				s := a + b + c
				want := javaHashRef(s)
				if got := JavaStringHash(s); got != want {
					t.Fatalf("JavaStringHash(%q) = %d, want %d", s, got, want)
				}
				for i := 0; i <= len(s); i++ {
					if !utf8.ValidString(s[:i]) || !utf8.ValidString(s[i:]) {
						continue // a split inside a character hashes its halves as U+FFFD
					}
					if got := JavaStringHashFrom(JavaStringHash(s[:i]), s[i:]); got != want {
						t.Fatalf("JavaStringHashFrom split %q|%q = %d, want %d", s[:i], s[i:], got, want)
					}
				}
			}
		}
	}
}

// BenchmarkJavaStringHash hashes a 32-byte message id, an index key's
// usual shape.
func BenchmarkJavaStringHash(b *testing.B) {
	s := "C0A8000100002A9F0000000000000000"
	var h int32
	for b.Loop() {
		h += JavaStringHash(s)
	}
	_ = h
}
