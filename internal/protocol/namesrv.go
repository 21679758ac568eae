package protocol

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Nameserver family: GET_ROUTEINFO_BY_TOPIC (105), REGISTER_BROKER (103),
// UNREGISTER_BROKER (104), QUERY_DATA_VERSION (322), DELETE_TOPIC_IN_NAMESRV
// (216), WIPE/ADD_WRITE_PERM_OF_BROKER (205/327), GET_TOPICS_BY_CLUSTER
// (224) and the KV config requests (100/101/102/219) — Java's namesrv DefaultRequestProcessor and namesrv RouteInfoManager.

// Topic filter types.
const (
	TopicFilterSingleTag = "SINGLE_TAG"
	TopicFilterMultiTag  = "MULTI_TAG"
)

// GetRouteInfoRequestHeader is the header of code 105.
type GetRouteInfoRequestHeader struct {
	Topic string // required
	// AcceptStandardJSONOnly (4.9.4+ Java clients) asks for quoted keys;
	// mqd always writes them.
	AcceptStandardJSONOnly bool
}

// Encode implements HeaderEncoder.
func (h *GetRouteInfoRequestHeader) Encode() map[string]string {
	w := newExt(2)
	w.str("topic", h.Topic)
	if h.AcceptStandardJSONOnly {
		w.boolean("acceptStandardJsonOnly", true)
	}
	return w
}

// Decode requires topic.
func (h *GetRouteInfoRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = GetRouteInfoRequestHeader{
		Topic:                  r.str("topic", true),
		AcceptStandardJSONOnly: r.boolean("acceptStandardJsonOnly", false),
	}
	return r.err
}

// RegisterBrokerRequestHeader is the header of code 103.
type RegisterBrokerRequestHeader struct {
	BrokerName   string // required
	BrokerAddr   string // required, ip:port
	ClusterName  string // required
	HaServerAddr string // required, ip:haPort
	BrokerID     int64  // required
	Compressed   bool   // body uses the zlib form of Java's RegisterBrokerBody
	BodyCrc32    int32  // CRC32-IEEE & 0x7FFFFFFF of the body; 0 = unchecked
}

// Encode implements HeaderEncoder.
func (h *RegisterBrokerRequestHeader) Encode() map[string]string {
	w := newExt(7)
	w.str("brokerName", h.BrokerName)
	w.str("brokerAddr", h.BrokerAddr)
	w.str("clusterName", h.ClusterName)
	w.str("haServerAddr", h.HaServerAddr)
	w.i64("brokerId", h.BrokerID)
	w.boolean("compressed", h.Compressed)
	w.i32("bodyCrc32", h.BodyCrc32)
	return w
}

// Decode implements the Java required-field rules.
func (h *RegisterBrokerRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = RegisterBrokerRequestHeader{
		BrokerName:   r.str("brokerName", true),
		BrokerAddr:   r.str("brokerAddr", true),
		ClusterName:  r.str("clusterName", true),
		HaServerAddr: r.str("haServerAddr", true),
		BrokerID:     r.i64("brokerId", true),
		Compressed:   r.boolean("compressed", false),
		BodyCrc32:    r.i32("bodyCrc32", false),
	}
	return r.err
}

// RemarkStaleRegistration starts the remark of mqd's nameserver's
// REGISTER_BROKER answer when the registration was ignored because its
// brokerId is held by another address with a higher stateVersion
// (DataVersion). The code is SUCCESS without a master address, as Java 5
// answers; Java brokers ignore the remark of a success.
const RemarkStaleRegistration = "registration ignored"

// RegisterBrokerResponseHeader is the response header of code 103; both
// fields are filled for slaves once their master is registered.
type RegisterBrokerResponseHeader struct {
	HaServerAddr string
	MasterAddr   string
}

// Encode implements HeaderEncoder.
func (h *RegisterBrokerResponseHeader) Encode() map[string]string {
	w := newExt(2)
	w.optStr("haServerAddr", h.HaServerAddr)
	w.optStr("masterAddr", h.MasterAddr)
	return w
}

