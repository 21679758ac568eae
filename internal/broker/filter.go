package broker

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/filter"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Message filtering (Java's PullMessageProcessor and MessageExtBrokerInner.tagsString2tagsCode and org.apache.rocketmq.filter).
//
// Tags: the consume queue stores Java's String.hashCode of each record's
// TAGS; a subscription "a || b" passes the entries whose code is one of
// hash("a"), hash("b"). The codes are always computed here from the tag
// strings (the Go client's codeSet hashes UTF-8 bytes, wrong for non-ASCII
// tags), and every record that passes the code check is checked again
// against the exact tag strings, so hash collisions never reach the
// consumer.
//
// SQL92: the expression (from the heartbeat, or from the pull header with
// the SUBSCRIPTION bit) is compiled once per subscription version, through
// a cache keyed by the expression text (Java's SelectorParser cache), and
// evaluated on each scanned record's stored properties (TAGS included) at
// pull time; the scan is bounded as for tags. There is no bloom filter
// (Java's enableCalcFilterBitMap, off by default there too).

// msgFilter is an engine.MessageFilter for a TAG subscription other than
// "*" or for a SQL92 one. It is immutable once built and shared by
// concurrent pulls; nil means every message.
type msgFilter struct {
	codes map[int32]struct{}
	tags  map[string]struct{}
	sql   *filter.Expr // set: a SQL92 filter, codes and tags unused
	keys  []string     // SQL92: the properties the expression reads
}

var _ engine.MessageFilter = (*msgFilter)(nil)

// MatchTagsCode checks a consume-queue entry's tag code (SQL92: all pass).
func (f *msgFilter) MatchTagsCode(tagsCode int64) bool {
	if f.sql != nil {
		return true
	}
	_, ok := f.codes[int32(tagsCode)]
	return ok
}

// MatchRecord checks the record's TAGS property against the tag strings,
// or evaluates the SQL92 expression on its properties (Java:
// ExpressionMessageFilter.isMatchedByCommitLog: only TRUE selects).
func (f *msgFilter) MatchRecord(record []byte) bool {
	v, err := message.Parse(record)
	if err != nil {
		return false
	}
	if f.sql != nil {
		return f.matchProps(v.PropertiesString())
	}
	tags, _ := v.Property(message.PropTags)
	_, ok := f.tags[tags]
	return ok
}

// matchesArrival is the check used to wake a parked pull (nil filter =
// every message): the tag code, or the SQL92 expression on the new
// record's properties, as Java's PullRequestHoldService does.
func (f *msgFilter) matchesArrival(r *engine.DispatchRequest) bool {
	if f == nil {
		return true
	}
	if f.sql != nil {
		return f.matchProps(r.Properties)
	}
	return f.MatchTagsCode(r.TagsCode)
}

// newSQLFilter is the filter of a compiled SQL92 expression.
func newSQLFilter(e *filter.Expr) *msgFilter {
	return &msgFilter{sql: e, keys: e.Properties()}
}

// maxScanKeys bounds the properties resolved in one pass over a record's
// properties; an expression reading more looks each one up on demand.
const maxScanKeys = 16

// matchProps evaluates the SQL92 expression on an encoded properties
// string. The properties it reads are found in one pass over the string
// (allocation-free), then served by position.
func (f *msgFilter) matchProps(props string) bool {
	if len(f.keys) > maxScanKeys {
		return f.sql.Match(func(name string) (string, bool) { return message.LookupProperty(props, name) })
	}
	var vals [maxScanKeys]string
	found := scanProps(props, f.keys, &vals)
	return f.sql.Match(func(name string) (string, bool) {
		for i, k := range f.keys {
			if k == name {
				return vals[i], found&(1<<i) != 0
			}
		}
		return message.LookupProperty(props, name)
	})
}

// scanProps finds keys (at most maxScanKeys) in an encoded properties
// string (Java's MessageDecoder.messageProperties2String) in one pass: for each key, the value of the first
// chunk with that key and a non-empty value, as message.LookupProperty
// answers. Bit i of found is set when keys[i] was found.
func scanProps(props string, keys []string, vals *[maxScanKeys]string) (found uint32) {
	all := uint32(1)<<len(keys) - 1
	for rest := props; rest != "" && found != all; {
		chunk := rest
		if end := strings.IndexByte(rest, message.PropertySep); end >= 0 {
			chunk, rest = rest[:end], rest[end+1:]
		} else {
			rest = ""
		}
		sep := strings.IndexByte(chunk, message.NameValueSep)
		if sep <= 0 || sep == len(chunk)-1 {
			continue
		}
		key := chunk[:sep]
		for i, k := range keys {
			if found&(1<<i) == 0 && k == key {
				vals[i], found = chunk[sep+1:], found|1<<i
				break
			}
		}
	}
	return found
}

