package message

import (
	"runtime/metrics"
	"strings"
	"testing"
)

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// FuzzProperties feeds arbitrary strings to the properties decoders
// (Java's MessageDecoder.messageProperties2String): no panic, decoding n bytes allocates at most 64n + 1 MiB,
// every parsed pair is found by LookupProperty, and encoding the parsed
// map parses back to the same map.
func FuzzProperties(f *testing.F) {
	f.Add("TAGS\x01a\x02KEYS\x01k1 k2\x02WAIT\x01true\x02UNIQ_KEY\x01AC11000100002A9F0000000000000000")
	f.Add("TAGS\x01a\x02")
	f.Add("\x01\x02\x01\x01\x02\x02k\x01\x02\x01v")
	f.Add("a\x01b\x01c\x02a\x01d")
	f.Add(strings.Repeat("\x02", 64))
	f.Fuzz(func(t *testing.T, props string) {
		before := heapAllocs()
		m := ParseProperties(props)
		if got, limit := heapAllocs()-before, uint64(64*len(props)+1<<20); got > limit {
			t.Fatalf("parsing %d bytes allocated %d (bound %d)", len(props), got, limit)
		}
		for k, v := range m {
			// Lookup finds the first occurrence, the map keeps the last.
			if _, ok := LookupProperty(props, k); !ok || k == "" || v == "" {
				t.Fatalf("pair %q=%q not found by LookupProperty", k, v)
			}
		}
		if _, ok := LookupProperty(props, ""); ok {
			t.Fatal("empty key found")
		}
		enc := EncodeProperties(m)
		m2 := ParseProperties(enc)
		if len(m2) != len(m) {
			t.Fatalf("re-parse: %d pairs, want %d (%q)", len(m2), len(m), enc)
		}
		for k, v := range m {
			if k != "" && !strings.ContainsAny(k, "\x01\x02") && !strings.ContainsAny(v, "\x01\x02") && m2[k] != v {
				t.Fatalf("re-parse: %q=%q, want %q", k, m2[k], v)
			}
		}
	})
}