// Decode reads the optional fields.
func (h *RegisterBrokerResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = RegisterBrokerResponseHeader{
		HaServerAddr: r.str("haServerAddr", false),
		MasterAddr:   r.str("masterAddr", false),
	}
	return r.err
}

// BrokerIdentityHeader is the header of codes 104 and 322.
type BrokerIdentityHeader struct {
	BrokerName  string // required
	BrokerAddr  string // required
	ClusterName string // required
	BrokerID    int64  // required
}

// Aliases naming the requests that use BrokerIdentityHeader.
type (
	UnregisterBrokerRequestHeader = BrokerIdentityHeader
	QueryDataVersionRequestHeader = BrokerIdentityHeader
)

// Encode implements HeaderEncoder.
func (h *BrokerIdentityHeader) Encode() map[string]string {
	w := newExt(4)
	w.str("brokerName", h.BrokerName)
	w.str("brokerAddr", h.BrokerAddr)
	w.str("clusterName", h.ClusterName)
	w.i64("brokerId", h.BrokerID)
	return w
}

// Decode requires all fields.
func (h *BrokerIdentityHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = BrokerIdentityHeader{
		BrokerName:  r.str("brokerName", true),
		BrokerAddr:  r.str("brokerAddr", true),
		ClusterName: r.str("clusterName", true),
		BrokerID:    r.i64("brokerId", true),
	}
	return r.err
}

// QueryDataVersionResponseHeader is the response header of code 322.
type QueryDataVersionResponseHeader struct {
	Changed bool // required
}

// Encode implements HeaderEncoder.
func (h *QueryDataVersionResponseHeader) Encode() map[string]string {
	return map[string]string{"changed": strconv.FormatBool(h.Changed)}
}

// Decode requires changed.
func (h *QueryDataVersionResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.Changed = r.boolean("changed", true)
	return r.err
}

// DeleteTopicFromNamesrvRequestHeader is the header of code 216.
type DeleteTopicFromNamesrvRequestHeader struct {
	Topic       string // required
	ClusterName string // optional: only that cluster's queue data
}

// Encode implements HeaderEncoder.
func (h *DeleteTopicFromNamesrvRequestHeader) Encode() map[string]string {
	w := newExt(2)
	w.str("topic", h.Topic)
	w.optStr("clusterName", h.ClusterName)
	return w
}

// Decode requires topic.
func (h *DeleteTopicFromNamesrvRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	*h = DeleteTopicFromNamesrvRequestHeader{
		Topic:       r.str("topic", true),
		ClusterName: r.str("clusterName", false),
	}
	return r.err
}

// BrokerNameHeader is the {brokerName} header of codes 205 and 327.
type BrokerNameHeader struct {
	BrokerName string // required
}

// Aliases naming the requests that use BrokerNameHeader.
type (
	WipeWritePermOfBrokerRequestHeader = BrokerNameHeader
	AddWritePermOfBrokerRequestHeader  = BrokerNameHeader
)

// Encode implements HeaderEncoder.
func (h *BrokerNameHeader) Encode() map[string]string {
	return map[string]string{"brokerName": h.BrokerName}
}

// Decode requires brokerName.
func (h *BrokerNameHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.BrokerName = r.str("brokerName", true)
	return r.err
}

// WritePermCountResponseHeader is the response of 205 (wipeTopicCount) and
// 327 (addTopicCount); Key selects the ext key.
type WritePermCountResponseHeader struct {
	Key   string // "wipeTopicCount" or "addTopicCount"
	Count int32
}

// Encode implements HeaderEncoder.
func (h *WritePermCountResponseHeader) Encode() map[string]string {
	return map[string]string{h.Key: strconv.Itoa(int(h.Count))}
}

// Decode reads the count under Key (which must be set by the caller).
func (h *WritePermCountResponseHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.Count = r.i32(h.Key, true)
	return r.err
}

// GetTopicsByClusterRequestHeader is the header of code 224.
type GetTopicsByClusterRequestHeader struct {
	Cluster string // required
}

