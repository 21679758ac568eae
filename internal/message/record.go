// Package message is the RocketMQ stored-message record: the byte layout of
// one message in the commit log, which is also the layout clients decode in
// pull, query and view replies (Java's CommitLog.DefaultAppendMessageCallback). It has no state and no
// goroutines.
//
// Record layout (big-endian, IPv4 hosts; IPv6 hosts take 20 bytes instead of
// 8, flagged by sysFlag bits 0x10 born and 0x20 store):
//
//	off  size  field
//	  0     4  TOTALSIZE        whole record, this field included
//	  4     4  MAGICCODE        0xDAA320A7
//	  8     4  BODYCRC          crc32 IEEE of the stored body & 0x7FFFFFFF
//	 12     4  QUEUEID
//	 16     4  FLAG             producer's user flag
//	 20     8  QUEUEOFFSET      logical offset in (topic, queueId)
//	 28     8  PHYSICALOFFSET   commit-log offset of byte 0 of this record
//	 36     4  SYSFLAG
//	 40     8  BORNTIMESTAMP    ms
//	 48     8  BORNHOST         4-byte IPv4 + int32 port
//	 56     8  STORETIMESTAMP   ms
//	 64     8  STOREHOST        4-byte IPv4 + int32 port
//	 72     4  RECONSUMETIMES
//	 76     8  PREPARED TRANSACTION OFFSET
//	 84  4+n   BODY             int32 length, bytes
//	  .  1+t   TOPIC            1-byte length (≤ 127), UTF-8
//	  .  2+p   PROPERTIES       int16 length (≤ 32767), properties string
package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Magic codes of the commit log.
const (
	MagicMessage = 0xDAA320A7 // a message record
	MagicBlank   = 0xCBD43194 // end-of-segment filler
)

// Size limits (Java's CommitLog.DefaultAppendMessageCallback).
const (
	MaxTopicLen      = 127
	MaxPropertiesLen = 32767
)

// sysFlag bits (Java's MessageSysFlag).
const (
	FlagCompressed      = 0x1
	FlagMultiTags       = 0x2
	FlagTransactionMask = 0xC
	FlagPrepared        = 0x4
	FlagCommit          = 0x8
	FlagRollback        = 0xC
	FlagBornHostV6      = 0x10
	FlagStoreHostV6     = 0x20
)

// Field offsets of the fixed part.
const (
	offTotalSize   = 0
	offMagic       = 4
	offBodyCRC     = 8
	offQueueID     = 12
	offFlag        = 16
	offQueueOffset = 20
	offPhysOffset  = 28
	offSysFlag     = 36
	offBornTS      = 40
	offBornHost    = 48
)

// Message is a message as the store appends it: everything but the fields
// the store assigns (queue offset, physical offset, store timestamp) and the
// body CRC, which Encode computes.
type Message struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	SysFlag                   int32
	BornTimestamp             int64
	BornHost                  netip.AddrPort
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	Properties                string
}

func hostLen(a netip.AddrPort) int {
	if a.Addr().Is4() || !a.IsValid() {
		return 8
	}
	return 20
}

// sysFlag returns m.SysFlag with the IPv6 bits set from the host addresses.
func (m *Message) sysFlag() int32 {
	f := m.SysFlag &^ (FlagBornHostV6 | FlagStoreHostV6)
	if hostLen(m.BornHost) == 20 {
		f |= FlagBornHostV6
	}
	if hostLen(m.StoreHost) == 20 {
		f |= FlagStoreHostV6
	}
	return f
}

// ErrIllegal wraps every size or format violation of a message.
var ErrIllegal = errors.New("message illegal")

// Validate checks the limits that the record format itself imposes.
func (m *Message) Validate() error {
	switch {
	case len(m.Topic) == 0:
		return fmt.Errorf("%w: empty topic", ErrIllegal)
	case len(m.Topic) > MaxTopicLen:
		return fmt.Errorf("%w: topic is %d bytes, at most %d", ErrIllegal, len(m.Topic), MaxTopicLen)
	case len(m.Properties) > MaxPropertiesLen:
		return fmt.Errorf("%w: properties are %d bytes, at most %d", ErrIllegal, len(m.Properties), MaxPropertiesLen)
	}
	return nil
}

// Size is the encoded record length.
func (m *Message) Size() int {
	return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + hostLen(m.BornHost) + 8 + hostLen(m.StoreHost) +
		4 + 8 + 4 + len(m.Body) + 1 + len(m.Topic) + 2 + len(m.Properties)
}

// BodyCRC is the RocketMQ body checksum: CRC-32/IEEE masked to 31 bits.
func BodyCRC(body []byte) uint32 { return crc32.ChecksumIEEE(body) & 0x7FFFFFFF }

// Encode writes the record into dst, which must be exactly m.Size() bytes.
// bodyCRC is BodyCRC(m.Body), passed in so callers can compute it outside
// the append lock.
func (m *Message) Encode(dst []byte, bodyCRC uint32, queueOffset, physOffset, storeTimestamp int64) {
	be := binary.BigEndian
	be.PutUint32(dst[offTotalSize:], uint32(len(dst)))
	be.PutUint32(dst[offMagic:], MagicMessage)
	be.PutUint32(dst[offBodyCRC:], bodyCRC)
	be.PutUint32(dst[offQueueID:], uint32(m.QueueID))
	be.PutUint32(dst[offFlag:], uint32(m.Flag))
	be.PutUint64(dst[offQueueOffset:], uint64(queueOffset))
	be.PutUint64(dst[offPhysOffset:], uint64(physOffset))
	be.PutUint32(dst[offSysFlag:], uint32(m.sysFlag()))
	be.PutUint64(dst[offBornTS:], uint64(m.BornTimestamp))
	p := offBornHost + putHost(dst[offBornHost:], m.BornHost)
	be.PutUint64(dst[p:], uint64(storeTimestamp))
	p += 8
	p += putHost(dst[p:], m.StoreHost)
	be.PutUint32(dst[p:], uint32(m.ReconsumeTimes))
	be.PutUint64(dst[p+4:], uint64(m.PreparedTransactionOffset))
	be.PutUint32(dst[p+12:], uint32(len(m.Body)))
	p += 16
	p += copy(dst[p:], m.Body)
	dst[p] = byte(len(m.Topic))
	p++
	p += copy(dst[p:], m.Topic)
	be.PutUint16(dst[p:], uint16(len(m.Properties)))
	copy(dst[p+2:], m.Properties)
}

func putHost(dst []byte, a netip.AddrPort) int {
	if hostLen(a) == 8 {
		ip := a.Addr().As4()
		copy(dst, ip[:])
		binary.BigEndian.PutUint32(dst[4:], uint32(a.Port()))
		return 8
	}
	ip := a.Addr().As16()
	copy(dst, ip[:])
	binary.BigEndian.PutUint32(dst[16:], uint32(a.Port()))
	return 20
}
