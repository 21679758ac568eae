package protocol

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// ErrMissingField and ErrInvalidField classify typed-header decode errors.
var (
	ErrMissingField = errors.New("missing required header field")
	ErrInvalidField = errors.New("invalid header field")
)

// FieldError is returned by every typed header's Decode. Java answers such
// requests with SYSTEM_ERROR and the error text as remark (Java's NettyRemotingAbstract).
type FieldError struct {
	Field string // ext key, e.g. "queueId"
	Value string // offending value (empty when missing)
	Kind  error  // ErrMissingField or ErrInvalidField
}

func (e *FieldError) Error() string {
	if e.Kind == ErrMissingField {
		return "protocol: missing required header field " + strconv.Quote(e.Field)
	}
	return "protocol: header field " + strconv.Quote(e.Field) + ": invalid value " + strconv.Quote(e.Value)
}

// Unwrap returns Kind.
func (e *FieldError) Unwrap() error { return e.Kind }

// extReader decodes ext fields, remembering the first error so a Decode
// method reads as a flat list of fields.
type extReader struct {
	m   map[string]string
	err error
}

func (r *extReader) fail(field, value string, kind error) {
	if r.err == nil {
		r.err = &FieldError{Field: field, Value: value, Kind: kind}
	}
}

func (r *extReader) lookup(key string, required bool) (string, bool) {
	v, ok := r.m[key]
	if !ok && required {
		r.fail(key, "", ErrMissingField)
	}
	return v, ok
}

// str returns the field (Java @CFNotNull only rejects absence, not "").
func (r *extReader) str(key string, required bool) string {
	v, _ := r.lookup(key, required)
	return v
}

func (r *extReader) integer(key string, required bool, lo, hi int64) (int64, bool) {
	v, ok := r.lookup(key, required)
	if !ok {
		return 0, false
	}
	n, valid := parseInt([]byte(v), lo, hi)
	if !valid {
		r.fail(key, v, ErrInvalidField)
		return 0, false
	}
	return n, true
}

func (r *extReader) i32(key string, required bool) int32 {
	n, _ := r.integer(key, required, math.MinInt32, math.MaxInt32)
	return int32(n)
}

// i32opt also reports whether the field was present and valid.
func (r *extReader) i32opt(key string) (int32, bool) {
	n, ok := r.integer(key, false, math.MinInt32, math.MaxInt32)
	return int32(n), ok
}

func (r *extReader) i64(key string, required bool) int64 {
	n, _ := r.integer(key, required, math.MinInt64, math.MaxInt64)
	return n
}

// boolean follows Java Boolean.parseBoolean: "true" in any case is true,
// anything else false; it never fails on a present value.
func (r *extReader) boolean(key string, required bool) bool {
	v, _ := r.lookup(key, required)
	return strings.EqualFold(v, "true")
}

// extWriter builds the ext map for Encode methods.
type extWriter map[string]string

func newExt(n int) extWriter { return newExtMap(n) }

func (w extWriter) str(k, v string) { w[k] = v }

// optStr writes v only when it is not empty (Java omits null fields).
func (w extWriter) optStr(k, v string) {
	if v != "" {
		w[k] = v
	}
}

func (w extWriter) i32(k string, v int32)    { w[k] = strconv.FormatInt(int64(v), 10) }
func (w extWriter) i64(k string, v int64)    { w[k] = strconv.FormatInt(v, 10) }
func (w extWriter) boolean(k string, v bool) { w[k] = strconv.FormatBool(v) }