// Encode implements HeaderEncoder.
func (h *GetTopicsByClusterRequestHeader) Encode() map[string]string {
	return map[string]string{"cluster": h.Cluster}
}

// Decode requires cluster.
func (h *GetTopicsByClusterRequestHeader) Decode(ext map[string]string) error {
	r := extReader{m: ext}
	h.Cluster = r.str("cluster", true)
	return r.err
}

// KVConfigHeader is the header of the KV requests: 100 uses all three
// fields, 101/102 namespace+key, 219 namespace only. Required fields are
// checked by the Decode* method matching the code.
type KVConfigHeader struct {
	Namespace string
	Key       string
	Value     string
}

// Encode writes the non-empty fields.
func (h *KVConfigHeader) Encode() map[string]string {
	w := newExt(3)
	w.str("namespace", h.Namespace)
	w.optStr("key", h.Key)
	w.optStr("value", h.Value)
	return w
}

// Decode is DecodeFor(PutKVConfig, ext): all three fields required.
func (h *KVConfigHeader) Decode(ext map[string]string) error {
	return h.DecodeFor(PutKVConfig, ext)
}

// DecodeFor decodes with the required fields of the given request code.
func (h *KVConfigHeader) DecodeFor(code int16, ext map[string]string) error {
	r := extReader{m: ext}
	*h = KVConfigHeader{
		Namespace: r.str("namespace", true),
		Key:       r.str("key", code != GetKVListByNamespace),
		Value:     r.str("value", code == PutKVConfig),
	}
	return r.err
}

// GetKVConfigResponseHeader is the response header of code 101.
type GetKVConfigResponseHeader struct {
	Value string
}

// Encode implements HeaderEncoder.
func (h *GetKVConfigResponseHeader) Encode() map[string]string {
	return map[string]string{"value": h.Value}
}

// Decode reads value.
func (h *GetKVConfigResponseHeader) Decode(ext map[string]string) error {
	h.Value = ext["value"]
	return nil
}

// DataVersion versions a broker's topic table (counter increments on every
// change). StateVersion is Java 5's field: in controller mode a master
// registers its master epoch there, and a nameserver refuses a
// registration of a brokerId held by another address with a higher one
// (internal/namesrv doc.go). 4.x senders have no such field (0); it is
// written only when not 0, so a 4.x peer sees the 4.x form.
type DataVersion struct {
	StateVersion int64 `json:"stateVersion,omitempty"`
	Timestamp    int64 `json:"timestamp"`
	Counter      int64 `json:"counter"`
}

// TopicConfig is one topic's configuration as registered and persisted.
type TopicConfig struct {
	TopicName       string `json:"topicName"`
	ReadQueueNums   int32  `json:"readQueueNums"`
	WriteQueueNums  int32  `json:"writeQueueNums"`
	Perm            int32  `json:"perm"`
	TopicFilterType string `json:"topicFilterType"`
	TopicSysFlag    int32  `json:"topicSysFlag"`
	Order           bool   `json:"order"`
}

// TopicConfigSerializeWrapper is the topic table plus its version (also the
// GET_ALL_TOPIC_CONFIG response body).
type TopicConfigSerializeWrapper struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	DataVersion      DataVersion            `json:"dataVersion"`
}

// RegisterBrokerBody is the body of REGISTER_BROKER.
type RegisterBrokerBody struct {
	TopicConfigSerializeWrapper TopicConfigSerializeWrapper `json:"topicConfigSerializeWrapper"`
	FilterServerList            []string                    `json:"filterServerList"`
}

// Encode writes the uncompressed JSON form.
func (b *RegisterBrokerBody) Encode() ([]byte, error) {
	c := *b
	if c.FilterServerList == nil {
		c.FilterServerList = []string{}
	}
	if c.TopicConfigSerializeWrapper.TopicConfigTable == nil {
		c.TopicConfigSerializeWrapper.TopicConfigTable = map[string]TopicConfig{}
	}
	return json.Marshal(&c)
}

