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

// lookupBySplitting is LookupProperty as it was written first: every chunk
// split at its separators, the reference of FuzzLookupProperty.
func lookupBySplitting(props, key string) (string, bool) {
	s := props
	for len(s) > 0 {
		i := strings.IndexByte(s, PropertySep)
		chunk := s
		if i >= 0 {
			chunk, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		j := strings.IndexByte(chunk, NameValueSep)
		if j > 0 && j < len(chunk)-1 && chunk[:j] == key {
			return chunk[j+1:], true
		}
	}
	return "", false
}

// FuzzLookupProperty: LookupProperty finds what splitting every chunk
// finds, for any properties string and any key.
func FuzzLookupProperty(f *testing.F) {
	f.Add("TAGS\x01a\x02KEYS\x01k1 k2\x02WAIT\x01true\x02", "WAIT")
	f.Add("xWAIT\x01a\x02WAIT\x01\x02WAIT\x01b", "WAIT")
	f.Add("a\x01WAIT\x01c\x02WAIT", "WAIT")
	f.Add("a\x02b\x01c", "a\x02b")
	f.Add("a\x01b\x01c", "a\x01b")
	f.Add("\x01v\x02k\x01", "k")
	f.Fuzz(func(t *testing.T, props, key string) {
		v, ok := LookupProperty(props, key)
		wv, wok := lookupBySplitting(props, key)
		if v != wv || ok != wok {
			t.Fatalf("LookupProperty(%q, %q) = %q, %v; splitting finds %q, %v", props, key, v, ok, wv, wok)
		}
	})
}

func BenchmarkLookupProperty(b *testing.B) {
	props := "UNIQ_KEY\x017F0000011A2B18B4AAC2760D4C3E0000\x02WAIT\x01true\x02TAGS\x01TagA\x02KEYS\x01order-1234567"
	keys := []string{"DELAY", "TRAN_MSG", "WAIT", "TIMER_DELIVER_MS", "KEYS"}
	for i := 0; i < b.N; i++ {
		for _, k := range keys {
			LookupProperty(props, k)
		}
	}
}

// FuzzDispatchProperties: one pass finds what LookupProperty finds for
// each of TAGS, UNIQ_KEY and KEYS, whatever the properties string: keys
// that repeat, have empty values, hold separators in their values, or are
// prefixes or extensions of one another.
func FuzzDispatchProperties(f *testing.F) {
	f.Add("TAGS\x01a\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01u\x02")
	f.Add("xTAGS\x01a\x02TAGS\x01\x02TAGS\x01b\x02TAGSx\x01c\x02KEYS\x01")
	f.Add("KEYS\x01a\x01b\x02KEYS\x01c\x02UNIQ_KEYS\x01x\x02UNIQ_KEY\x01\x02UNIQ_KEY\x01y")
	f.Add("\x01v\x02k\x01\x02TAGS")
	f.Fuzz(func(t *testing.T, props string) {
		tags, uniq, keys := DispatchProperties(props)
		for _, c := range []struct{ key, got string }{{PropTags, tags}, {PropUniqKey, uniq}, {PropKeys, keys}} {
			if want, _ := LookupProperty(props, c.key); c.got != want {
				t.Fatalf("DispatchProperties(%q): %s = %q, LookupProperty finds %q", props, c.key, c.got, want)
			}
		}
	})
}

// BenchmarkDispatchProperties: the properties a Go producer sends (what
// the dispatcher reads from every record), one pass against three
// LookupProperty calls.
func BenchmarkDispatchProperties(b *testing.B) {
	props := "UNIQ_KEY\x017F0000011A2B18B4AAC2760D4C3E0000\x02WAIT\x01true\x02TAGS\x01TagA\x02KEYS\x01order-1234567"
	b.Run("one pass", func(b *testing.B) {
		for b.Loop() {
			sinkTags, sinkUniq, sinkKeys = DispatchProperties(props)
		}
	})
	b.Run("three lookups", func(b *testing.B) {
		for b.Loop() {
			sinkTags, _ = LookupProperty(props, PropTags)
			sinkUniq, _ = LookupProperty(props, PropUniqKey)
			sinkKeys, _ = LookupProperty(props, PropKeys)
		}
	})
}

var sinkTags, sinkUniq, sinkKeys string // the benchmarks' results, kept
