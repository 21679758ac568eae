package protocol

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file holds the small JSON toolkit used by the header codec and the
// body writers: a string appender with correct escaping, and a tolerant
// scanner over a byte slice (no reflection, no intermediate tree).

const hexDigits = "0123456789abcdef"

// maxJSONDepth bounds nesting while skipping unknown values.
const maxJSONDepth = 64

// appendJSONString appends s as a JSON string literal. Control characters,
// '"' and '\' are escaped; invalid UTF-8 bytes become U+FFFD, so the output
// is always valid JSON that decodes to a valid UTF-8 string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedASCII(dst, b)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendEscapedASCII(dst []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(dst, '\\', b)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
}

var errJSONEnd = errors.New("unexpected end of JSON")

// jsonScanner walks a JSON text. Methods skip no leading whitespace unless
// they say so; callers call ws() between tokens.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) errAt(what string) error {
	if s.i >= len(s.b) {
		return errJSONEnd
	}
	return errors.New(what + " at offset " + strconv.Itoa(s.i))
}

func (s *jsonScanner) ws() {
	// Every whitespace byte is at most ' ': one comparison passes the
	// usual case, a token right here (clients write compact JSON).
	for s.i < len(s.b) && s.b[s.i] <= ' ' {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// consume skips whitespace and eats c if it is next.
func (s *jsonScanner) consume(c byte) bool {
	s.ws()
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScanner) expect(c byte) error {
	if !s.consume(c) {
		return s.errAt("expected '" + string(c) + "'")
	}
	return nil
}

// rawString reads a string literal. When it holds no escapes and only
// printable ASCII/valid UTF-8 it returns a sub-slice of the input (no
// allocation); otherwise the unescaped bytes in a new slice.
func (s *jsonScanner) rawString() ([]byte, error) {
	b, _, err := s.rawStringFresh()
	return b, err
}

// memberKey reads an object member's key and the colon after it. A plain
// key with the colon right after it, as compact JSON has it, takes one
// pass.
func (s *jsonScanner) memberKey() ([]byte, error) {
	if i := s.i; i < len(s.b) && s.b[i] == '"' {
		if j := plainRun(s.b, i+1); j+1 < len(s.b) && s.b[j] == '"' && s.b[j+1] == ':' {
			s.i = j + 2
			return s.b[i+1 : j], nil
		}
	}
	key, err := s.rawString()
	if err != nil {
		return nil, err
	}
	return key, s.expect(':')
}

// shortUint reads 1 to 18 digits followed by ',' or '}' (a compact
// object's next member or its end) and returns the index past them.
func (s *jsonScanner) shortUint() (n int64, end int, ok bool) {
	u, j := leadingDigits(s.b, s.i)
	if j == s.i || j >= len(s.b) || (s.b[j] != ',' && s.b[j] != '}') {
		return 0, 0, false
	}
	return int64(u), j, true
}

// leadingDigits reads up to 18 decimal digits from b[i] (18 never
// overflow an int64) and returns their value and the index after them.
func leadingDigits(b []byte, i int) (n uint64, j int) {
	for j = i; j < len(b) && j-i < 18; j++ {
		d := b[j] - '0'
		if d > 9 {
			break
		}
		n = n*10 + uint64(d)
	}
	return n, j
}

// rawStringFresh is rawString that also reports whether the bytes are a
// new slice (escapes decoded) rather than a sub-slice of the input.
func (s *jsonScanner) rawStringFresh() ([]byte, bool, error) {
	start, j, err := s.plainPrefix()
	switch {
	case err != nil:
		return nil, false, err
	case s.b[j] == '"':
		s.i = j + 1
		return s.b[start:j], false, nil
	}
	s.i = start
	b, err := s.slowString()
	return b, err == nil, err
}

// appendString reads a string literal and appends its unescaped bytes to
// dst, allocating only when dst has no room.
func (s *jsonScanner) appendString(dst []byte) ([]byte, error) {
	start, j, err := s.plainPrefix()
	if err != nil {
		return dst, err
	}
	dst = append(dst, s.b[start:j]...)
	if s.b[j] == '"' {
		s.i = j + 1
		return dst, nil
	}
	s.i = j
	return s.slowStringInto(dst)
}

// plainPrefix checks that a string literal starts at s.i and finds where
// its plain prefix ends: s.b[j] is the closing quote, or the first byte
// that needs decoding (an escape, a control byte, non-ASCII). The literal's
// text starts at start. At the end of the input it sets s.i there and
// returns errJSONEnd.
func (s *jsonScanner) plainPrefix() (start, j int, err error) {
	if s.peek() != '"' {
		return 0, 0, s.errAt("expected string")
	}
	start = s.i + 1
	if j = plainRun(s.b, start); j < len(s.b) {
		return start, j, nil
	}
	s.i = len(s.b)
	return 0, 0, errJSONEnd
}

// Word-at-a-time masks (plainRun).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainRun returns the index of the first byte at or after j that ends a
// run of plain string bytes: '"', '\\', a control character or a non-ASCII
// byte (len(b) when there is none). It tests eight bytes at a time (the
// scan was a quarter of a send header's decode). For an ASCII byte x of a
// word w and no borrow from the byte below, x-c has its high bit set
// exactly when x < c (c <= 0x80), so (w - c*ones) &^ w & highs flags the
// bytes below c; a byte equal to c is a zero byte of w ^ c*ones, flagged
// the same way with c = 1; the high bits of w flag non-ASCII bytes. A
// borrow starts only at a flagged byte, so the lowest flag is exact (flags
// above it may be spurious and are never looked at).
func plainRun(b []byte, j int) int {
	for ; j+8 <= len(b); j += 8 {
		w := binary.LittleEndian.Uint64(b[j:])
		q, bs := w^('"'*ones), w^('\\'*ones)
		if m := ((w-0x20*ones)&^w | (q-ones)&^q | (bs-ones)&^bs | w) & highs; m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
	}
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return j
		}
	}
	return len(b)
}