// DecodeRegisterBrokerBody parses a REGISTER_BROKER body in either form,
// with at most DefaultMaxRegisterTopics topics.
func DecodeRegisterBrokerBody(body []byte, compressed bool) (*RegisterBrokerBody, error) {
	return DecodeRegisterBrokerBodyLimit(body, compressed, DefaultMaxRegisterTopics)
}

// DecodeRegisterBrokerBodyLimit parses a REGISTER_BROKER body whose topic
// table has at most maxTopics entries (<= 0: DefaultMaxRegisterTopics).
// The compressed form is refused as soon as its count says more, and may
// inflate to at most registerBytesPerTopic per allowed topic (plus the
// dataVersion and filter-server list), never beyond maxCompressedRegister:
// a frame cannot inflate into millions of tiny entries. The JSON form is
// bounded by the frame (16 MiB) and refused after decoding when its table
// is larger.
func DecodeRegisterBrokerBodyLimit(body []byte, compressed bool, maxTopics int) (*RegisterBrokerBody, error) {
	if maxTopics <= 0 {
		maxTopics = DefaultMaxRegisterTopics
	}
	if compressed {
		return decodeCompressedRegisterBody(body, maxTopics)
	}
	// Counted before decoding: a 16 MiB frame of tiny entries ("t1":{})
	// would otherwise become ~2M map entries before the count is seen.
	if n, err := countRegisterTopics(body, maxTopics); err != nil {
		return nil, err
	} else if n > maxTopics {
		return nil, fmt.Errorf("register body: more than %d topics (limit %d)", maxTopics, maxTopics)
	}
	b := &RegisterBrokerBody{}
	if err := DecodeJSON(body, b); err != nil {
		return nil, err
	}
	if n := len(b.TopicConfigSerializeWrapper.TopicConfigTable); n > maxTopics {
		return nil, fmt.Errorf("register body: %d topics (limit %d)", n, maxTopics)
	}
	return b, nil
}

// countRegisterTopics counts the entries of every object encoding/json
// would decode into the JSON register body's topic table (the keys
// topicConfigSerializeWrapper and topicConfigTable matched as it matches
// them, case-insensitively with Unicode simple folding, duplicates
// merged), without allocating for them. It stops once the count passes
// limit. A body that is not a JSON object counts 0 and is left to the
// decoder to refuse.
func countRegisterTopics(body []byte, limit int) (int, error) {
	s := &jsonScanner{b: body}
	n := 0
	err := eachMember(s, 0, func(key []byte) (bool, error) {
		if !bytes.EqualFold(key, []byte("topicConfigSerializeWrapper")) {
			return false, nil
		}
		return true, eachMember(s, 1, func(key []byte) (bool, error) {
			if !bytes.EqualFold(key, []byte("topicConfigTable")) {
				return false, nil
			}
			return true, eachMember(s, 2, func([]byte) (bool, error) {
				if n++; n > limit {
					return false, errCountDone
				}
				return false, nil
			})
		})
	})
	if err == errCountDone || err == errNotObject {
		err = nil
	}
	return n, err
}

var (
	errCountDone = errors.New("count limit passed")
	errNotObject = errors.New("not an object")
)

