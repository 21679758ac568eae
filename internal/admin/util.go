package admin

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

func sortStrings(s []string) { sort.Strings(s) }

// sortedMQs is the keys of a MessageQueue map by topic, broker, queue.
func sortedMQs[V any](m map[protocol.MessageQueue]V) []protocol.MessageQueue {
	out := make([]protocol.MessageQueue, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(x, y protocol.MessageQueue) int {
		if c := strings.Compare(x.Topic, y.Topic); c != 0 {
			return c
		}
		if c := strings.Compare(x.BrokerName, y.BrokerName); c != 0 {
			return c
		}
		return int(x.QueueID - y.QueueID)
	})
	return out
}

func nowMillis() int64 { return time.Now().UnixMilli() }
