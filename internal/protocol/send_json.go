package protocol

import (
	"bytes"
	"math"
	"unsafe"
)

// Typed send headers (issue 14: CPU per message). A send request's JSON
// extFields hold 9–14 fields; building the map of them, and then reading
// them back out of it, was about a sixth of the broker's CPU at 50k msg/s.
// DecodeRequestFrame (the server's read loop) instead reads the extFields
// of SEND_MESSAGE(_V2), SEND_BATCH_MESSAGE and SEND_REPLY_MESSAGE(_V2)
// straight into a SendMessageRequestHeader kept in the Command, and leaves
// ExtFields nil. It does so only when the object holds nothing but string
// values under send-header names of one naming scheme with every required
// field present and valid, so the typed header is exactly what
// SendMessageRequestHeader.Decode would have produced. Anything else (an
// AccessKey or Signature, a null, a number, an unknown key, a bad value)
// rewinds and decodes the map as before, so its errors and its ACL checks
// are unchanged.

// Send-header fields in sendKeys order: V2 names them 'a' + index.
const (
	sfGroup = iota
	sfTopic
	sfDefTopic
	sfDefNums
	sfQueue
	sfSysFlag
	sfBorn
	sfFlag
	sfProps
	sfReconsume
	sfUnit
	sfMaxReconsume
	sfBatch
	sfBroker
	sfCount
)

// sendRequired has a bit per field Decode requires (group .. flag).
const sendRequired = 1<<(sfFlag+1) - 1

// isSendCode reports whether code's request header is SendMessageRequestHeader.
func isSendCode(code int16) bool {
	switch code {
	case SendMessage, SendMessageV2, SendBatchMessage, SendReplyMessage, SendReplyMessageV2:
		return true
	}
	return false
}

// sendField returns the field a key names and whether it is a V2 name.
func sendField(key []byte) (f int, v2, ok bool) {
	if len(key) == 1 {
		if c := key[0]; c >= 'a' && c < 'a'+sfCount {
			return int(c - 'a'), true, true
		}
		return 0, false, false
	}
	switch string(key) {
	case "producerGroup":
		return sfGroup, false, true
	case "topic":
		return sfTopic, false, true
	case "defaultTopic":
		return sfDefTopic, false, true
	case "defaultTopicQueueNums":
		return sfDefNums, false, true
	case "queueId":
		return sfQueue, false, true
	case "sysFlag":
		return sfSysFlag, false, true
	case "bornTimestamp":
		return sfBorn, false, true
	case "flag":
		return sfFlag, false, true
	case "properties":
		return sfProps, false, true
	case "reconsumeTimes":
		return sfReconsume, false, true
	case "unitMode":
		return sfUnit, false, true
	case "maxReconsumeTimes":
		return sfMaxReconsume, false, true
	case "batch":
		return sfBatch, false, true
	case "brokerName":
		return sfBroker, false, true
	}
	return 0, false, false
}

// decodeSendExt reads an extFields object into h. It reports false, with
// s and h in any state, when the object is not one it can type exactly.
// The properties are unescaped into *props, taken from the pool when nil
// (see Command.props).
func decodeSendExt(s *jsonScanner, h *SendMessageRequestHeader, props **propsBuf) (v2, ok bool) {
	if s.peek() != '{' {
		return false, false
	}
	s.i++
	var seen uint32
	var long, short bool
	for {
		s.ws()
		key, err := s.rawString()
		if err != nil {
			return false, false
		}
		f, isV2, known := sendField(key)
		if !known || s.expect(':') != nil {
			return false, false
		}
		s.ws()
		if s.peek() != '"' || !h.setJSON(f, s, props) {
			return false, false
		}
		seen |= 1 << f
		long, short = long || !isV2, short || isV2
		if s.consume('}') {
			break
		}
		if s.expect(',') != nil {
			return false, false
		}
	}
	if long == short || seen&sendRequired != sendRequired {
		return false, false
	}
	h.HasMaxReconsumeTimes = seen&(1<<sfMaxReconsume) != 0
	return short, true
}

// setJSON reads field f's string value as extReader would read it from
// the map; false when the value is not valid for the field. Properties
// are unescaped into *props and alias it (Command.props).
func (h *SendMessageRequestHeader) setJSON(f int, s *jsonScanner, props **propsBuf) bool {
	switch f {
	case sfProps:
		b, err := s.appendString(propsBuffer(props))
		if err != nil {
			return false
		}
		h.aliasProps(*props, b)
		return true
	case sfGroup, sfTopic, sfDefTopic, sfBroker:
		v, err := s.str()
		if err != nil {
			return false
		}
		*h.strField(f) = v
		return true
	}
	raw, err := s.rawString()
	if err != nil {
		return false
	}
	switch f {
	case sfUnit, sfBatch:
		v := bytes.EqualFold(raw, []byte("true")) // Java Boolean.parseBoolean
		if f == sfUnit {
			h.UnitMode = v
		} else {
			h.Batch = v
		}
		return true
	case sfBorn:
		n, ok := parseInt(raw, math.MinInt64, math.MaxInt64)
		h.BornTimestamp = n
		return ok
	}
	n, ok := parseInt(raw, math.MinInt32, math.MaxInt32)
	*h.i32Field(f) = int32(n)
	return ok
}

