package protocol

import (
	"encoding/json"
	"strconv"
)

// DecodeJSON unmarshals a body written by Java (fastjson) or Go peers into
// v with encoding/json. fastjson writes integer map keys unquoted
// ({0:"a:1"}, Java's TopicRouteData); those keys are quoted first.
func DecodeJSON(body []byte, v any) error {
	return json.Unmarshal(QuoteIntegerKeys(body), v)
}

// QuoteIntegerKeys rewrites object keys written as bare numbers into quoted
// strings, leaving everything else untouched. It returns b itself when no
// such key exists. Malformed input is passed through for the JSON decoder
// to reject.
func QuoteIntegerKeys(b []byte) []byte {
	var (
		out       []byte // nil until the first rewrite
		copied    int    // b[:copied] is already in out
		stack     []bool // true = object
		expectKey bool
	)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			i = skipStringEnd(b, i)
			expectKey = false
		case '{':
			stack = append(stack, true)
			expectKey = true
		case '[':
			stack = append(stack, false)
			expectKey = false
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1]
		case ':':
			expectKey = false
		case ' ', '\t', '\n', '\r':
		default:
			if expectKey && (c == '-' || (c >= '0' && c <= '9')) {
				end := i + 1
				for end < len(b) && b[end] >= '0' && b[end] <= '9' {
					end++
				}
				out = append(out, b[copied:i]...)
				out = append(out, '"')
				out = append(out, b[i:end]...)
				out = append(out, '"')
				copied = end
				i = end - 1
			}
			expectKey = false
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[copied:]...)
}

// skipStringEnd returns the index of the closing quote of the string
// starting at b[i] (or len(b)-1 when unterminated).
func skipStringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(b) - 1
}

// appendKey appends `"k":` (k must not need escaping beyond JSON rules).
func appendKey(dst []byte, k string) []byte {
	dst = appendJSONString(dst, k)
	return append(dst, ':')
}

func appendIntField(dst []byte, k string, v int64) []byte {
	return strconv.AppendInt(appendKey(dst, k), v, 10)
}

func appendStrField(dst []byte, k, v string) []byte {
	return appendJSONString(appendKey(dst, k), v)
}
