package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"unsafe"
)

// TestTypedSendGoldenFrames: the send frames real clients sent (Go
// v2.1.2 SEND_MESSAGE and SEND_BATCH_MESSAGE, Java 4.9.7 SEND_MESSAGE_V2
// and SEND_REPLY_MESSAGE_V2) are typed by DecodeRequestFrame, to exactly
// the header the map decodes to.
func TestTypedSendGoldenFrames(t *testing.T) {
	for _, name := range []string{"send_request_go.frame", "send_batch_request_go.frame",
		"java_send_v2_request.frame", "java_send_reply_v2_request.frame"} {
		t.Run(name, func(t *testing.T) {
			frame, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			typed, err := DecodeRequestFrame(frame[4:])
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := typed.SendHeader(); !ok || typed.ExtFields != nil {
				t.Fatalf("real client's send header not typed (typed=%v, ext=%v)", ok, typed.ExtFields)
			}
			plain, err := DecodeFrame(frame[4:])
			if err != nil {
				t.Fatal(err)
			}
			sameSendHeader(t, typed, plain)
			// Fields gives the map back in the naming it arrived in.
			if got := typed.Fields(); IsSendV2Header(got) != IsSendV2Header(plain.ExtFields) ||
				got["b"]+got["topic"] != plain.ExtFields["b"]+plain.ExtFields["topic"] {
				t.Fatalf("Fields() = %v, want the naming and topic of %v", got, plain.ExtFields)
			}
		})
	}
}

// TestTypedSendFallsBack: whatever the typed reader cannot take exactly
// decodes to the map, as DecodeFrame does.
func TestTypedSendFallsBack(t *testing.T) {
	const base = `"a":"g","b":"T","c":"TBW102","d":"4","e":"1","f":"0","g":"1700000000000","h":"0"`
	for name, hdr := range map[string]string{
		"access key":              `{"code":310,"extFields":{` + base + `,"AccessKey":"rocketmq2","Signature":"x"}}`,
		"number value":            `{"code":310,"extFields":{"a":"g","b":"T","c":"TBW102","d":4,"e":"1","f":"0","g":"1","h":"0"}}`,
		"null value":              `{"code":310,"extFields":{` + base + `,"i":null}}`,
		"mixed naming":            `{"code":310,"extFields":{` + base + `,"topic":"U"}}`,
		"missing required":        `{"code":310,"extFields":{"a":"g","b":"T"}}`,
		"bad integer":             `{"code":310,"extFields":{"a":"g","b":"T","c":"TBW102","d":"4","e":"x","f":"0","g":"1","h":"0"}}`,
		"response":                `{"code":10,"flag":1,"extFields":{"queueId":"1","topic":"T","producerGroup":"g","defaultTopic":"d","defaultTopicQueueNums":"4","sysFlag":"0","bornTimestamp":"1","flag":"0"}}`,
		"response flag after ext": `{"code":310,"extFields":{` + base + `},"flag":1}`,
		"code changed after ext":  `{"code":310,"extFields":{` + base + `},"code":11}`,
		"not a send code":         `{"code":11,"extFields":{` + base + `}}`,
	} {
		t.Run(name, func(t *testing.T) {
			typed, plain := decodeBoth(t, []byte(hdr))
			if _, ok := typed.SendHeader(); ok {
				t.Fatalf("typed, want the map")
			}
			if !sameCommand(typed, plain) {
				t.Fatalf("differs from DecodeFrame:\n %+v\n %+v", typed, plain)
			}
		})
	}
}

// TestTypedSendEdits: editing a typed command's ext fields starts from
// its canonical map; replacing its header drops the typed one.
func TestTypedSendEdits(t *testing.T) {
	const hdr = `{"code":310,"extFields":{"a":"g","b":"T","c":"TBW102","d":"+4","e":"1","f":"0","g":"1","h":"0"}}`
	typed, _ := decodeBoth(t, []byte(hdr))
	typed.SetExt("x", "y")
	if _, ok := typed.SendHeader(); ok || typed.ExtFields["b"] != "T" || typed.ExtFields["d"] != "4" || typed.Ext("x") != "y" {
		t.Fatalf("SetExt on a typed send: typed=%v ext=%v", ok, typed.ExtFields)
	}
	typed, _ = decodeBoth(t, []byte(hdr))
	typed.SetHeader(nil)
	if _, ok := typed.SendHeader(); ok || typed.Fields() != nil {
		t.Fatalf("SetHeader(nil) kept the typed header: %v", typed.Fields())
	}
}

// TestTypedSendRepeatedExtFields: a repeated extFields member replaces
// the first, typed or not, as a repeated map member does.
func TestTypedSendRepeatedExtFields(t *testing.T) {
	const base = `"a":"g","b":"T","c":"TBW102","d":"4","e":"1","f":"0","g":"1700000000000","h":"0"`
	typed, plain := decodeBoth(t, []byte(`{"code":310,"extFields":{`+base+`},"extFields":{"x":"y"}}`))
	if _, ok := typed.SendHeader(); ok || !maps.Equal(typed.ExtFields, plain.ExtFields) {
		t.Fatalf("second extFields not taken: typed=%v ext=%v", ok, typed.ExtFields)
	}
	typed, _ = decodeBoth(t, []byte(`{"code":310,"extFields":{"x":"y"},"extFields":{`+base+`}}`))
	if h, ok := typed.SendHeader(); !ok || typed.ExtFields != nil || h.Topic != "T" {
		t.Fatalf("second extFields not typed: typed=%v ext=%v", ok, typed.ExtFields)
	}
}