// eachMember walks the object at s (after whitespace), calling member with
// each string key; member either consumes the value itself (true) or
// leaves it to be skipped (false). A value that is not an object is
// skipped and reported as errNotObject at the top level only.
func eachMember(s *jsonScanner, depth int, member func(key []byte) (bool, error)) error {
	s.ws()
	if s.peek() != '{' {
		if depth == 0 {
			return errNotObject
		}
		return s.skip(depth)
	}
	s.i++
	if s.consume('}') {
		return nil
	}
	for {
		s.ws()
		var key []byte
		var err error
		if s.peek() == '"' {
			key, err = s.rawString()
		} else {
			err = s.skip(depth + 1) // fastjson's bare keys
		}
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		used, err := member(key)
		if err != nil {
			return err
		}
		if !used {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
		if s.consume('}') {
			return nil
		}
		if err := s.expect(','); err != nil {
			return err
		}
	}
}

// EncodeCompressed writes the zlib form of Java's RegisterBrokerBody. Topic lines carry
// name, read and write queue numbers, perm and filter type only.
func (b *RegisterBrokerBody) EncodeCompressed() ([]byte, error) {
	var raw bytes.Buffer
	dv, err := json.Marshal(b.TopicConfigSerializeWrapper.DataVersion)
	if err != nil {
		return nil, err
	}
	writeLenPrefixed(&raw, dv)
	table := b.TopicConfigSerializeWrapper.TopicConfigTable
	binary.Write(&raw, binary.BigEndian, int32(len(table)))
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tc := table[n]
		line := fmt.Sprintf("%s %d %d %d %s", tc.TopicName, tc.ReadQueueNums,
			tc.WriteQueueNums, tc.Perm, tc.TopicFilterType)
		writeLenPrefixed(&raw, []byte(line))
	}
	fs := b.FilterServerList
	if fs == nil {
		fs = []string{}
	}
	fsJSON, _ := json.Marshal(fs)
	writeLenPrefixed(&raw, fsJSON)
	var out bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&out, zlib.DefaultCompression) // Java uses BEST_COMPRESSION; any level decodes, this one is ~3x faster
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func writeLenPrefixed(w *bytes.Buffer, b []byte) {
	binary.Write(w, binary.BigEndian, int32(len(b)))
	w.Write(b)
}

// Bounds of the compressed register body: the inflated stream as a whole,
// and each length-prefixed chunk. Nothing is sized from the topic count in
// the stream: the table grows with the lines actually read, so memory
// follows the inflated bytes (at most maxCompressedRegister), never a
// number the sender wrote.
const (
	maxCompressedRegister = 64 << 20
	maxRegisterChunk      = 64 << 10 // dataVersion JSON, one topic line
	maxRegisterFilterList = 1 << 20  // filterServerList JSON
	registerPresize       = 1024     // initial table size, whatever the count says
	// registerBytesPerTopic is the inflated bytes allowed per topic: a
	// real line is at most ~180 bytes (a 127-character name, three int32s,
	// the filter type, the length prefix).
	registerBytesPerTopic = 256
	// DefaultMaxRegisterTopics bounds the topic entries of one
	// registration: twice the 100k topics a broker must be able to
	// register.
	DefaultMaxRegisterTopics = 200_000
)

var errRegisterTooLarge = errors.New("compressed register body: inflates beyond its limit")

// maxInflatedRegister is the inflated size allowed for maxTopics topics.
func maxInflatedRegister(maxTopics int) int64 {
	fixed := int64(maxRegisterChunk + maxRegisterFilterList + 16)
	return min(maxCompressedRegister, fixed+int64(maxTopics)*registerBytesPerTopic)
}

func decodeCompressedRegisterBody(body []byte, maxTopics int) (*RegisterBrokerBody, error) {
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: zr, N: maxInflatedRegister(maxTopics) + 1}
	rd := chunkReader{r: bufio.NewReader(lr)}
	out := &RegisterBrokerBody{}
	w := &out.TopicConfigSerializeWrapper
	if err := json.Unmarshal(rd.next(maxRegisterChunk), &w.DataVersion); err != nil {
		return nil, rd.errOr(lr, fmt.Errorf("compressed register body: dataVersion: %w", err))
	}
	n := rd.int32()
	if n < 0 {
		return nil, rd.errOr(lr, errors.New("compressed register body: bad topic count"))
	}
	if int64(n) > int64(maxTopics) {
		return nil, fmt.Errorf("compressed register body: %d topics (limit %d)", n, maxTopics)
	}
	w.TopicConfigTable = make(map[string]TopicConfig, min(n, registerPresize))
	for i := int32(0); i < n; i++ {
		line := rd.next(maxRegisterChunk)
		if rd.err != nil {
			return nil, rd.errOr(lr, nil)
		}
		tc, err := parseTopicConfigLine(string(line))
		if err != nil {
			return nil, err
		}
		w.TopicConfigTable[tc.TopicName] = tc
	}
	if fs := rd.next(maxRegisterFilterList); rd.err == nil && len(fs) > 0 {
		if err := json.Unmarshal(fs, &out.FilterServerList); err != nil {
			return nil, fmt.Errorf("compressed register body: filterServerList: %w", err)
		}
	} else if rd.err != nil && !errors.Is(rd.err, io.EOF) {
		return nil, rd.errOr(lr, nil) // an absent list is accepted, a damaged one is not
	}
	if lr.N <= 0 {
		return nil, errRegisterTooLarge
	}
	return out, nil
}

