package broker

import (
	"strings"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
)

// Tag filtering (facts §2.3, §7.3). The consume queue stores Java's
// String.hashCode of each record's TAGS; a subscription "a || b" passes the
// entries whose code is one of hash("a"), hash("b"). The codes are always
// computed here from the tag strings (the Go client's codeSet hashes UTF-8
// bytes, wrong for non-ASCII tags), and every record that passes the code
// check is checked again against the exact tag strings, so hash collisions
// never reach the consumer.

// tagFilter is an engine.MessageFilter for a TAG subscription other than
// "*". It is immutable once built and shared by concurrent pulls.
type tagFilter struct {
	codes map[int32]struct{}
	tags  map[string]struct{}
}

var _ engine.MessageFilter = (*tagFilter)(nil)

// MatchTagsCode checks a consume-queue entry's tag code.
func (f *tagFilter) MatchTagsCode(tagsCode int64) bool {
	_, ok := f.codes[int32(tagsCode)]
	return ok
}

// MatchRecord checks the record's TAGS property against the tag strings.
func (f *tagFilter) MatchRecord(record []byte) bool {
	v, err := message.Parse(record)
	if err != nil {
		return false
	}
	tags, _ := v.Property(message.PropTags)
	_, ok := f.tags[tags]
	return ok
}

// matchesArrival is the cheap check used to wake a parked pull: the code
// only (nil filter = every message).
func (f *tagFilter) matchesArrival(tagsCode int64) bool {
	return f == nil || f.MatchTagsCode(tagsCode)
}

// messageFilter converts f to the engine interface; nil (match all) stays
// an untyped nil so the engine skips filtering.
func (f *tagFilter) messageFilter() engine.MessageFilter {
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
func newTagFilter(subString string, tags []string) *tagFilter {
	if isSubAll(subString) {
		return nil
	}
	if len(tags) == 0 {
		tags = splitTags(subString)
	}
	f := &tagFilter{codes: make(map[int32]struct{}, len(tags)), tags: make(map[string]struct{}, len(tags))}
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
	filter *tagFilter // nil: every message (also for class-filter mode)
	sql    bool       // non-TAG expression (SQL92): not supported yet
}

// newSubscription normalises a heartbeat (or pull-header) subscription.
func newSubscription(sd protocol.SubscriptionData) *subscription {
	s := &subscription{data: sd}
	if !isTagType(sd.ExpressionType) {
		s.sql = true
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