// FuzzTypedSendHeader is differential: for any JSON header,
// DecodeRequestFrame and DecodeFrame accept or refuse alike, a typed send
// header is the one the map decodes to (the same value, or the same
// error), and an untyped command is the same command.
func FuzzTypedSendHeader(f *testing.F) {
	for _, h := range headerSeeds(SerializeJSON) {
		f.Add(h)
	}
	const base = `"a":"g","b":"T","c":"TBW102","d":"4","e":"1","f":"0","g":"1700000000000","h":"0"`
	f.Add([]byte(`{"code":310,"extFields":{` + base + `,"i":"TAGS\u0001t\u0002","l":"16","m":"TRUE","n":"b"}}`))
	f.Add([]byte(`{"code":10,"extFields":{"producerGroup":"g","topic":"T","defaultTopic":"d","defaultTopicQueueNums":"4","queueId":"-1","sysFlag":"0","bornTimestamp":"9223372036854775807","flag":"0","unitMode":"false"}}`))
	f.Add([]byte(`{"code":320,"extFields":{` + base + `},"flag":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		typed, err1 := decodeJSONHeader(data, true)
		plain, err2 := decodeJSONHeader(data, false)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("typed decode error %v, map decode error %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if _, ok := typed.SendHeader(); !ok {
			if !sameCommand(typed, plain) {
				t.Fatalf("untyped command differs:\n %+v\n %+v", typed, plain)
			}
			return
		}
		if typed.ExtFields != nil || typed.IsResponse() || !isSendCode(typed.Code) {
			t.Fatalf("typed a command that is not a send request: %+v", typed)
		}
		sameSendHeader(t, typed, plain)
	})
}

func decodeBoth(t *testing.T, hdr []byte) (typed, plain *Command) {
	t.Helper()
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)))
	frame = append(frame, hdr...)
	typed, err1 := DecodeRequestFrame(frame)
	plain, err2 := DecodeFrame(frame)
	if err1 != nil || err2 != nil {
		t.Fatalf("decode: %v / %v", err1, err2)
	}
	return typed, plain
}

// sameSendHeader: the typed header equals what Decode reads from plain's
// map, error included.
func sameSendHeader(t *testing.T, typed, plain *Command) {
	t.Helper()
	var a, b SendMessageRequestHeader
	errA, errB := a.DecodeRequest(typed), b.Decode(plain.ExtFields)
	if errA != nil {
		t.Fatalf("typed header has an error: %v", errA)
	}
	if errB != nil {
		var fe *FieldError
		if !errors.As(errB, &fe) {
			t.Fatalf("map decode: %v", errB)
		}
		t.Fatalf("typed a header the map refuses: %v", errB)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("typed header differs:\n typed %+v\n map   %+v", a, b)
	}
	if typed.Language != plain.Language || typed.Opaque != plain.Opaque || typed.Code != plain.Code ||
		typed.Version != plain.Version || typed.Flag != plain.Flag || typed.Remark != plain.Remark ||
		typed.SerializeType != plain.SerializeType || !bytes.Equal(typed.Body, plain.Body) {
		t.Fatalf("command fields differ:\n typed %+v\n plain %+v", typed, plain)
	}
	// Fields is the canonical form: the same header once decoded.
	var c SendMessageRequestHeader
	if err := c.Decode(typed.Fields()); err != nil || !reflect.DeepEqual(c, a) {
		t.Fatalf("Fields() %v decodes to %+v (%v), want %+v", typed.Fields(), c, err, a)
	}
}

// TestTypedSendRedecodeAllocatesNothing: a recycled Command keeps its
// properties buffer, so decoding the next typed send into it allocates
// nothing (issue 14), and the Properties it gives alias that buffer.
func TestTypedSendRedecodeAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	hdr := []byte(`{"code":310,"extFields":{"a":"g","b":"T","c":"TBW102","d":"4","e":"1","f":"0","g":"1700000000000","h":"0","i":"TAGS\u0001a\u0002KEYS\u0001k1 k2"}}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(hdr)))
	frame = append(frame, hdr...)
	var mallocs runtime.MemStats
	runtime.ReadMemStats(&mallocs)
	before := mallocs.Mallocs
	allocs := testing.AllocsPerRun(100, func() {
		c, err := DecodeRequestFrame(frame)
		if err != nil {
			t.Fatal(err)
		}
		h, ok := c.SendHeader()
		if !ok || h.Properties != "TAGS\x01a\x02KEYS\x01k1 k2" {
			t.Fatalf("typed %v, properties %q", ok, h.Properties)
		}
		if unsafe.StringData(h.Properties) != unsafe.SliceData(c.props.b) {
			t.Fatal("properties do not alias the command's buffer")
		}
		c.Recycle()
	})
	runtime.ReadMemStats(&mallocs)
	// AllocsPerRun rounds down: count the total too (the first decode may
	// fill the pools; the test's own calls allocate a few).
	if allocs != 0 || mallocs.Mallocs-before > 10 {
		t.Fatalf("%v allocations per decode, %d in all", allocs, mallocs.Mallocs-before)
	}
}

// BenchmarkDecodeSendGolden decodes real clients' send frames on the
// broker's path (DecodeRequestFrame, pooled commands): the JSON header
// was 22% of the broker's CPU at its maximum send rate (issue 14).
func BenchmarkDecodeSendGolden(b *testing.B) {
	for _, name := range []string{"send_request_go.frame", "java_send_v2_request.frame"} {
		frame, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := DecodeRequestFrame(frame[4:])
				if err != nil {
					b.Fatal(err)
				}
				c.Recycle()
			}
		})
	}
}
