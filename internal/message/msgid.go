package message

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
)

// OffsetMsgID renders the broker-generated message id: store IP, store port
// (int32) and commit-log offset (int64) in upper-case hex; 32 characters for
// IPv4 (the only form the Go client parses), 56 for IPv6 (Java's MessageDecoder.createMessageId).
func OffsetMsgID(store netip.AddrPort, physOffset int64) string {
	var out [MaxOffsetMsgIDLen]byte
	return string(AppendOffsetMsgID(out[:0], store, physOffset)) // one allocation per id
}

// MaxOffsetMsgIDLen is the length of the longest offset message id (IPv6).
const MaxOffsetMsgIDLen = 56

// AppendOffsetMsgID appends OffsetMsgID's text to dst (no allocation when
// dst has room: the send response, issue 14).
func AppendOffsetMsgID(dst []byte, store netip.AddrPort, physOffset int64) []byte {
	var b [28]byte
	n := putHost(b[:], store)
	binary.BigEndian.PutUint64(b[n:], uint64(physOffset))
	const upperHex = "0123456789ABCDEF"
	for _, c := range b[:n+8] {
		dst = append(dst, upperHex[c>>4], upperHex[c&0xF])
	}
	return dst
}

// ParseOffsetMsgID is the inverse of OffsetMsgID.
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	if len(id) != 32 && len(id) != 56 {
		return netip.AddrPort{}, 0, fmt.Errorf("message id %q: want 32 or 56 hex characters", id)
	}
	b, err := hex.DecodeString(id)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("message id %q: %w", id, err)
	}
	host := hostOf(b[:len(b)-8])
	return host, int64(binary.BigEndian.Uint64(b[len(b)-8:])), nil
}
