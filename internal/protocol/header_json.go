package protocol

import (
	"errors"
	"math"
	"slices"
	"strconv"
)

// appendJSONHeader writes the compact JSON header, always in the key order
// the Go client uses: code, language, version, opaque, flag, remark,
// extFields. extFields values are always JSON strings (the Go client drops
// responses whose values are not) and keys are sorted for determinism.
func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	dst = appendJSONString(dst, c.Language)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	dst = append(dst, `,"remark":`...)
	dst = appendJSONString(dst, c.Remark)
	dst = append(dst, `,"extFields":`...)
	if c.typedResult && c.ExtFields == nil {
		dst = appendSendResultJSON(dst, &c.result)
	} else {
		dst = appendStringMap(dst, c.Fields())
	}
	return append(dst, '}')
}

// appendStringMap writes m as a JSON object with sorted keys; nil → {}.
func appendStringMap(dst []byte, m map[string]string) []byte {
	dst = append(dst, '{')
	var stack [16]string
	keys := sortedKeys(m, stack[:0])
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k])
	}
	return append(dst, '}')
}

func sortedKeys(m map[string]string, buf []string) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}

// decodeJSONHeader parses a JSON header tolerantly: absent or null remark
// and extFields are fine, unknown keys (e.g. serializeTypeCurrentRPC) are
// skipped, numbers may also arrive as quoted strings, language may be a
// name or a numeric code, and non-string extFields values are kept as
// their literal text (null values are dropped).
// typedSend lets a send request's extFields be typed (send_json.go).
func decodeJSONHeader(b []byte, typedSend bool) (*Command, error) {
	s := jsonScanner{b: b}
	c := newCommand()
	if err := s.expect('{'); err != nil {
		return nil, err
	}
	if !s.consume('}') {
		if err := decodeHeaderMembers(&s, c, typedSend); err != nil {
			return nil, err
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, s.errAt("trailing data after header")
	}
	if err := untypeIfNotSend(b, c); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeHeaderMembers(s *jsonScanner, c *Command, typedSend bool) error {
	for {
		s.ws()
		key, err := s.memberKey()
		if err != nil {
			return err
		}
		s.ws()
		if err := decodeHeaderMember(s, c, key, typedSend); err != nil {
			return errors.New(strconv.Quote(string(key)) + ": " + err.Error())
		}
		if s.consume('}') {
			return nil
		}
		if err := s.expect(','); err != nil {
			return err
		}
	}
}

func decodeHeaderMember(s *jsonScanner, c *Command, key []byte, typedSend bool) error {
	var err error
	switch string(key) {
	case "code":
		c.Code, err = jsonInt16(s)
	case "language":
		c.Language, err = jsonLanguage(s)
	case "version":
		c.Version, err = jsonInt16(s)
	case "opaque":
		c.Opaque, err = jsonInt32(s)
	case "flag":
		c.Flag, err = jsonInt32(s)
	case "remark":
		c.Remark, err = jsonNullableString(s)
	case "extFields":
		err = decodeExtFields(s, c, typedSend)
	default:
		err = s.skip(0)
	}
	return err
}

// jsonIntText returns the text of a number, or of a quoted number.
func jsonIntText(s *jsonScanner) ([]byte, error) {
	if s.peek() == '"' {
		return s.rawString()
	}
	return s.number()
}

func jsonInt(s *jsonScanner, lo, hi int64) (int64, error) {
	if n, end, ok := s.shortUint(); ok && n >= lo && n <= hi {
		s.i = end
		return n, nil
	}
	t, err := jsonIntText(s)
	if err != nil {
		return 0, err
	}
	v, ok := parseInt(t, lo, hi)
	if !ok {
		return 0, errors.New("not an integer in range: " + strconv.Quote(string(t)))
	}
	return v, nil
}

func jsonInt16(s *jsonScanner) (int16, error) {
	v, err := jsonInt(s, math.MinInt16, math.MaxInt16)
	return int16(v), err
}

func jsonInt32(s *jsonScanner) (int32, error) {
	v, err := jsonInt(s, math.MinInt32, math.MaxInt32)
	return int32(v), err
}

func jsonLanguage(s *jsonScanner) (string, error) {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		v, err := jsonInt(s, 0, math.MaxUint8)
		return LanguageName(byte(v)), err
	}
	_, err := jsonNullableString(s)
	return "", err
}

func jsonNullableString(s *jsonScanner) (string, error) {
	if s.peek() == '"' {
		return s.str()
	}
	lit, err := s.literal()
	if err != nil {
		return "", err
	}
	if string(lit) != "null" {
		return "", errors.New("expected string or null")
	}
	return "", nil
}

// jsonStringMap reads an object of string → string (or null → nil map).
func jsonStringMap(s *jsonScanner) (map[string]string, error) {
	if s.peek() != '{' {
		_, err := jsonNullableString(s)
		if err != nil {
			return nil, errors.New("expected object or null")
		}
		return nil, nil
	}
	s.i++
	if s.consume('}') {
		return nil, nil
	}
	var m map[string]string
	for {
		s.ws()
		kb, err := s.rawString()
		if err != nil {
			return nil, err
		}
		k := internKey(kb)
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		s.ws()
		v, present, err := jsonScalarText(s)
		if err != nil {
			return nil, err
		}
		if present {
			if m == nil {
				m = newExtMap(16)
			}
			m[k] = v
		}
		if s.consume('}') {
			return m, nil
		}
		if err := s.expect(','); err != nil {
			return nil, err
		}
	}
}

// jsonScalarText reads a string, number or boolean as text; null reports
// present=false; objects and arrays are errors.
func jsonScalarText(s *jsonScanner) (v string, present bool, err error) {
	switch c := s.peek(); {
	case c == '"':
		v, err = s.str()
		return v, err == nil, err
	case c == '-' || (c >= '0' && c <= '9'):
		t, err := s.number()
		return string(t), err == nil, err
	case c == '{' || c == '[':
		return "", false, s.errAt("extFields value must be a scalar")
	}
	lit, err := s.literal()
	if err != nil || string(lit) == "null" {
		return "", false, err
	}
	return string(lit), true, nil
}

// knownKeys interns the ext keys of the typed headers so decoding a header
// does not allocate a string per key.
var knownKeys = func() map[string]string {
	m := map[string]string{}
	add := func(ext map[string]string) {
		for k := range ext {
			m[k] = k
		}
	}
	full := SendMessageRequestHeader{HasMaxReconsumeTimes: true, Properties: "p", BrokerName: "b"}
	add(full.Encode())
	add(full.EncodeV2())
	add((&SendMessageResponseHeader{TransactionID: "t", MsgRegion: "r"}).Encode())
	add((&PullMessageRequestHeader{Subscription: "s", ExpressionType: "e"}).Encode())
	add((&PullMessageResponseHeader{}).Encode())
	add((&UpdateConsumerOffsetRequestHeader{}).Encode())
	add((&SearchOffsetRequestHeader{}).Encode())
	add((&OffsetResponseHeader{}).Encode())
	add((&EndTransactionRequestHeader{TransactionID: "t"}).Encode())
	add((&ConsumerSendMsgBackRequestHeader{OriginMsgID: "o", OriginTopic: "t", HasMaxReconsumeTimes: true}).Encode())
	add((&QueryMessageRequestHeader{UniqueKeyQuery: true}).Encode())
	return m
}()

func internKey(b []byte) string {
	if k, ok := knownKeys[string(b)]; ok {
		return k
	}
	return string(b)
}
