package index

import (
	"strings"

	"github.com/mqd/mqd/internal/message"
)

// KeyHash is the index hash of a message key: abs(String.hashCode(topic +
// "#" + key)) with Java semantics, Int32.MinValue mapping to 0 (Java's IndexFile.putKey).
// It computes the hash of the concatenation without building it.
func KeyHash(topic, key string) int32 { return keyHashFrom(message.JavaStringHash(topic), key) }

// keyHashFrom is KeyHash given the topic's String.hashCode (th), which a
// message's several keys share.
func keyHashFrom(th int32, key string) int32 {
	h := message.JavaStringHashFrom(31*th+'#', key)
	if h < 0 {
		h = -h // Int32.MinValue stays negative (wrapping)
	}
	if h < 0 {
		h = 0
	}
	return h
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
