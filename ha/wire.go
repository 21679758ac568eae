package ha

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Wire constants (FORMAT.md).
const (
	magic        = 0x4D514841 // "MQHA"
	version      = 1
	helloSize    = 32
	replyHead    = 24
	frameHead    = 20
	reportSize   = 8
	flagTrailer  = 1
	statusOK     = 0
	statusRefuse = 1
	// maxRemark bounds a refusal's text; maxFrame bounds one data message
	// a slave accepts (a batch plus the largest record).
	maxRemark = 4096
	maxFrame  = 64 << 20
)

type hello struct {
	version     uint32 // 0 encodes as version; versionEpochs adds helloEpochs (truncate.go)
	segmentSize int64
	offset      int64
	hasTrailer  bool
	trailer     uint32
	compress    bool // flagCompress: S2 payloads wanted (compress.go)
}

func (h hello) encode() []byte {
	b := make([]byte, helloSize)
	be := binary.BigEndian
	be.PutUint32(b, magic)
	be.PutUint32(b[4:], max(h.version, version))
	be.PutUint64(b[8:], uint64(h.segmentSize))
	be.PutUint64(b[16:], uint64(h.offset))
	if h.hasTrailer {
		be.PutUint32(b[24:], flagTrailer)
	}
	if h.compress {
		b[27] |= flagCompress
	}
	be.PutUint32(b[28:], h.trailer)
	return b
}

func readHello(r io.Reader) (hello, error) {
	var b [helloSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return hello{}, err
	}
	be := binary.BigEndian
	if v := be.Uint32(b[4:]); be.Uint32(b[:]) != magic || (v != version && v != versionEpochs) {
		return hello{}, fmt.Errorf("ha: not an mqd HA hello (magic %#x version %d)", be.Uint32(b[:]), be.Uint32(b[4:]))
	}
	h := hello{version: be.Uint32(b[4:]), segmentSize: int64(be.Uint64(b[8:])), offset: int64(be.Uint64(b[16:])),
		hasTrailer: be.Uint32(b[24:])&flagTrailer != 0, trailer: be.Uint32(b[28:])}
	h.compress = be.Uint32(b[24:])&flagCompress != 0
	if h.offset < 0 || h.segmentSize <= 0 {
		return hello{}, fmt.Errorf("ha: bad hello: offset %d segment size %d", h.offset, h.segmentSize)
	}
	return h, nil
}

// reply is the master's answer to a hello.
type reply struct {
	status    uint32
	masterEnd int64
	remark    string
}

func (r reply) encode() []byte {
	remark := r.remark
	if len(remark) > maxRemark {
		remark = remark[:maxRemark]
	}
	b := make([]byte, replyHead+len(remark))
	be := binary.BigEndian
	be.PutUint32(b, magic)
	be.PutUint32(b[4:], r.status)
	be.PutUint64(b[8:], uint64(r.masterEnd))
	be.PutUint32(b[16:], uint32(len(remark)))
	copy(b[replyHead:], remark)
	return b
}

func readReply(r io.Reader) (reply, error) {
	var b [replyHead]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return reply{}, err
	}
	be := binary.BigEndian
	if be.Uint32(b[:]) != magic {
		return reply{}, fmt.Errorf("ha: not an mqd HA reply (magic %#x)", be.Uint32(b[:]))
	}
	n := be.Uint32(b[16:])
	if n > maxRemark {
		return reply{}, fmt.Errorf("ha: reply remark of %d bytes", n)
	}
	text := make([]byte, n)
	if _, err := io.ReadFull(r, text); err != nil {
		return reply{}, err
	}
	return reply{status: be.Uint32(b[4:]), masterEnd: int64(be.Uint64(b[8:])), remark: string(text)}, nil
}

// putFrameHead writes a data message header: the offset the frames
// continue from, the master's written end, the payload size.
func putFrameHead(b []byte, offset, masterEnd int64, size int) {
	be := binary.BigEndian
	be.PutUint64(b, uint64(offset))
	be.PutUint64(b[8:], uint64(masterEnd))
	be.PutUint32(b[16:], uint32(size))
}

func parseFrameHead(b []byte) (offset, masterEnd int64, size int, err error) {
	be := binary.BigEndian
	offset, masterEnd = int64(be.Uint64(b)), int64(be.Uint64(b[8:]))
	n := be.Uint32(b[16:])
	if n > maxFrame || offset < 0 || masterEnd < 0 {
		return 0, 0, 0, fmt.Errorf("ha: bad data header: offset %d end %d size %d", offset, masterEnd, n)
	}
	return offset, masterEnd, int(n), nil
}
