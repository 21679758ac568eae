package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/internal/message"
)

// Delay levels (Java's ScheduleMessageService). A message sent with DELAY=n is stored
// by the broker in ScheduleTopic, queue n−1; the dispatcher writes its due
// time, not its tag hash, into the consume-queue entry's tagsCode, as the
// Java store does. The schedule package delivers it when due.

// ScheduleTopic is RocketMQ's RMQ_SYS_SCHEDULE_TOPIC.
const ScheduleTopic = "SCHEDULE_TOPIC_XXXX"

// DefaultMessageDelayLevel is Java's messageDelayLevel default.
const DefaultMessageDelayLevel = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// ParseDelayLevels parses a messageDelayLevel string: space-separated
// positive numbers each followed by one unit of s, m, h or d. The number of
// entries is the maximum level.
func ParseDelayLevels(s string) ([]time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	var out []time.Duration
	for _, f := range strings.Fields(s) {
		unit, ok := units[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 32)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("messageDelayLevel: bad level %q (want a positive number and one of s, m, h, d)", f)
		}
		out = append(out, time.Duration(n)*unit)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("messageDelayLevel: no levels in %q", s)
	}
	return out, nil
}

// ClampDelayLevel maps a DELAY value to the level used: above the maximum
// → the maximum (Java); ok is false for levels ≤ 0 (not delayed).
func ClampDelayLevel(levels []time.Duration, level int) (int, bool) {
	if level <= 0 || len(levels) == 0 {
		return 0, false
	}
	return min(level, len(levels)), true
}

// DeliverTimestamp is a schedule record's due time in epoch ms: its store
// time plus its level's delay (Java's computeDeliverTimestamp).
func DeliverTimestamp(levels []time.Duration, level int, storeTimestamp int64) int64 {
	if l, ok := ClampDelayLevel(levels, level); ok {
		return storeTimestamp + levels[l-1].Milliseconds()
	}
	return storeTimestamp + 1000
}

// scheduleTagsCode is the tagsCode of a ScheduleTopic record carrying a
// positive DELAY (Java's ScheduleMessageService: the tags code is the delivery time); ok is false for every other record.
func (c *Config) scheduleTagsCode(r *DispatchRequest) (int64, bool) {
	if r.Topic != ScheduleTopic {
		return 0, false
	}
	v, ok := message.LookupProperty(r.Properties, message.PropDelay)
	if !ok {
		return 0, false
	}
	level, err := strconv.Atoi(v)
	if err != nil || level <= 0 {
		return 0, false
	}
	return DeliverTimestamp(c.DelayLevels, level, r.StoreTimestamp), true
}

func (c *Config) delayDefaults() {
	if len(c.DelayLevels) == 0 {
		c.DelayLevels, _ = ParseDelayLevels(DefaultMessageDelayLevel)
	}
}