// str reads a string literal as a Go string: repeated short values are
// interned (intern.go), and a string with escapes takes over the slice it
// was decoded into instead of copying it again.
func (s *jsonScanner) str() (string, error) {
	b, fresh, err := s.rawStringFresh()
	if err != nil {
		return "", err
	}
	if fresh && len(b) > internMaxLen {
		// b is referenced by nothing else and never written again.
		return unsafe.String(unsafe.SliceData(b), len(b)), nil
	}
	return internValue(b), nil
}

// slowString decodes from s.i (just after the opening quote) handling
// escapes and UTF-8 validation. The output is sized once: it is never
// longer than the literal's remaining text, except where an invalid UTF-8
// byte (1 byte) becomes U+FFFD (3 bytes).
func (s *jsonScanner) slowString() ([]byte, error) {
	return s.slowStringInto(make([]byte, 0, s.literalLen()))
}

// slowStringInto is slowString appending to out.
func (s *jsonScanner) slowStringInto(out []byte) ([]byte, error) {
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil
		case c == '\\':
			var err error
			if out, err = s.escape(out); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, s.errAt("control character in string")
		case c < utf8.RuneSelf:
			k := plainRun(s.b, s.i+1)
			out = append(out, s.b[s.i:k]...)
			s.i = k
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s.b[s.i:s.i+size]...)
			}
			s.i += size
		}
	}
	return nil, errJSONEnd
}

// literalLen is the number of bytes from s.i to the closing quote of the
// string literal (or to the end of the input), skipping escaped quotes.
func (s *jsonScanner) literalLen() int {
	for j := s.i; j < len(s.b); j++ {
		switch s.b[j] {
		case '"':
			return j - s.i
		case '\\':
			j++
		}
	}
	return len(s.b) - s.i
}

// escape decodes one backslash escape at s.i.
func (s *jsonScanner) escape(out []byte) ([]byte, error) {
	if s.i+1 >= len(s.b) {
		return nil, errJSONEnd
	}
	c := s.b[s.i+1]
	s.i += 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		return s.unicodeEscape(out)
	}
	s.i -= 2
	return nil, s.errAt("bad escape")
}

// unicodeEscape handles \uXXXX (s.i just past "\u"), joining surrogate
// pairs; a lone surrogate becomes U+FFFD, as encoding/json does.
func (s *jsonScanner) unicodeEscape(out []byte) ([]byte, error) {
	r, ok := s.hex4(s.i)
	if !ok {
		return nil, s.errAt("bad \\u escape")
	}
	s.i += 4
	if utf16.IsSurrogate(r) {
		if s.i+6 <= len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
			if r2, ok := s.hex4(s.i + 2); ok {
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					s.i += 6
					return utf8.AppendRune(out, dec), nil
				}
			}
		}
		r = utf8.RuneError
	}
	return utf8.AppendRune(out, r), nil
}

func (s *jsonScanner) hex4(at int) (rune, bool) {
	if at+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a JSON number literal and returns its text.
func (s *jsonScanner) number() ([]byte, error) {
	start := s.i
	if s.peek() == '-' {
		s.i++
	}
	if !s.digits() {
		return nil, s.errAt("bad number")
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return nil, s.errAt("bad number")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return nil, s.errAt("bad number")
		}
	}
	return s.b[start:s.i], nil
}

func (s *jsonScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// literal eats one of true, false, null.
func (s *jsonScanner) literal() ([]byte, error) {
	for _, w := range [...]string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
			s.i += len(w)
			return s.b[s.i-len(w) : s.i], nil
		}
	}
	return nil, s.errAt("bad literal")
}

// skip skips one value of any type (after leading whitespace).
func (s *jsonScanner) skip(depth int) error {
	if depth > maxJSONDepth {
		return s.errAt("nesting too deep")
	}
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		_, err := s.rawString()
		return err
	case c == '{':
		return s.skipContainer('}', true, depth)
	case c == '[':
		return s.skipContainer(']', false, depth)
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := s.number()
		return err
	default:
		_, err := s.literal()
		return err
	}
}

func (s *jsonScanner) skipContainer(end byte, object bool, depth int) error {
	s.i++
	if s.consume(end) {
		return nil
	}
	for {
		if object {
			// Keys may be any value: fastjson writes objects and bare
			// numbers as map keys (Java's TopicRouteData and ResetOffsetBody/ConsumeStats (fastjson MessageQueue keys)).
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
		}
		if err := s.skip(depth + 1); err != nil {
			return err
		}
		if s.consume(end) {
			return nil
		}
		if err := s.expect(','); err != nil {
			return err
		}
	}
}

// parseInt parses a decimal integer in [lo, hi] without allocating.
func parseInt(b []byte, lo, hi int64) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg || b[0] == '+' {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<63)/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > 1<<63 {
			return 0, false
		}
	}
	var x int64
	if neg {
		x = -int64(v) // v == 1<<63 wraps to MinInt64, which is correct
	} else {
		if v > 1<<63-1 {
			return 0, false
		}
		x = int64(v)
	}
	return x, x >= lo && x <= hi
}
