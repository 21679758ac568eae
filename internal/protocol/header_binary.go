package protocol

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
)

// binaryFixedLen is the fixed part of a ROCKETMQ header (Java's RocketMQSerializable):
// code 2, language 1, version 2, opaque 4, flag 4, remark length 4,
// extFields length 4.
const binaryFixedLen = 21

// appendBinaryHeader writes the ROCKETMQ (type 1) header. Ext entries are
// written in sorted key order: key length int16, key, value length int32,
// value.
func appendBinaryHeader(dst []byte, c *Command) ([]byte, error) {
	be := binary.BigEndian
	dst = be.AppendUint16(dst, uint16(c.Code))
	dst = append(dst, LanguageCode(c.Language))
	dst = be.AppendUint16(dst, uint16(c.Version))
	dst = be.AppendUint32(dst, uint32(c.Opaque))
	dst = be.AppendUint32(dst, uint32(c.Flag))
	dst = be.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	var stack [16]string
	var ext map[string]string
	if c.typedResult && c.ExtFields == nil {
		dst = appendSendResultBinary(dst, &c.result)
	} else {
		ext = c.Fields()
	}
	for _, k := range sortedKeys(ext, stack[:0]) {
		if len(k) > math.MaxInt16 {
			return dst, frameErr(ErrEncode, "ext key of %d bytes exceeds int16", len(k))
		}
		v := ext[k]
		dst = be.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = be.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	extLen := len(dst) - lenAt - 4
	if extLen > math.MaxInt32 || len(c.Remark) > math.MaxInt32 {
		return dst, frameErr(ErrEncode, "binary header too large")
	}
	be.PutUint32(dst[lenAt:], uint32(extLen))
	return dst, nil
}

// decodeBinaryHeader parses a ROCKETMQ header. Unknown language codes map
// to "OTHER"; any inconsistency in the length fields is an error.
func decodeBinaryHeader(b []byte) (*Command, error) {
	if len(b) < binaryFixedLen {
		return nil, errors.New("binary header of " + strconv.Itoa(len(b)) + " bytes, need 21")
	}
	be := binary.BigEndian
	c := newCommand()
	c.Code = int16(be.Uint16(b))
	c.Language = LanguageName(b[2])
	c.Version = int16(be.Uint16(b[3:]))
	c.Opaque = int32(be.Uint32(b[5:]))
	c.Flag = int32(be.Uint32(b[9:]))
	p := 13
	rl := int64(int32(be.Uint32(b[p:])))
	p += 4
	if rl < 0 || rl > int64(len(b)-p-4) {
		return nil, errors.New("bad remark length " + strconv.FormatInt(rl, 10))
	}
	c.Remark = string(b[p : p+int(rl)])
	p += int(rl)
	el := int64(int32(be.Uint32(b[p:])))
	p += 4
	if el < 0 || el != int64(len(b)-p) {
		return nil, errors.New("extFields length " + strconv.FormatInt(el, 10) +
			" does not match the " + strconv.Itoa(len(b)-p) + " bytes left")
	}
	ext, err := decodeBinaryExt(b[p:])
	if err != nil {
		return nil, err
	}
	c.ExtFields = ext
	return c, nil
}

func decodeBinaryExt(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	m := newExtMap(16)
	be := binary.BigEndian
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("truncated ext key length")
		}
		kl := int(int16(be.Uint16(b)))
		b = b[2:]
		if kl < 0 || kl+4 > len(b) {
			return nil, errors.New("bad ext key length " + strconv.Itoa(kl))
		}
		k := internKey(b[:kl])
		b = b[kl:]
		vl := int64(int32(be.Uint32(b)))
		b = b[4:]
		if vl < 0 || vl > int64(len(b)) {
			return nil, errors.New("bad ext value length " + strconv.FormatInt(vl, 10))
		}
		m[k] = internValue(b[:vl])
		b = b[vl:]
	}
	return m, nil
}
