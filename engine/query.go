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
}

// QueryMessage finds messages of topic whose UNIQ_KEY or one of whose KEYS
// equals key, stored within [begin, end] (ms), at most maxNum. The index
// compares hashes only; every candidate record is read and its keys
// checked, so collisions never return a wrong message.
func (s *Store) QueryMessage(topic, key string, maxNum int, begin, end int64) (QueryResult, error) {
	offs, ts, phys, err := s.idx.Query(topic, key, maxNum, begin, end)
	if err != nil {
		return QueryResult{}, err
	}
	res := QueryResult{IndexLastUpdateTime: ts, IndexLastUpdatePhys: phys}
	for _, off := range offs {
		rec, err := s.ReadMessage(off)
		if err != nil {
			continue // removed by retention, or past a truncated end
		}
		v, err := message.Parse(rec)
		if err != nil || v.TopicString() != topic || !hasKey(v.PropertiesString(), key) {
			continue
		}
		res.Records = append(res.Records, rec)
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
