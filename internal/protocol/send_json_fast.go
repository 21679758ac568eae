package protocol

import "math"

// The compact send header (issue 14: CPU per message). Real clients write
// a send request's extFields without whitespace, with plain keys, plain
// string values except for the properties, digits for the numbers and
// "true"/"false" for the flags (testdata/send_request_go.frame,
// testdata/java_send_v2_request.frame). fastSendExt reads exactly that
// form in one pass over local indices; on anything else it reports false
// and decodeExtFields runs decodeSendExt, which reads every form the
// typed header allows. Whatever fastSendExt accepts, decodeSendExt would
// have decoded to the same header (FuzzFastSendExt compares the two;
// FuzzTypedSendHeader compares the typed decode with the map's). The
// scanner-based reader spent most of its time in small
// calls that re-read the scanner's state; with this reader and the
// compact shortcuts of the outer members (memberKey, shortUint) the
// golden frames' decode went from 910-1,070 ns to 515-720 ns
// (BenchmarkDecodeSendGolden, same sitting).

// fastSendExt reads the extFields object that starts at b[i] into h and
// returns the index just past it. ok is false, with h and *props in any
// state, when the object is not in the compact form or not a typed send
// header at all.
func fastSendExt(b []byte, i int, h *SendMessageRequestHeader, props **propsBuf) (end int, v2, ok bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false, false
	}
	i++
	var seen uint32
	var long, short bool
	for {
		f, isV2, next, ok := fastSendKey(b, i)
		if !ok {
			return 0, false, false
		}
		if i, ok = h.setFast(f, b, next, props); !ok || i >= len(b) {
			return 0, false, false
		}
		seen |= 1 << f
		long, short = long || !isV2, short || isV2
		switch b[i] {
		case ',':
			i++
			continue
		case '}':
		default:
			return 0, false, false
		}
		break
	}
	if long == short || seen&sendRequired != sendRequired {
		return 0, false, false
	}
	h.HasMaxReconsumeTimes = seen&(1<<sfMaxReconsume) != 0
	return i + 1, short, true
}

// fastSendKey reads `"key":"` at b[i]: the field the key names and the
// index of its string value's first byte. A V2 key is one letter; a V1
// key is compared whole with the names that start with its letter.
func fastSendKey(b []byte, i int) (f int, v2 bool, next int, ok bool) {
	if i+4 >= len(b) || b[i] != '"' {
		return 0, false, 0, false
	}
	c := b[i+1]
	if b[i+2] == '"' {
		if b[i+3] != ':' || b[i+4] != '"' || c < 'a' || c >= 'a'+sfCount {
			return 0, false, 0, false
		}
		return int(c - 'a'), true, i + 5, true
	}
	if c < 'a' || c > 'z' {
		return 0, false, 0, false
	}
	for _, k := range sendKeysByLetter[c-'a'] {
		if len(b)-i-1 >= len(k.text) && string(b[i+1:i+1+len(k.text)]) == k.text {
			return k.field, false, i + 1 + len(k.text), true
		}
	}
	return 0, false, 0, false
}

// sendKeysByLetter lists the V1 send-header keys (sendKeys, in field
// order) by their first letter, each followed by `":"` as the compact form
// writes it.
var sendKeysByLetter = func() (t [26][]struct {
	text  string
	field int
}) {
	k := &sendKeys
	for f, names := range [sfCount][2]string{k.group, k.topic, k.defTopic, k.defNums, k.queue,
		k.sysFlag, k.born, k.flag, k.props, k.reconsume, k.unit, k.maxReconsume, k.batch, k.broker} {
		l := names[0][0] - 'a'
		t[l] = append(t[l], struct {
			text  string
			field int
		}{names[0] + `":"`, f})
	}
	return t
}()

// setFast reads field f's value, whose text starts at b[i] (just past its
// opening quote), and returns the index past its closing quote.
func (h *SendMessageRequestHeader) setFast(f int, b []byte, i int, props **propsBuf) (int, bool) {
	switch f {
	case sfProps:
		return h.setFastProps(b, i, props)
	case sfGroup, sfTopic, sfDefTopic, sfBroker:
		j := plainRun(b, i)
		if j >= len(b) || b[j] != '"' {
			return 0, false
		}
		*h.strField(f) = internValue(b[i:j])
		return j + 1, true
	case sfUnit, sfBatch:
		return h.setFastBool(f, b, i)
	}
	n, j, ok := quotedDigits(b, i)
	if !ok {
		return 0, false
	}
	if f == sfBorn {
		h.BornTimestamp = int64(n)
		return j, true
	}
	if n > math.MaxInt32 {
		return 0, false
	}
	*h.i32Field(f) = int32(n)
	return j, true
}

// setFastBool takes "true" and "false" as they are; other spellings that
// Java's Boolean.parseBoolean reads are left to setJSON.
func (h *SendMessageRequestHeader) setFastBool(f int, b []byte, i int) (int, bool) {
	var v bool
	switch {
	case len(b)-i >= 6 && string(b[i:i+6]) == `false"`:
		i += 6
	case len(b)-i >= 5 && string(b[i:i+5]) == `true"`:
		v, i = true, i+5
	default:
		return 0, false
	}
	if f == sfUnit {
		h.UnitMode = v
	} else {
		h.Batch = v
	}
	return i, true
}

// quotedDigits reads 1 to 18 decimal digits and the closing quote;
// anything else is left to setJSON.
func quotedDigits(b []byte, i int) (n uint64, end int, ok bool) {
	n, j := leadingDigits(b, i)
	if j == i || j >= len(b) || b[j] != '"' {
		return 0, 0, false
	}
	return n, j + 1, true
}

// setFastProps unescapes the properties into *props, as setJSON does.
func (h *SendMessageRequestHeader) setFastProps(b []byte, i int, props **propsBuf) (int, bool) {
	j := plainRun(b, i)
	if j >= len(b) {
		return 0, false
	}
	out := append(propsBuffer(props), b[i:j]...)
	if b[j] != '"' {
		s := jsonScanner{b: b, i: j}
		var err error
		if out, err = s.slowStringInto(out); err != nil {
			return 0, false
		}
		j = s.i - 1
	}
	h.aliasProps(*props, out)
	return j + 1, true
}