// propsBuffer is the command's properties buffer, emptied, taken from the
// pool when it has none (Command.props).
func propsBuffer(props **propsBuf) []byte {
	if *props == nil {
		*props = propsPool.Get().(*propsBuf)
	}
	return (*props).b[:0]
}

// aliasProps keeps b, the unescaped properties, in p and makes
// h.Properties alias it.
func (h *SendMessageRequestHeader) aliasProps(p *propsBuf, b []byte) {
	p.b = b
	h.Properties = ""
	if len(b) > 0 {
		h.Properties = unsafe.String(unsafe.SliceData(b), len(b))
	}
}

func (h *SendMessageRequestHeader) strField(f int) *string {
	switch f {
	case sfGroup:
		return &h.ProducerGroup
	case sfTopic:
		return &h.Topic
	case sfDefTopic:
		return &h.DefaultTopic
	case sfProps:
		return &h.Properties
	}
	return &h.BrokerName
}

func (h *SendMessageRequestHeader) i32Field(f int) *int32 {
	switch f {
	case sfDefNums:
		return &h.DefaultTopicQueueNums
	case sfQueue:
		return &h.QueueID
	case sfSysFlag:
		return &h.SysFlag
	case sfFlag:
		return &h.Flag
	case sfReconsume:
		return &h.ReconsumeTimes
	}
	return &h.MaxReconsumeTimes
}

// decodeExtFields is the "extFields" member: typed for a send request
// when typedSend allows it, else the map.
func decodeExtFields(s *jsonScanner, c *Command, typedSend bool) error {
	c.ExtFields, c.typedSend, c.send = nil, false, SendMessageRequestHeader{}
	if typedSend && isSendCode(c.Code) {
		start := s.i
		if end, v2, ok := fastSendExt(s.b, start, &c.send, &c.props); ok {
			s.i, c.typedSend, c.sendV2, c.sendExtAt = end, true, v2, start
			return nil
		}
		c.send = SendMessageRequestHeader{}
		if v2, ok := decodeSendExt(s, &c.send, &c.props); ok {
			c.typedSend, c.sendV2, c.sendExtAt = true, v2, start
			return nil
		}
		s.i, c.send = start, SendMessageRequestHeader{}
	}
	var err error
	c.ExtFields, err = jsonStringMap(s)
	return err
}

// untypeIfNotSend decodes the map after all when the header turned out not
// to be a send request's: a response, or a code the frame changed after
// its extFields (a repeated "code" member).
func untypeIfNotSend(b []byte, c *Command) error {
	if !c.typedSend || (!c.IsResponse() && isSendCode(c.Code)) {
		return nil
	}
	s := jsonScanner{b: b, i: c.sendExtAt}
	c.typedSend, c.send = false, SendMessageRequestHeader{}
	var err error
	c.ExtFields, err = jsonStringMap(&s)
	return err
}

// SendHeader returns the send header the decoder typed (ExtFields is nil
// then), or false. Its Properties alias a buffer that c's Recycle reuses
// (see Recycle): a handler that keeps a piece of them clones it.
func (c *Command) SendHeader() (*SendMessageRequestHeader, bool) {
	return &c.send, c.typedSend
}

// Fields returns the ext fields as a map: ExtFields, or for a typed send
// request its header encoded in the naming it arrived in (a new map; the
// paths that need it, ACL and re-encoding, are not the hot one). That map
// is the header's canonical form: a value the client sent as "+4" or
// "TRUE" comes back as "4" or "true", and optional fields it left out as
// their defaults. Every field means what it meant; nothing in mqd reads a
// received send's fields as text.
func (c *Command) Fields() map[string]string {
	switch {
	case c.ExtFields != nil:
	case c.typedSend:
		return c.send.encode(boolIndex(c.sendV2))
	case c.typedResult:
		h := c.result.header()
		return h.Encode()
	}
	return c.ExtFields
}

// untype turns a typed send header into ExtFields (its canonical form)
// before ExtFields is edited.
func (c *Command) untype() {
	if c.typedSend || c.typedResult {
		c.ExtFields = c.Fields()
		c.typedSend, c.send = false, SendMessageRequestHeader{}
		c.typedResult, c.result = false, SendResult{}
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DecodeRequest decodes the send header of req: the typed one when the
// decoder read it so, else from ExtFields. The typed header's Properties
// are valid only until req is recycled (SendHeader).
func (h *SendMessageRequestHeader) DecodeRequest(req *Command) error {
	if req.typedSend {
		*h = req.send
		return nil
	}
	return h.Decode(req.ExtFields)
}
