package protocol

import (
	"hash/maphash"
	"sync/atomic"
)

// Header values that repeat from request to request (producer group,
// topic, default topic, "false", queue numbers) are interned so decoding a
// send header does not allocate a string per field (issue 14: 0 allocations
// per request on the send path). The table is fixed: a value replaces
// whatever held its slot, so a peer sending ever-new values costs only the
// allocation it would have cost anyway, never memory.
const (
	internSlots  = 1 << 12 // power of two
	internMaxLen = 96      // longer values are not worth a slot
	// internMaxDigits: all-digit values longer than this (timestamps,
	// offsets) are new every request; interning them would only add
	// the slot's allocation to the string's.
	internMaxDigits = 6
)

var (
	internSeed  = maphash.MakeSeed()
	internTable [internSlots]atomic.Pointer[string]
)

// internValue returns b as a string, shared with earlier calls that saw
// the same bytes while their slot still holds them.
func internValue(b []byte) string {
	if len(b) <= 1 || len(b) > internMaxLen || (len(b) > internMaxDigits && allDigits(b)) {
		return string(b) // 0 and 1 byte strings never allocate
	}
	slot := &internTable[maphash.Bytes(internSeed, b)&(internSlots-1)]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