func parseTopicConfigLine(line string) (TopicConfig, error) {
	f := strings.Split(line, " ")
	if len(f) < 5 {
		return TopicConfig{}, fmt.Errorf("compressed register body: bad topic line %.64q", line)
	}
	nums := [3]int32{}
	for i := range nums {
		v, err := strconv.ParseInt(f[i+1], 10, 32)
		if err != nil {
			return TopicConfig{}, fmt.Errorf("compressed register body: bad topic line %.64q", line)
		}
		nums[i] = int32(v)
	}
	return TopicConfig{TopicName: f[0], ReadQueueNums: nums[0], WriteQueueNums: nums[1],
		Perm: nums[2], TopicFilterType: f[4]}, nil
}

// chunkReader reads int32-length-prefixed chunks from a stream into one
// reused buffer, remembering the first error (io.EOF when the stream ends
// cleanly before a chunk).
type chunkReader struct {
	r   *bufio.Reader
	buf []byte
	err error
}

func (r *chunkReader) int32() int32 {
	if r.err != nil {
		return 0
	}
	var b [4]byte
	if _, err := io.ReadFull(r.r, b[:]); err != nil {
		r.setErr(err)
		return 0
	}
	return int32(binary.BigEndian.Uint32(b[:]))
}

// next returns the next chunk (valid until the following call); a length
// beyond limit is an error.
func (r *chunkReader) next(limit int) []byte {
	n := r.int32()
	if r.err != nil {
		return nil
	}
	if n < 0 || int(n) > limit {
		r.setErr(fmt.Errorf("compressed register body: chunk of %d bytes (limit %d)", n, limit))
		return nil
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		r.setErr(err)
		return nil
	}
	return r.buf
}

func (r *chunkReader) setErr(err error) {
	if r.err != nil {
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("compressed register body: truncated")
	}
	r.err = err
}

// errOr reports why decoding stopped: the inflation limit, the reader's
// own error (EOF means truncated here) or fallback.
func (r *chunkReader) errOr(lr *io.LimitedReader, fallback error) error {
	switch {
	case lr.N <= 0:
		return errRegisterTooLarge
	case errors.Is(r.err, io.EOF):
		return errors.New("compressed register body: truncated")
	case r.err != nil:
		return r.err
	}
	return fallback
}

// KVTable is the body of GET_KVLIST_BY_NAMESPACE and of the REGISTER_BROKER
// response (namespace ORDER_TOPIC_CONFIG).
type KVTable struct {
	Table map[string]string `json:"table"`
}

// Encode marshals the table; nil becomes {}.
func (t *KVTable) Encode() ([]byte, error) {
	if t.Table == nil {
		return []byte(`{"table":{}}`), nil
	}
	return json.Marshal(t)
}

// TopicList is the body of GET_ALL_TOPIC_LIST_FROM_NAMESERVER and
// GET_TOPICS_BY_CLUSTER. The Go admin client decodes it with encoding/json.
type TopicList struct {
	TopicList  []string `json:"topicList"`
	BrokerAddr string   `json:"brokerAddr,omitempty"`
}

// Encode marshals the list; nil becomes [].
func (t *TopicList) Encode() ([]byte, error) {
	c := *t
	if c.TopicList == nil {
		c.TopicList = []string{}
	}
	return json.Marshal(&c)
}
