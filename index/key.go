package index

import (
	"strings"

	"github.com/mqd/mqd/internal/message"
)

// KeyHash is the index hash of a message key: abs(String.hashCode(topic +
// "#" + key)) with Java semantics, Int32.MinValue mapping to 0 (Java's IndexFile.putKey).
// It computes the hash of the concatenation without building it.
func KeyHash(topic, key string) int32 {
	h := message.JavaStringHash(topic)
	h = 31*h + '#'
	h = h*pow31(utf16Len(key)) + message.JavaStringHash(key)
	if h < 0 {
		h = -h // Int32.MinValue stays negative (wrapping)
	}
	if h < 0 {
		h = 0
	}
	return h
}

// pow31 is 31^n with wrapping int32 arithmetic.
func pow31(n int) int32 {
	r, b := int32(1), int32(31)
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			r *= b
		}
		b *= b
	}
	return r
}

// utf16Len is the number of UTF-16 code units of s as Java sees it (invalid
// UTF-8 bytes each decode to U+FFFD, one unit, as message.JavaStringHash
// treats them).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

// AppendKeys appends the keys RocketMQ indexes for one message to dst: the
// UNIQ_KEY property if set, then each token of the KEYS property split on
// single spaces, empty tokens skipped (Java's IndexService.buildIndex). It allocates only when
// dst must grow.
func AppendKeys(dst []string, uniqKey, keys string) []string {
	if uniqKey != "" {
		dst = append(dst, uniqKey)
	}
	for keys != "" {
		tok, rest, _ := strings.Cut(keys, " ")
		if tok != "" {
			dst = append(dst, tok)
		}
		keys = rest
	}
	return dst
}
