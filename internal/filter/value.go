package filter

import (
	"math"
	"strconv"
	"strings"
)

// kind is the Java class of a value.
type kind uint8

const (
	kNull   kind = iota
	kBool        // java.lang.Boolean
	kInt         // java.lang.Integer
	kLong        // java.lang.Long
	kDouble      // java.lang.Double
	kString      // java.lang.String
)

// value is one Java value; i holds Integer and Long, and the bits of a
// Double (see dbl and float); 32 bytes, passed in registers.
type value struct {
	s string
	i int64
	k kind
	b bool
}

func dbl(f float64) value { return value{k: kDouble, i: int64(math.Float64bits(f))} }

func (v value) float() float64 { return math.Float64frombits(uint64(v.i)) }

var (
	vNull  = value{}
	vTrue  = value{k: kBool, b: true}
	vFalse = value{k: kBool}
)

func boolValue(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

func (v value) isNumber() bool { return v.k == kInt || v.k == kLong || v.k == kDouble }

// javaCompare is Java's ComparisonExpression.__compare with string
// conversion on (as the broker's parser always sets it): operands of
// different classes are converted toward the other side (Integer → Long
// → Double; a String parsed as the other side's class with
// Boolean/Integer/Long/Double.valueOf), then compared with compareTo;
// classes it cannot reconcile give -1. ok is false where Java throws (a
// string that does not parse, or a Boolean left side against a String).
// Neither side is NULL.
func javaCompare(l, r value) (c int, ok bool) {
	if l.k == r.k {
		switch l.k {
		case kBool:
			return cmpBool(l.b, r.b), true
		case kInt, kLong:
			return cmpInt(l.i, r.i), true
		case kDouble:
			return javaDoubleCompare(l.float(), r.float()), true
		}
		return strings.Compare(l.s, r.s), true
	}
	switch {
	case l.k == kString:
		if r.k == kBool || r.isNumber() {
			return compareString(l.s, r)
		}
	case r.k == kString:
		if l.isNumber() {
			c, ok = compareString(r.s, l)
			return -c, ok
		}
		if l.k == kBool {
			return 0, false // Java casts the Boolean to String: ClassCastException
		}
	case l.isNumber() && r.isNumber():
		switch {
		case l.k == kDouble:
			return javaDoubleCompare(l.float(), float64(r.i)), true
		case r.k == kDouble:
			return javaDoubleCompare(float64(l.i), r.float()), true
		}
		return cmpInt(l.i, r.i), true // Integer widened to Long
	}
	return -1, true
}

// compareString compares the string s, parsed as c's class, with c.
func compareString(s string, c value) (int, bool) {
	if c.k == kBool {
		return cmpBool(strings.EqualFold(s, "true"), c.b), true
	}
	v, ok := parseNumber(s, c.k)
	if c.k == kDouble {
		return javaDoubleCompare(v.float(), c.float()), ok
	}
	return cmpInt(v.i, c.i), ok
}

// parseNumber is Integer/Long/Double.valueOf(s) for class k.
func parseNumber(s string, k kind) (value, bool) {
	if k == kDouble {
		f, ok := parseJavaDouble(s)
		return dbl(f), ok
	}
	bits := uint(64)
	if k == kInt {
		bits = 32
	}
	n, ok := parseJavaInt(s, bits)
	return value{k: k, i: n}, ok
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// javaDoubleCompare is Double.compare: -0.0 < 0.0, NaN equals NaN and is
// greater than everything else.
func javaDoubleCompare(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	ab, bb := canonicalBits(a), canonicalBits(b)
	switch {
	case ab == bb:
		return 0
	case ab < bb:
		return -1
	}
	return 1
}

func canonicalBits(f float64) int64 {
	if math.IsNaN(f) {
		return 0x7ff8000000000000
	}
	return int64(math.Float64bits(f))
}

// parseJavaInt is Integer.parseInt (bits 32) or Long.parseLong (bits 64)
// in radix 10: an optional sign, then ASCII digits, no blanks. (Java also
// accepts non-ASCII Unicode decimal digits; they are rejected here.)
func parseJavaInt(s string, bits uint) (int64, bool) {
	if s == "" {
		return 0, false
	}
	neg, i := false, 0
	if s[0] == '-' || s[0] == '+' {
		neg, i = s[0] == '-', 1
		if len(s) == 1 {
			return 0, false
		}
	}
	limit := uint64(1)<<(bits-1) - 1
	if neg {
		limit++
	}
	var n uint64
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n-1) - 1, true // handles the minimum without overflow
	}
	return int64(n), true
}

// parseJavaDouble is Double.valueOf(String): surrounding chars <= ' '
// trimmed, an optional sign, then NaN, Infinity, a decimal number with an
// optional exponent or a hexadecimal one with a binary exponent, and an
// optional f/F/d/D suffix.
func parseJavaDouble(s string) (float64, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	if s == "" {
		return 0, false
	}
	sign, body := "", s
	if body[0] == '+' || body[0] == '-' {
		sign, body = body[:1], body[1:]
	}
	switch body {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		if sign == "-" {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	if n := len(body); n > 0 && strings.IndexByte("fFdD", body[n-1]) >= 0 {
		body = body[:n-1]
	}
	var ok bool
	if len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		ok = validHexFloat(body[2:])
	} else {
		ok = validDecimalFloat(body)
	}
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(body, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	if sign == "-" {
		f = -f
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// validDecimalFloat: digits [. digits] [e[+-]digits], one digit at least
// before the exponent.
func validDecimalFloat(s string) bool {
	i, digits := 0, 0
	for i < len(s) && isDigit(s[i]) {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return false
	}
	if i == len(s) {
		return true
	}
	return exponentEnd(s, i) == len(s) && i < len(s)
}

// validHexFloat: hexdigits [. hexdigits] p[+-]digits, one hex digit at
// least (the text after "0x").
func validHexFloat(s string) bool {
	i, digits := 0, 0
	for i < len(s) && isHex(s[i]) {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isHex(s[i]) {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 || i >= len(s) || s[i] != 'p' && s[i] != 'P' {
		return false
	}
	i++
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