// messageFilter converts f to the engine interface; nil (match all) stays
// an untyped nil so the engine skips filtering.
func (f *msgFilter) messageFilter() engine.MessageFilter {
	if f == nil {
		return nil
	}
	return f
}

// isTagType reports whether an expression type means tag filtering, as
// Java's ExpressionType.isTagType does (absent, empty or "TAG").
func isTagType(expressionType string) bool {
	return expressionType == "" || expressionType == protocol.ExpressionTypeTag
}

// splitTags splits "a || b" into trimmed, non-empty tags.
func splitTags(subString string) []string {
	var out []string
	for _, t := range strings.Split(subString, "||") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// isSubAll reports whether a TAG expression selects every message.
func isSubAll(subString string) bool {
	s := strings.TrimSpace(subString)
	return s == "" || s == protocol.SubAll
}

// newTagFilter builds the filter of a TAG subscription; nil means "every
// message". tags, when non-empty, is the client's tag list (heartbeat
// tagsSet); otherwise the tags are parsed from subString.
func newTagFilter(subString string, tags []string) *msgFilter {
	if isSubAll(subString) {
		return nil
	}
	if len(tags) == 0 {
		tags = splitTags(subString)
	}
	f := &msgFilter{codes: make(map[int32]struct{}, len(tags)), tags: make(map[string]struct{}, len(tags))}
	for _, t := range tags {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		f.tags[t] = struct{}{}
		f.codes[message.JavaStringHash(t)] = struct{}{}
	}
	return f
}

// subscription is one topic of a consumer group as the broker keeps it:
// the client's data with the tag codes recomputed, and its filter.
type subscription struct {
	data   protocol.SubscriptionData
	filter *msgFilter   // nil: every message (also for class-filter mode)
	sql    *compiledSQL // non-TAG expression: its compilation (sql.err when it failed)
}

// newSubscription normalises a heartbeat (or pull-header) subscription.
func newSubscription(sd protocol.SubscriptionData) *subscription {
	s := &subscription{data: sd}
	if !isTagType(sd.ExpressionType) {
		s.sql = sqlCache.get(sd.ExpressionType, sd.SubString)
		if s.sql.err == nil && !sd.ClassFilterMode {
			s.filter = newSQLFilter(s.sql.expr)
		}
		return s
	}
	if isSubAll(sd.SubString) {
		s.data.SubString = protocol.SubAll
	}
	var tags []string
	if !isSubAll(sd.SubString) {
		if tags = sd.TagsSet; len(tags) == 0 {
			tags = splitTags(sd.SubString)
		}
	}
	s.data.TagsSet = make([]string, 0, len(tags))
	s.data.CodeSet = make(protocol.CodeSet, 0, len(tags))
	for _, t := range tags {
		if t = strings.TrimSpace(t); t != "" {
			s.data.TagsSet = append(s.data.TagsSet, t)
			s.data.CodeSet = append(s.data.CodeSet, message.JavaStringHash(t))
		}
	}
	if !sd.ClassFilterMode {
		s.filter = newTagFilter(s.data.SubString, s.data.TagsSet)
	}
	return s
}

// sqlNotSupportedRemark is Java's remark when enablePropertyFilter=false.
func sqlNotSupportedRemark(expressionType string) string {
	return "The broker does not support consumer to filter message by " + expressionType
}

// compiledSQL is one compiled expression (or its compile error), shared by
// every subscription with the same text.
type compiledSQL struct {
	expr   *filter.Expr
	err    error
	warned atomic.Bool // the failure (or ignored tail) was logged once
}

// exprCache is Java's SelectorParser.PARSE_CACHE: compiled expressions by
// text, bounded in entries and bytes (emptied when full).
type exprCache struct {
	mu    sync.Mutex
	m     map[string]*compiledSQL
	bytes int
}

const (
	sqlCacheEntries = 512
	sqlCacheBytes   = 4 << 20
)

var sqlCache = &exprCache{m: map[string]*compiledSQL{}}

// get compiles src as an expression of expressionType, or returns the
// cached result.
func (c *exprCache) get(expressionType, src string) *compiledSQL {
	if expressionType != protocol.ExpressionTypeSQL92 {
		return &compiledSQL{err: errUnsupportedType(expressionType)}
	}
	c.mu.Lock()
	e := c.m[src]
	c.mu.Unlock()
	if e != nil {
		return e
	}
	e = &compiledSQL{}
	if strings.TrimSpace(src) == "" {
		e.err = errEmptyExpression
	} else {
		e.expr, e.err = filter.Compile(src)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[src]; old != nil {
		return old
	}
	if len(c.m) >= sqlCacheEntries || c.bytes+len(src) > sqlCacheBytes {
		clear(c.m)
		c.bytes = 0
	}
	if len(src) <= sqlCacheBytes/8 {
		c.m[src] = e
		c.bytes += len(src)
	}
	return e
}

type filterError string

func (e filterError) Error() string { return string(e) }

const errEmptyExpression = filterError("the expression is empty")

func errUnsupportedType(t string) error {
	return filterError("expression type " + t + " is not supported (TAG or SQL92)")
}

// sqlParseRemark is the remark of a compile failure: Java's
// MQFilterException message and the reason.
func sqlParseRemark(err error) string {
	return "Invalid MessageSelector. " + err.Error()
}

// warnSQL logs a subscription's compile failure, or the text Java's
// parser ignores after a valid expression, once per expression.
func (b *Broker) warnSQL(c *compiledSQL, group, topic string) {
	if c == nil || c.warned.Swap(true) {
		return
	}
	switch {
	case c.err != nil:
		b.log.Warn("broker: SQL92 subscription does not compile", "group", group, "topic", topic, "err", c.err)
	case c.expr.Ignored() != "":
		b.log.Warn("broker: SQL92 subscription has text after the expression, ignored as Java does",
			"group", group, "topic", topic, "expression", c.expr.String(), "ignored", c.expr.Ignored())
	}
}

// checkSQLPull applies Java's SQL92 checks to a pull's subscription (after
// the subscription lookup): a heartbeat subscription that did not compile
// has no filter data (27), a property filter needs enablePropertyFilter
// (1). Pull-header subscriptions that do not compile were answered 23 by
// pullSubscription.
func (b *Broker) checkSQLPull(req *protocol.Command, sub *subscription, group string) *protocol.Command {
	if isTagType(sub.data.ExpressionType) {
		return nil
	}
	b.warnSQL(sub.sql, group, sub.data.Topic)
	if sub.sql.err != nil {
		return protocol.NewResponse(req, protocol.ResponseFilterDataNotExist,
			"The broker's consumer filter data is not exist!Your expression may be wrong! "+sqlParseRemark(sub.sql.err))
	}
	if !b.cfg.EnablePropertyFilter {
		return protocol.NewResponse(req, protocol.ResponseSystemError, sqlNotSupportedRemark(sub.data.ExpressionType))
	}
	return nil
}

// headerSQLFailed answers a pull whose own (header) subscription does not
// compile: 23, as Java's PullMessageProcessor.
func (b *Broker) headerSQLFailed(req *protocol.Command, sub *subscription, group string) *protocol.Command {
	if sub.sql == nil || sub.sql.err == nil {
		return nil
	}
	b.warnSQL(sub.sql, group, sub.data.Topic)
	return protocol.NewResponse(req, protocol.ResponseSubscriptionParseFailed,
		"parse the consumer's subscription failed: "+sqlParseRemark(sub.sql.err))
}

func (b *Broker) registerFilter() {
	b.server.Handle(protocol.CheckClientConfig, b.handleCheckClientConfig)
}

// handleCheckClientConfig is CHECK_CLIENT_CONFIG (46), sent by Java
// consumers at start (Java: ClientManageProcessor.checkClientConfig): a
// TAG subscription passes; a property filter needs enablePropertyFilter
// (1) and an expression that compiles (23, remark: why).
func (b *Broker) handleCheckClientConfig(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	body, err := protocol.DecodeCheckClientConfigBody(req.Body)
	if err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, "bad CHECK_CLIENT_CONFIG body: "+err.Error())
	}
	sd := body.SubscriptionData
	if sd == nil || isTagType(sd.ExpressionType) {
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	}
	if !b.cfg.EnablePropertyFilter {
		return protocol.NewResponse(req, protocol.ResponseSystemError, sqlNotSupportedRemark(sd.ExpressionType))
	}
	c := sqlCache.get(sd.ExpressionType, sd.SubString)
	if c.err != nil {
		b.log.Warn("broker: client filters with an expression that does not compile", "client", body.ClientID,
			"group", body.Group, "topic", sd.Topic, "remote", conn.RemoteAddrString(), "err", c.err)
		return protocol.NewResponse(req, protocol.ResponseSubscriptionParseFailed, sqlParseRemark(c.err))
	}
	b.warnSQL(c, body.Group, sd.Topic)
	return protocol.NewResponse(req, protocol.ResponseSuccess, "")
}
