package message

import (
	"sort"
	"strings"
)

// Property separators (Java's MessageDecoder.messageProperties2String): k1\x01v1\x02k2\x01v2[\x02].
const (
	NameValueSep = '\x01'
	PropertySep  = '\x02'
)

// Well-known property keys.
const (
	PropKeys          = "KEYS"
	PropTags          = "TAGS"
	PropWait          = "WAIT"
	PropDelay         = "DELAY"
	PropUniqKey       = "UNIQ_KEY"
	PropTranMsg       = "TRAN_MSG"
	PropProducerGroup = "PGROUP"
	PropRealTopic     = "REAL_TOPIC"
	PropRealQueueID   = "REAL_QID"
	PropRetryTopic    = "RETRY_TOPIC"
	PropCluster       = "CLUSTER"
)

// LookupProperty finds key in an encoded properties string without
// allocating. Chunks with an empty key or value are ignored, as Java does;
// the first chunk with the key and a value wins. It searches for the key
// itself rather than splitting every chunk (the send path looks up seven
// keys per message; issue 14: CPU per message): an occurrence counts where
// a chunk starts (the string's start, or after PropertySep) and
// NameValueSep follows it, which is where splitting would find it.
func LookupProperty(props, key string) (string, bool) {
	if key == "" {
		return "", false
	}
	for from := 0; ; {
		i := strings.Index(props[from:], key)
		if i < 0 {
			return "", false
		}
		i += from
		from = i + 1
		end := i + len(key)
		if (i > 0 && props[i-1] != PropertySep) || end >= len(props) || props[end] != NameValueSep {
			continue
		}
		v := props[end+1:]
		if j := strings.IndexByte(v, PropertySep); j >= 0 {
			v = v[:j]
		}
		if v == "" {
			continue
		}
		// A key holding a separator never is a chunk's whole key.
		if strings.IndexByte(key, NameValueSep) >= 0 || strings.IndexByte(key, PropertySep) >= 0 {
			return "", false
		}
		return v, true
	}
}

// DispatchProperties returns what LookupProperty finds for TAGS,
// UNIQ_KEY and KEYS ("" where it finds nothing), in one pass over props:
// the dispatcher reads the three from every record. A chunk is matched on
// where its NameValueSep would end one of the three names and on those
// bytes alone, so a chunk costs a few compares whatever its name
// (issue 14: CPU per message; under callgrind, for a Go
// producer's properties, ~440 instructions against ~900 for the loop over
// a list of keys this replaced, BenchmarkDispatchProperties). As in
// LookupProperty, a chunk with an empty value is skipped and the first
// chunk with the name and a value wins.
func DispatchProperties(props string) (tags, uniqKey, keys string) {
	for left := 3; props != "" && left > 0; {
		chunk := props
		if j := strings.IndexByte(props, PropertySep); j >= 0 {
			chunk, props = props[:j], props[j+1:]
		} else {
			props = ""
		}
		switch {
		case len(chunk) > len(PropTags)+1 && chunk[len(PropTags)] == NameValueSep:
			// TAGS and KEYS are the same length
			v := chunk[len(PropTags)+1:]
			switch chunk[:len(PropTags)] {
			case PropTags:
				if tags == "" {
					tags, left = v, left-1
				}
			case PropKeys:
				if keys == "" {
					keys, left = v, left-1
				}
			}
		case len(chunk) > len(PropUniqKey)+1 && chunk[len(PropUniqKey)] == NameValueSep && chunk[:len(PropUniqKey)] == PropUniqKey:
			if uniqKey == "" {
				uniqKey, left = chunk[len(PropUniqKey)+1:], left-1
			}
		}
	}
	return tags, uniqKey, keys
}

// ParseProperties decodes a properties string into a map. Both Java's form
// (no trailing separator) and Go's (trailing \x02) are accepted.
func ParseProperties(props string) map[string]string {
	m := make(map[string]string)
	for _, chunk := range strings.Split(props, string(PropertySep)) {
		j := strings.IndexByte(chunk, NameValueSep)
		if j > 0 && j < len(chunk)-1 {
			m[chunk[:j]] = chunk[j+1:]
		}
	}
	return m
}

// EncodeProperties encodes m with keys in sorted order (deterministic), in
// Java's form without a trailing separator.
func EncodeProperties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(PropertySep)
		}
		b.WriteString(k)
		b.WriteByte(NameValueSep)
		b.WriteString(m[k])
	}
	return b.String()
}

// AppendProperty appends k=v to an encoded properties string.
func AppendProperty(props, k, v string) string {
	if props != "" && props[len(props)-1] != PropertySep {
		props += string(PropertySep)
	}
	return props + k + string(NameValueSep) + v
}

// RemoveProperty drops every key=value chunk of key from an encoded
// properties string, keeping the others in order (Java's form, no trailing
// separator); props is returned unchanged when key is absent.
func RemoveProperty(props, key string) string {
	if _, ok := LookupProperty(props, key); !ok {
		return props
	}
	var b strings.Builder
	for _, chunk := range strings.Split(props, string(PropertySep)) {
		if k, _, _ := strings.Cut(chunk, string(NameValueSep)); k == key || chunk == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(PropertySep)
		}
		b.WriteString(chunk)
	}
	return b.String()
}
