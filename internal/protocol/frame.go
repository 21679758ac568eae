package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultMaxFrame is the largest frame accepted by default, counting the
// 4-byte length field itself, as the Java decoder does (16 MiB, Java's RemotingCommand.encode/decode (frame layout)).
const DefaultMaxFrame = 16 << 20

// maxHeaderLen is what fits in the 24-bit header length field.
const maxHeaderLen = 1<<24 - 1

// Sentinel errors; every decode error wraps exactly one of them inside a
// *FrameError, so callers can use errors.Is as well as errors.As.
var (
	ErrFrameTooLarge   = errors.New("frame too large")
	ErrFrameLength     = errors.New("bad frame length")
	ErrSerializeType   = errors.New("unknown serialize type")
	ErrHeaderLength    = errors.New("header length exceeds frame")
	ErrMalformedHeader = errors.New("malformed header")
	ErrEncode          = errors.New("command cannot be encoded")
)

// FrameError describes why a frame could not be decoded or encoded.
type FrameError struct {
	Kind   error  // one of the Err* sentinels above
	Detail string // human readable specifics
}

func (e *FrameError) Error() string {
	if e.Detail == "" {
		return "protocol: " + e.Kind.Error()
	}
	return "protocol: " + e.Kind.Error() + ": " + e.Detail
}

// Unwrap returns Kind.
func (e *FrameError) Unwrap() error { return e.Kind }

func frameErr(kind error, format string, args ...any) error {
	return &FrameError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Decoder reads frames from a buffered stream. It is not safe for
// concurrent use; one goroutine (a connection's read loop) owns it.
type Decoder struct {
	r        *bufio.Reader
	maxFrame int
	lenBuf   [4]byte
}

// NewDecoder returns a Decoder reading from r. maxFrame <= 0 means
// DefaultMaxFrame.
func NewDecoder(r *bufio.Reader, maxFrame int) *Decoder {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return &Decoder{r: r, maxFrame: maxFrame}
}

// Decode reads one frame. io.EOF is returned only if the stream ends
// cleanly between frames; a frame cut short yields io.ErrUnexpectedEOF.
func (d *Decoder) Decode() (*Command, error) {
	return readFrame(d.r, d.lenBuf[:], d.maxFrame)
}

// ReadFrame reads and decodes one frame from r. maxFrame <= 0 means
// DefaultMaxFrame. Prefer a Decoder in loops.
func ReadFrame(r io.Reader, maxFrame int) (*Command, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	var lb [4]byte
	return readFrame(r, lb[:], maxFrame)
}

func readFrame(r io.Reader, lenBuf []byte, maxFrame int) (*Command, error) {
	if _, err := io.ReadFull(r, lenBuf); err != nil {
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(lenBuf)))
	if n < 4 {
		return nil, frameErr(ErrFrameLength, "length %d < 4", n)
	}
	if n+4 > int64(maxFrame) {
		return nil, frameErr(ErrFrameTooLarge, "length %d exceeds cap %d", n, maxFrame)
	}
	frame, err := readBody(r, int(n))
	if err != nil {
		return nil, err
	}
	return DecodeFrame(frame)
}

// eagerFrame is how much of a frame is allocated before its bytes arrive;
// larger frames grow as they are read, so a peer that announces 16 MiB and
// sends nothing pins 64 KiB, not 16 MiB.
const eagerFrame = 64 << 10

// readBody reads exactly n bytes.
func readBody(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, eagerFrame))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if got == n {
			return buf, nil
		}
		next := make([]byte, min(n, 2*len(buf)))
		copy(next, buf[:got])
		buf = next
	}
}

// DecodeFrame decodes a frame without its leading length field: the
// serialize-type/header-length word, the header and the body. The returned
// Command's Body aliases frame; nothing else does (every string is copied
// out of the header), so a caller may reuse the header bytes at once
// (remoting's read loop does).
func DecodeFrame(frame []byte) (*Command, error) { return decodeFrame(frame, false) }

// DecodeRequestFrame is DecodeFrame for a server's read loop: a send
// request's JSON header may come back typed (ExtFields nil; read it with
// SendMessageRequestHeader.DecodeRequest, or Fields for the map).
func DecodeRequestFrame(frame []byte) (*Command, error) { return decodeFrame(frame, true) }

func decodeFrame(frame []byte, typedSend bool) (*Command, error) {
	if len(frame) < 4 {
		return nil, frameErr(ErrFrameLength, "frame of %d bytes has no header length", len(frame))
	}
	word := binary.BigEndian.Uint32(frame)
	st := SerializeType(word >> 24)
	hl := int(word & maxHeaderLen)
	if hl > len(frame)-4 {
		return nil, frameErr(ErrHeaderLength, "header length %d, frame has %d", hl, len(frame)-4)
	}
	header := frame[4 : 4+hl]
	var (
		c   *Command
		err error
	)
	switch st {
	case SerializeJSON:
		c, err = decodeJSONHeader(header, typedSend)
	case SerializeRocketMQ:
		c, err = decodeBinaryHeader(header)
	default:
		return nil, frameErr(ErrSerializeType, "type byte %d", byte(st))
	}
	if err != nil {
		return nil, &FrameError{Kind: ErrMalformedHeader, Detail: st.String() + ": " + err.Error()}
	}
	c.SerializeType = st
	if body := frame[4+hl:]; len(body) > 0 {
		c.Body = body[:len(body):len(body)]
	}
	return c, nil
}

// AppendHead appends the frame prefix (length, type + header length) and
// the encoded header to dst; the body (Body then BodyParts) must follow it
// on the wire. It lets a writer send large bodies as separate writev
// segments without copying them.
func (c *Command) AppendHead(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	switch c.SerializeType {
	case SerializeJSON:
		dst = appendJSONHeader(dst, c)
	case SerializeRocketMQ:
		dst, err = appendBinaryHeader(dst, c)
	default:
		err = frameErr(ErrEncode, "serialize type %d", byte(c.SerializeType))
	}
	if err != nil {
		return dst[:start], err
	}
	hl := len(dst) - start - 8
	if hl > maxHeaderLen {
		return dst[:start], frameErr(ErrEncode, "header of %d bytes exceeds 24-bit length", hl)
	}
	total := int64(4) + int64(hl) + int64(c.BodyLen())
	if total > math.MaxInt32 {
		return dst[:start], frameErr(ErrEncode, "frame of %d bytes exceeds int32", total)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(total))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(c.SerializeType)<<24|uint32(hl))
	return dst, nil
}

// AppendTo appends the whole frame (prefix, header, Body, BodyParts) to dst.
// On error dst is returned unchanged.
func (c *Command) AppendTo(dst []byte) ([]byte, error) {
	start := len(dst)
	dst, err := c.AppendHead(dst)
	if err != nil {
		return dst[:start], err
	}
	dst = append(dst, c.Body...)
	for _, p := range c.BodyParts {
		dst = append(dst, p...)
	}
	return dst, nil
}

// Encode returns the whole frame in a new buffer.
func (c *Command) Encode() ([]byte, error) {
	return c.AppendTo(make([]byte, 0, 256+c.BodyLen()))
}
