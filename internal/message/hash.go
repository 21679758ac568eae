package message

import "unicode/utf16"

// JavaStringHash is Java's String.hashCode: h = 31*h + c over the UTF-16
// code units of s, with wrapping int32 arithmetic. RocketMQ uses it for the
// consume-queue tag code (sign-extended to int64) and for index keys
// (Java's MessageExtBrokerInner.tagsString2tagsCode and IndexFile.putKey). Go's own client hashes UTF-8 bytes instead, which
// differs for non-ASCII strings; the broker must use this one.
func JavaStringHash(s string) int32 { return JavaStringHashFrom(0, s) }

// Powers of 31 for JavaStringHashFrom's four-byte steps.
const (
	p31x2 = 31 * 31
	p31x3 = 31 * 31 * 31
	p31x4 = 31 * 31 * 31 * 31
)

// JavaStringHashFrom continues a Java String.hashCode h over s: the hash
// of a string that starts with one hashing to h and goes on with s. The
// index hashes topic + "#" + key this way without building it (Java's
// IndexFile.putKey). ASCII runs go four bytes a step, h*31^4 + c0*31^3 +
// c1*31^2 + c2*31 + c3: wrapping int32 arithmetic is exact for any
// regrouping, and the four products do not wait on one another as 31*h +
// c does (index keys are 32-byte message ids).
func JavaStringHashFrom(h int32, s string) int32 {
	i := 0
	for ; i+4 <= len(s); i += 4 {
		c0, c1, c2, c3 := s[i], s[i+1], s[i+2], s[i+3]
		if (c0|c1|c2|c3)&0x80 != 0 {
			break
		}
		h = h*p31x4 + int32(c0)*p31x3 + int32(c1)*p31x2 + int32(c2)*31 + int32(c3)
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return javaHashSlow(h, s[i:])
		}
		h = 31*h + int32(c)
	}
	return h
}

func javaHashSlow(h int32, s string) int32 {
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// TagsCode is the consume-queue tag hash of a TAGS value: 0 for no tag.
func TagsCode(tags string) int64 {
	if tags == "" {
		return 0
	}
	return int64(JavaStringHash(tags))
}
