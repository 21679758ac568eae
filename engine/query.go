package engine

import (
	"slices"
	"strings"

	"github.com/mqd/mqd/internal/message"
)

// QueryResult is QUERY_MESSAGE's answer: the matching records, oldest
// first, and the newest index file's last update.
type QueryResult struct {
	Records             [][]byte
	IndexLastUpdateTime int64
	IndexLastUpdatePhys int64
	// Truncated: candidates were left unread because the next record
	// would have taken the records past the byte budget.
	Truncated bool
}

// QueryMessage finds messages of topic whose UNIQ_KEY or one of whose KEYS
// equals key, stored within [begin, end] (ms), at most maxNum. The index
// compares hashes only; every candidate record is read and its keys
// checked, so collisions never return a wrong message.
func (s *Store) QueryMessage(topic, key string, maxNum int, begin, end int64) (QueryResult, error) {
	return s.QueryMessageWithin(topic, key, maxNum, 0, begin, end)
}

// QueryMessageWithin is QueryMessage whose records total at most maxBytes
// (<= 0: no bound), but at least one record: a candidate is read only
// after its size field shows that it fits, so records beyond the budget
// are never read into memory. Candidates that turn out not to match
// (hash collisions) are read one at a time and dropped.
func (s *Store) QueryMessageWithin(topic, key string, maxNum, maxBytes int, begin, end int64) (QueryResult, error) {
	offs, ts, phys, err := s.idx.Query(topic, key, maxNum, begin, end)
	if err != nil {
		return QueryResult{}, err
	}
	res := QueryResult{IndexLastUpdateTime: ts, IndexLastUpdatePhys: phys}
	total := 0
	for _, off := range offs {
		size, err := s.recordSize(off)
		if err != nil {
			continue // removed by retention, or past a truncated end
		}
		if maxBytes > 0 && len(res.Records) > 0 && total+int(size) > maxBytes {
			res.Truncated = true
			break
		}
		rec, err := s.readSized(off, size)
		if err != nil {
			continue
		}
		v, err := message.Parse(rec)
		if err != nil || v.TopicString() != topic || !hasKey(v.PropertiesString(), key) {
			continue
		}
		res.Records = append(res.Records, rec)
		total += len(rec)
	}
	return res, nil
}

func hasKey(props, key string) bool {
	if u, ok := message.LookupProperty(props, message.PropUniqKey); ok && u == key {
		return true
	}
	keys, _ := message.LookupProperty(props, message.PropKeys)
	return slices.Contains(strings.Split(keys, " "), key)
}

func storeTimestampOf(rec []byte) (int64, error) {
	v, err := message.Parse(rec)
	if err != nil {
		return -1, err
	}
	return v.StoreTimestamp, nil
}
