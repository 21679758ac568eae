package protocol

import "strconv"

// SerializeType selects how a frame's header is encoded (Java's RemotingCommand.encode/decode (frame layout)).
type SerializeType byte

const (
	// SerializeJSON is a JSON object header (type byte 0). The Go client
	// only ever sends this type.
	SerializeJSON SerializeType = 0
	// SerializeRocketMQ is the compact binary header (type byte 1, §1.4).
	SerializeRocketMQ SerializeType = 1
)

func (t SerializeType) String() string {
	switch t {
	case SerializeJSON:
		return "JSON"
	case SerializeRocketMQ:
		return "ROCKETMQ"
	}
	return "SerializeType(" + strconv.Itoa(int(t)) + ")"
}

// Flag bits of Command.Flag (Java's RemotingCommand (flag bits)).
const (
	FlagResponse int32 = 1 << 0 // set on responses
	FlagOneway   int32 = 1 << 1 // request wants no reply
)

// Version ordinals (Java's NettyRemotingAbstract).
const (
	// VersionV4_9_7 is what a 4.9.7 Java broker/namesrv stamps into every
	// command it creates; mqd does the same.
	VersionV4_9_7 int16 = 407
	// VersionGoClient is the constant version the Go client v2.1.2 sends.
	VersionGoClient int16 = 317
	// VersionV3_0_11 gates the filter-server REGISTER_BROKER body in Java.
	VersionV3_0_11 int16 = 37
	// VersionV3_4_9 gates header maxReconsumeTimes in the send paths.
	VersionV3_4_9 int16 = 121
	// VersionV4_1_0Snapshot gates non-TAG filtering in Java clients.
	VersionV4_1_0Snapshot int16 = 232
	// VersionV4_9_4 is where the namesrv started emitting standard JSON.
	VersionV4_9_4 int16 = 401
)

// Language names as they travel in JSON headers; the binary header carries
// the byte code from languageCodes instead.
const (
	LanguageJava  = "JAVA"
	LanguageGo    = "GO"
	LanguageOther = "OTHER"
	// DefaultLanguage is what NewRequest and NewResponse stamp. JAVA is the
	// one name every 4.x client knows: older Java clients lack later enum
	// values, and the Go client accepts any value (rocketmq-client-go v2.1.2 internal/remote).
	DefaultLanguage = LanguageJava
)

// languageCodes maps the byte code of the binary header (Java's RemotingCommand) to the
// JSON name. Index = byte code.
var languageCodes = [...]string{
	"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER",
	"HTTP", "GO", "PHP", "OMS", "RUST",
}

const languageOtherCode = 7

// LanguageName returns the name for a binary language code; unknown codes
// map to "OTHER".
func LanguageName(code byte) string {
	if int(code) < len(languageCodes) {
		return languageCodes[code]
	}
	return LanguageOther
}

// LanguageCode returns the binary code for a language name; unknown names
// map to OTHER (7).
func LanguageCode(name string) byte {
	for i, n := range languageCodes {
		if n == name {
			return byte(i)
		}
	}
	return languageOtherCode
}

// Command is one RemotingCommand: a request or a response.
//
// Ownership: a Command handed to an encoder or to the remoting layer for
// sending must not be modified until it has been written. Body of a decoded
// Command aliases the frame buffer it was read into; it is never reused by
// the decoder, so holding on to it is safe.
type Command struct {
	Code     int16
	Language string // JSON name, e.g. "JAVA", "GO"
	Version  int16
	Opaque   int32
	Flag     int32
	Remark   string
	// ExtFields is nil also for a send request whose header the server's
	// decoder typed (SendHeader, Fields).
	ExtFields map[string]string
	Body      []byte
	// BodyParts is used only when sending: the parts are written after Body,
	// in order, as if concatenated. It lets a pull response send commit-log
	// slices without copying them. Decoders never set it.
	BodyParts [][]byte
	// SerializeType is the header encoding used on the wire. Decoders set
	// it from the frame; encoders honour it.
	SerializeType SerializeType

	// A send request DecodeRequestFrame typed (send_json.go): its header,
	// the naming it arrived in and where its extFields began.
	send      SendMessageRequestHeader
	typedSend bool
	sendV2    bool
	sendExtAt int
	// A send response whose header SetSendResult gave typed (send_result.go).
	result      SendResult
	typedResult bool
	// props holds the unescaped properties of a typed send header, which
	// send.Properties aliases (issue 14: 0 allocations per send). It comes
	// from a pool and goes back to it with Recycle, so that string is
	// valid only until the Command is recycled, like a pooled request
	// Body: whoever keeps a piece of it clones it. Only a typed send
	// request holds one, so no other Command pins its memory.
	props *propsBuf
}

// HeaderEncoder is implemented by every typed header in this package.
type HeaderEncoder interface {
	Encode() map[string]string
}

// NewRequest builds a request with the given code and custom header (may
// be nil). The opaque is left 0: the remoting layer assigns it when sending.
func NewRequest(code int16, header HeaderEncoder) *Command {
	c := &Command{Code: code, Language: DefaultLanguage, Version: VersionV4_9_7}
	if header != nil {
		c.ExtFields = header.Encode()
	}
	return c
}

// NewResponse builds the response to req: same opaque, flag bit 0 set,
// version 407, and the request's serialize type (Java replies in the
// encoding it was asked in).
func NewResponse(req *Command, code int16, remark string) *Command {
	c := newCommand()
	c.Code, c.Language, c.Version, c.Flag, c.Remark = code, DefaultLanguage, VersionV4_9_7, FlagResponse, remark
	if req != nil {
		c.Opaque = req.Opaque
		c.SerializeType = req.SerializeType
	}
	return c
}

// IsResponse reports whether flag bit 0 is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether flag bit 1 is set. The Go client never sets it.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// MarkResponse sets the response flag bit.
func (c *Command) MarkResponse() { c.Flag |= FlagResponse }

// MarkOneway sets the oneway flag bit.
func (c *Command) MarkOneway() { c.Flag |= FlagOneway }

// Ext returns Fields()[key] ("" when absent).
func (c *Command) Ext(key string) string { return c.Fields()[key] }

// SetExt sets one ext field, allocating the map when needed (a typed
// send header becomes its map first).
func (c *Command) SetExt(key, value string) {
	c.untype()
	if c.ExtFields == nil {
		c.ExtFields = make(map[string]string, 8)
	}
	c.ExtFields[key] = value
}

// SetHeader replaces ExtFields with the encoded header (nil clears them).
func (c *Command) SetHeader(h HeaderEncoder) {
	c.typedSend, c.send = false, SendMessageRequestHeader{}
	c.typedResult, c.result = false, SendResult{}
	if h == nil {
		c.ExtFields = nil
		return
	}
	c.ExtFields = h.Encode()
}

// BodyLen is the number of body bytes on the wire: Body plus BodyParts.
func (c *Command) BodyLen() int {
	n := len(c.Body)
	for _, p := range c.BodyParts {
		n += len(p)
	}
	return n
}

// String is a short description for logs (no body).
func (c *Command) String() string {
	kind, name := "request", RequestCodeName(c.Code)
	if c.IsResponse() {
		kind, name = "response", ResponseCodeName(c.Code)
	}
	s := kind + " " + name + " opaque=" + strconv.Itoa(int(c.Opaque)) +
		" flag=" + strconv.Itoa(int(c.Flag))
	if c.Remark != "" {
		s += " remark=" + strconv.Quote(c.Remark)
	}
	return s
}
