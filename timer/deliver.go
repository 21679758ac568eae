package timer

import (
	"container/heap"
	"fmt"
	"strconv"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// deliver re-puts batch: due entries to their real topic, roll entries to
// Topic again. Only PUT_OK counts; on failure nothing is taken as done
// (the batch is retried, which may repeat some of it). The put does not
// wait for the flush: the store shows the copies to consumers only once
// durable under SYNC_FLUSH, and Checkpoint saves no state whose re-puts
// are not durable, so waiting here would only make the entries falling due
// meanwhile late by an fsync.
func (s *Service) deliver(batch []entry) error {
	ms := make([]*message.Message, 0, len(batch))
	now := time.Now().UnixMilli()
	var rolls int64
	for _, e := range batch {
		rec, err := s.store.ReadMessage(e.phys)
		if err != nil {
			s.skipped.Add(1)
			s.cfg.Logger.Error("timer: pending record unreadable; skipped", "physOffset", e.phys, "err", err)
			continue
		}
		v, err := message.Parse(rec)
		if err != nil || v.TopicString() != Topic {
			s.skipped.Add(1)
			s.cfg.Logger.Error("timer: slot entry does not name a timer record; skipped", "physOffset", e.phys)
			continue
		}
		m, ok := rebuild(&v, e.flags&flagRoll != 0, now)
		if !ok {
			s.skipped.Add(1)
			s.cfg.Logger.Error("timer: record without REAL_TOPIC/REAL_QID skipped", "physOffset", e.phys)
			continue
		}
		if e.flags&flagRoll != 0 {
			rolls++
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil
	}
	if err := putAll(s.store, ms); err != nil {
		return err
	}
	s.delivered.Add(int64(len(ms)) - rolls)
	s.rolled.Add(rolls)
	return nil
}

func putAll(st Store, ms []*message.Message) error {
	res := st.PutMessagesWait(ms, false)
	if res.Status == engine.PutOK {
		return nil
	}
	if res.Status != engine.MessageIllegal || len(ms) == 1 {
		return fmt.Errorf("timer: put of %d: %v (%v)", len(ms), res.Status, res.Err)
	}
	for _, m := range ms { // a batch larger than a segment: one at a time
		if r := st.PutMessageWait(m, false); r.Status != engine.PutOK {
			return fmt.Errorf("timer: put: %v (%v)", r.Status, r.Err)
		}
	}
	return nil
}

// rebuild is the message to put for a timer record: for a roll, the same
// record to Topic with TIMER_ROLL_TIMES raised; otherwise, as 5.x, the
// message to REAL_TOPIC / REAL_QID without those two properties and with
// TIMER_DEQUEUE_MS. WAIT is dropped so the put honours the flush policy.
func rebuild(v *message.View, roll bool, now int64) (*message.Message, bool) {
	props := message.RemoveProperty(v.PropertiesString(), message.PropWait)
	m := &message.Message{
		Topic: v.TopicString(), QueueID: v.QueueID, Flag: v.Flag,
		SysFlag:       v.SysFlag &^ (message.FlagBornHostV6 | message.FlagStoreHostV6),
		BornTimestamp: v.BornTimestamp, BornHost: v.BornHost(), StoreHost: v.StoreHost(),
		ReconsumeTimes: v.ReconsumeTimes, Body: append([]byte(nil), v.Body...),
	}
	if roll {
		n, _ := strconv.Atoi(propOf(v, PropRollTimes))
		m.Properties = message.AppendProperty(message.RemoveProperty(props, PropRollTimes), PropRollTimes, strconv.Itoa(n+1))
		return m, true
	}
	topic, ok := v.Property(message.PropRealTopic)
	qid, err := strconv.ParseInt(propOf(v, message.PropRealQueueID), 10, 32)
	if !ok || err != nil || qid < 0 {
		return nil, false
	}
	props = message.RemoveProperty(message.RemoveProperty(props, message.PropRealTopic), message.PropRealQueueID)
	m.Topic, m.QueueID = topic, int32(qid)
	m.Properties = message.AppendProperty(props, PropDequeueMs, strconv.FormatInt(now, 10))
	return m, true
}

// entryHeap orders the current second's entries by due time.
type entryHeap []entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].target < h[j].target }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

var _ heap.Interface = (*entryHeap)(nil)
