package protocol

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// compressedBody zlib-compresses the chunks written by fill.
func compressedBody(t *testing.T, fill func(w *bytes.Buffer)) []byte {
	t.Helper()
	var raw, out bytes.Buffer
	fill(&raw)
	zw, _ := zlib.NewWriterLevel(&out, zlib.BestSpeed)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func putChunk(w *bytes.Buffer, s string) {
	binary.Write(w, binary.BigEndian, int32(len(s)))
	w.WriteString(s)
}

// A count the sender wrote never sizes memory (the 8 KB body that
// cost +1.3 GB).
func TestCompressedRegisterCountDoesNotSizeMemory(t *testing.T) {
	body := compressedBody(t, func(w *bytes.Buffer) {
		putChunk(w, `{"timestamp":1,"counter":1}`)
		binary.Write(w, binary.BigEndian, int32(150_000)) // within the topic limit
		for range 1000 {
			putChunk(w, "T 4 4 6 SINGLE_TAG")
		}
		w.Write(make([]byte, 8<<20)) // compresses to ~8 KB
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := DecodeRegisterBrokerBody(body, true)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "bad topic line") {
		t.Fatalf("err %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("decoding a %d-byte body allocated %d bytes", len(body), grew)
	}
}

func TestCompressedRegisterBounds(t *testing.T) {
	// A chunk longer than a topic line may be.
	long := compressedBody(t, func(w *bytes.Buffer) {
		putChunk(w, `{"timestamp":1,"counter":1}`)
		binary.Write(w, binary.BigEndian, int32(1))
		binary.Write(w, binary.BigEndian, int32(1<<30))
	})
	if _, err := DecodeRegisterBrokerBody(long, true); err == nil || !strings.Contains(err.Error(), "chunk") {
		t.Fatalf("err %v", err)
	}
	// An inflation bomb stops at maxInflatedRegister.
	bomb := compressedBody(t, func(w *bytes.Buffer) {
		putChunk(w, `{"timestamp":1,"counter":1}`)
		binary.Write(w, binary.BigEndian, int32(DefaultMaxRegisterTopics))
		line := "T 4 4 6 SINGLE_TAG " + strings.Repeat("x", 60<<10)
		for w.Len() < maxCompressedRegister+1024 {
			putChunk(w, line)
		}
	})
	if _, err := DecodeRegisterBrokerBody(bomb, true); err != errRegisterTooLarge {
		t.Fatalf("err %v", err)
	}
	// A body without the trailing filter-server list is accepted.
	short := compressedBody(t, func(w *bytes.Buffer) {
		putChunk(w, `{"timestamp":1,"counter":2}`)
		binary.Write(w, binary.BigEndian, int32(1))
		putChunk(w, "T 4 4 6 SINGLE_TAG")
	})
	b, err := DecodeRegisterBrokerBody(short, true)
	if err != nil || b.TopicConfigSerializeWrapper.TopicConfigTable["T"].WriteQueueNums != 4 {
		t.Fatalf("%v %+v", err, b)
	}
}

// A registration carries at most maxTopics topic entries, and inflates to
// at most registerBytesPerTopic per allowed topic: a frame cannot become
// millions of table entries.
func TestRegisterTopicCountBounded(t *testing.T) {
	lines := func(count int32, n int, line string) []byte {
		return compressedBody(t, func(w *bytes.Buffer) {
			putChunk(w, `{"timestamp":1,"counter":1}`)
			binary.Write(w, binary.BigEndian, count)
			for i := range n {
				putChunk(w, line+strconv.Itoa(i)+" 4 4 6 SINGLE_TAG")
			}
		})
	}
	if b, err := DecodeRegisterBrokerBodyLimit(lines(100, 100, "T"), true, 100); err != nil ||
		len(b.TopicConfigSerializeWrapper.TopicConfigTable) != 100 {
		t.Fatalf("100 topics, limit 100: %v", err)
	}
	if _, err := DecodeRegisterBrokerBodyLimit(lines(101, 101, "T"), true, 100); err == nil ||
		!strings.Contains(err.Error(), "limit 100") {
		t.Fatalf("101 topics, limit 100: %v", err)
	}
	// Within the count, but lines far longer than a topic line may be.
	long := strings.Repeat("x", 4<<10)
	if _, err := DecodeRegisterBrokerBodyLimit(lines(1000, 1000, long), true, 1000); err != errRegisterTooLarge {
		t.Fatalf("1000 lines of 4 KiB, limit 1000 topics: %v", err)
	}
	// The JSON form.
	var js strings.Builder
	js.WriteString(`{"topicConfigSerializeWrapper":{"topicConfigTable":{`)
	for i := range 101 {
		if i > 0 {
			js.WriteString(",")
		}
		js.WriteString(`"T` + strconv.Itoa(i) + `":{}`)
	}
	js.WriteString(`}},"filterServerList":[]}`)
	if _, err := DecodeRegisterBrokerBodyLimit([]byte(js.String()), false, 100); err == nil {
		t.Fatal("JSON body with 101 topics, limit 100: accepted")
	}
	if _, err := DecodeRegisterBrokerBodyLimit([]byte(js.String()), false, 101); err != nil {
		t.Fatalf("JSON body with 101 topics, limit 101: %v", err)
	}
}

// An uncompressed body with more topic entries than the limit is refused
// before it is decoded: its entries are counted without allocating, so a
// 16 MiB frame of tiny entries never becomes millions of map entries. The
// keys are matched as encoding/json matches them (any case, Unicode
// folding, repeated keys merged), so no spelling slips past the count.
func TestRegisterJSONRefusedBeforeDecoding(t *testing.T) {
	body := func(wrapper, table string, n int, extra string) []byte {
		var js bytes.Buffer
		js.WriteString(`{"` + wrapper + `":{"dataVersion":{"timestamp":1,"counter":2},"` + table + `":{`)
		for i := range n {
			if i > 0 {
				js.WriteString(",")
			}
			js.WriteString(`"t` + strconv.Itoa(i) + `":{}`)
		}
		js.WriteString(`}` + extra + `},"filterServerList":[]}`)
		return js.Bytes()
	}
	for _, b := range [][]byte{
		body("topicConfigSerializeWrapper", "topicConfigTable", 200000, ""),
		body("TOPICCONFIGSERIALIZEWRAPPER", "topicconfigtable", 200000, ""),
		body("topicConfigSerializeWrapper", "topicConfigTable", 60, `,"topicConfigTable":{"u1":{},"u2":{},"u3":{},"u4":{},"u5":{}}`),
	} {
		limit := 64
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		_, err := DecodeRegisterBrokerBodyLimit(b, false, limit)
		runtime.ReadMemStats(&ms1)
		if err == nil || !strings.Contains(err.Error(), "limit 64") {
			t.Fatalf("%.60s…: %v, want refused over the limit", b, err)
		}
		if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 64<<10 {
			t.Errorf("%.60s… (%d bytes): %d bytes allocated before the refusal", b, len(b), alloc)
		}
	}
	// Spellings encoding/json may or may not match (Unicode folding: ſ, K):
	// the count matches at least what the decoder does, so more than the
	// limit is never decoded.
	for _, b := range [][]byte{body("topicConfigSerializeWrapper", "topicConfigTa\u017fle", 100, ""),
		body("topicConfigSerializeWrapper", "topicConfigTaſle", 100, ""),
		body("topiKConfigSerializeWrapper", "topicConfigTable", 100, "")} {
		if r, err := DecodeRegisterBrokerBodyLimit(b, false, 64); err == nil && len(r.TopicConfigSerializeWrapper.TopicConfigTable) > 64 {
			t.Fatalf("%.60s…: %d topics decoded, limit 64", b, len(r.TopicConfigSerializeWrapper.TopicConfigTable))
		}
	}
	// Within the limit, every spelling decodes as before.
	for _, b := range [][]byte{body("TopicConfigSerializeWrapper", "TOPICCONFIGTABLE", 64, ""),
		body("topicConfigSerializeWrapper", "topicConfigTable", 30, `,"topicConfigTable":{"u1":{}}`)} {
		r, err := DecodeRegisterBrokerBodyLimit(b, false, 64)
		if err != nil || len(r.TopicConfigSerializeWrapper.TopicConfigTable) == 0 {
			t.Fatalf("%.60s…: %v", b, err)
		}
	}
}
