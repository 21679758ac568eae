package message

import "unicode/utf16"

// JavaStringHash is Java's String.hashCode: h = 31*h + c over the UTF-16
// code units of s, with wrapping int32 arithmetic. RocketMQ uses it for the
// consume-queue tag code (sign-extended to int64) and for index keys
// (Java's MessageExtBrokerInner.tagsString2tagsCode and IndexFile.putKey). Go's own client hashes UTF-8 bytes instead, which
// differs for non-ASCII strings; the broker must use this one.
func JavaStringHash(s string) int32 {
	var h int32
	for i := 0; i < len(s); i++ {
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
