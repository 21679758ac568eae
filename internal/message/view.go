package message

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"
)

// View is a parsed record that aliases the bytes it was parsed from: no
// field is copied. It stays valid as long as those bytes do.
type View struct {
	Raw                       []byte // the whole record
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	PhysOffset                int64
	SysFlag                   int32
	BodyCRC                   uint32
	BornTimestamp             int64
	StoreTimestamp            int64
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	bornHost, storeHost       []byte
	Body                      []byte
	Topic                     []byte
	Properties                []byte
}

// ErrCorrupt marks a record whose fields contradict each other.
var ErrCorrupt = fmt.Errorf("corrupt record")

// Parse parses the record at the start of b. It checks the magic code, that
// every length stays inside TOTALSIZE and that TOTALSIZE equals the length
// the fields add up to. It does not check the body CRC (see CheckBodyCRC).
// It never panics, whatever b holds.
func Parse(b []byte) (View, error) {
	var v View
	if len(b) < 8 {
		return v, fmt.Errorf("%w: %d bytes, shorter than a record header", ErrCorrupt, len(b))
	}
	be := binary.BigEndian
	total := int(int32(be.Uint32(b)))
	if magic := be.Uint32(b[offMagic:]); magic != MagicMessage {
		return v, fmt.Errorf("%w: magic %#x", ErrCorrupt, magic)
	}
	if total < MinRecordSize || total > len(b) {
		return v, fmt.Errorf("%w: total size %d outside [%d,%d]", ErrCorrupt, total, MinRecordSize, len(b))
	}
	r := b[:total]
	v.Raw = r
	v.BodyCRC = be.Uint32(r[offBodyCRC:])
	v.QueueID = int32(be.Uint32(r[offQueueID:]))
	v.Flag = int32(be.Uint32(r[offFlag:]))
	v.QueueOffset = int64(be.Uint64(r[offQueueOffset:]))
	v.PhysOffset = int64(be.Uint64(r[offPhysOffset:]))
	v.SysFlag = int32(be.Uint32(r[offSysFlag:]))
	v.BornTimestamp = int64(be.Uint64(r[offBornTS:]))
	return v, v.parseTail(r)
}

// MinRecordSize is the smallest record: IPv4 hosts, empty body, topic and properties.
const MinRecordSize = 91

func (v *View) parseTail(r []byte) error {
	be := binary.BigEndian
	bl, sl := 8, 8
	if v.SysFlag&FlagBornHostV6 != 0 {
		bl = 20
	}
	if v.SysFlag&FlagStoreHostV6 != 0 {
		sl = 20
	}
	p := offBornHost
	need := p + bl + 8 + sl + 4 + 8 + 4
	if need > len(r) {
		return fmt.Errorf("%w: hosts overrun total size %d", ErrCorrupt, len(r))
	}
	v.bornHost = r[p : p+bl]
	p += bl
	v.StoreTimestamp = int64(be.Uint64(r[p:]))
	p += 8
	v.storeHost = r[p : p+sl]
	p += sl
	v.ReconsumeTimes = int32(be.Uint32(r[p:]))
	v.PreparedTransactionOffset = int64(be.Uint64(r[p+4:]))
	bodyLen := int(int32(be.Uint32(r[p+12:])))
	p += 16
	if bodyLen < 0 || p+bodyLen+1 > len(r) {
		return fmt.Errorf("%w: body length %d overruns total size %d", ErrCorrupt, bodyLen, len(r))
	}
	v.Body = r[p : p+bodyLen]
	p += bodyLen
	topicLen := int(r[p])
	p++
	if p+topicLen+2 > len(r) {
		return fmt.Errorf("%w: topic length %d overruns total size %d", ErrCorrupt, topicLen, len(r))
	}
	v.Topic = r[p : p+topicLen]
	p += topicLen
	propLen := int(be.Uint16(r[p:]))
	p += 2
	if p+propLen != len(r) {
		return fmt.Errorf("%w: fields add up to %d bytes, total size says %d", ErrCorrupt, p+propLen, len(r))
	}
	v.Properties = r[p : p+propLen]
	return nil
}

// CheckBodyCRC reports whether the stored body CRC matches the body.
func (v *View) CheckBodyCRC() bool { return BodyCRC(v.Body) == v.BodyCRC }

// BornHost returns the producer address.
func (v *View) BornHost() netip.AddrPort { return hostOf(v.bornHost) }

// StoreHost returns the broker address stored in the record.
func (v *View) StoreHost() netip.AddrPort { return hostOf(v.storeHost) }

func hostOf(b []byte) netip.AddrPort {
	if len(b) == 8 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(binary.BigEndian.Uint32(b[4:])))
	}
	if len(b) == 20 {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])), uint16(binary.BigEndian.Uint32(b[16:])))
	}
	return netip.AddrPort{}
}

// PropertiesString returns the properties as a string that aliases the
// record bytes (no copy): valid only while those bytes are unchanged; use
// strings.Clone to keep a value.
func (v *View) PropertiesString() string {
	if len(v.Properties) == 0 {
		return ""
	}
	return unsafe.String(&v.Properties[0], len(v.Properties))
}

// TopicString returns the topic, aliasing the record bytes like
// PropertiesString.
func (v *View) TopicString() string {
	if len(v.Topic) == 0 {
		return ""
	}
	return unsafe.String(&v.Topic[0], len(v.Topic))
}

// Property returns the value of key without allocating; the value aliases
// the record bytes like PropertiesString.
func (v *View) Property(key string) (string, bool) {
	return LookupProperty(v.PropertiesString(), key)
}

// TransactionType is SysFlag & FlagTransactionMask.
func (v *View) TransactionType() int32 { return v.SysFlag & FlagTransactionMask }

// OffsetMsgID is the broker-generated message id of this record (Java's MessageDecoder.createMessageId).
func (v *View) OffsetMsgID() string { return OffsetMsgID(v.StoreHost(), v.PhysOffset) }
