package broker

// Delay levels, broker side (Java's ScheduleMessageService and SendMessageProcessor.consumerSendMsgBack (delayLevel) and 5.x HookUtils.handleScheduleMessage): the send
// and send-back paths move a message with DELAY > 0 to
// SCHEDULE_TOPIC_XXXX queue level−1 with REAL_TOPIC / REAL_QID; the
// schedule package re-puts it when due; this file persists the per-level
// delivery offsets (config/delayOffset.json, FORMAT.md in schedule/) and
// answers GET_ALL_DELAY_OFFSET and the runtime-info keys.
//
// The 5.x timer properties (TIMER_DELIVER_MS, TIMER_DELAY_SEC,
// TIMER_DELAY_MS) are handled by timer.go, unless DELAY > 0 is set too, in
// which case the delay level wins and they are dropped (as in 5.x).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/schedule"
)

// DelayConfig holds the delay keys that are not the engine's.
type DelayConfig struct {
	// FlushDelayOffsetInterval is how often delayOffset.json is saved
	// (flushDelayOffsetInterval; Java 10 s, mqd 1 s): after a kill -9 at
	// most this much delivery is repeated.
	FlushDelayOffsetInterval time.Duration
}

const (
	delayOffsetFile  = "delayOffset.json"
	remarkNoTimer    = "accurate timer message is not enabled, timerWheelEnable is false"
	propTimerDeliver = "TIMER_DELIVER_MS"
	propTimerSec     = "TIMER_DELAY_SEC"
	propTimerMs      = "TIMER_DELAY_MS"
)

// applyDelayProperty parses messageDelayLevel and flushDelayOffsetInterval.
func applyDelayProperty(c *Config, k, v string) (bool, error) {
	switch k {
	case "messageDelayLevel":
		levels, err := engine.ParseDelayLevels(v)
		c.Store.DelayLevels = levels
		return true, err
	case "flushDelayOffsetInterval":
		return true, setMillis(&c.Delay.FlushDelayOffsetInterval, v)
	}
	return false, nil
}

// initDelay creates the delivery services (delay levels, timer.go's timer)
// before the store opens: they are dispatchers of the store.
func (b *Broker) initDelay(storeCfg *engine.Config) error {
	if len(storeCfg.DelayLevels) == 0 {
		storeCfg.DelayLevels, _ = engine.ParseDelayLevels(engine.DefaultMessageDelayLevel)
	}
	b.cfg.Store.DelayLevels = storeCfg.DelayLevels
	if b.cfg.Delay.FlushDelayOffsetInterval <= 0 {
		b.cfg.Delay.FlushDelayOffsetInterval = time.Second
	}
	b.sched = schedule.New(schedule.Config{Levels: storeCfg.DelayLevels, Logger: b.log})
	if err := b.initTimer(storeCfg.Dir); err != nil {
		return err
	}
	storeCfg.Dispatchers = append(storeCfg.Dispatchers, b.sched, b.timers)
	return nil
}

// attachDelay loads delayOffset.json once the store is open.
func (b *Broker) attachDelay() error {
	offsets := map[int]int64{}
	err := loadFile(b.delayOffsetPath(), func(data []byte) error {
		m, err := decodeDelayOffsets(data)
		offsets = m
		return err
	})
	if err != nil {
		return err
	}
	b.sched.SetStore(b.store, offsets)
	return b.attachTimer()
}

func (b *Broker) startDelay() {
	b.goLoop(b.sched.Run)
	b.goLoop(b.delayOffsetLoop)
	b.startTimer()
}

func (b *Broker) delayOffsetPath() string {
	return filepath.Join(b.cfg.Store.Dir, "config", delayOffsetFile)
}

// delayOffsetLoop saves the newest durable delivery offsets.
func (b *Broker) delayOffsetLoop(stop <-chan struct{}) {
	tickLoop(stop, b.cfg.Delay.FlushDelayOffsetInterval, func() {
		if offs, ok := b.sched.Checkpoint(); ok {
			if err := saveFile(b.delayOffsetPath(), encodeDelayOffsets(offs)); err != nil {
				b.log.Error("save delayOffset.json", "err", err)
			}
		}
	})
}

// tickLoop calls f every d until stop is closed.
func tickLoop(stop <-chan struct{}, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f()
		}
	}
}

// closeDelay saves the final offsets after the store closed cleanly (every
// delivered copy is then durable).
func (b *Broker) closeDelay(storeErr error) error {
	if b.sched == nil || storeErr != nil {
		return nil
	}
	return errors.Join(saveFile(b.delayOffsetPath(), encodeDelayOffsets(b.sched.Offsets())), b.closeTimer(storeErr))
}

// encodeDelayOffsets is Java's DelayOffsetSerializeWrapper as fastjson
// writes it: {"offsetTable":{1:12,2:0}} (integer keys unquoted).
func encodeDelayOffsets(offs map[int]int64) []byte {
	levels := make([]int, 0, len(offs))
	for l := range offs {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	var buf bytes.Buffer
	buf.WriteString(`{"offsetTable":{`)
	for i, l := range levels {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, "%d:%d", l, offs[l])
	}
	buf.WriteString("}}")
	return buf.Bytes()
}

var unquotedIntKey = regexp.MustCompile(`([{,]\s*)(-?\d+)(\s*:)`)

// decodeDelayOffsets reads Java's form and standard JSON (quoted keys).
func decodeDelayOffsets(data []byte) (map[int]int64, error) {
	var w struct {
		OffsetTable map[int]int64 `json:"offsetTable"`
	}
	if err := json.Unmarshal(unquotedIntKey.ReplaceAll(data, []byte(`$1"$2"$3`)), &w); err != nil {
		return nil, fmt.Errorf("%s: %w", delayOffsetFile, err)
	}
	return w.OffsetTable, nil
}

// routeDelay moves a message with DELAY > 0 to SCHEDULE_TOPIC_XXXX queue
// level−1 (level clamped to the maximum, DELAY rewritten then, as Java
// does), recording REAL_TOPIC / REAL_QID and dropping timer properties.
func (b *Broker) routeDelay(m *message.Message) {
	level := delayLevel(m.Properties)
	lv, ok := engine.ClampDelayLevel(b.cfg.Store.DelayLevels, level)
	if !ok {
		return
	}
	props := m.Properties
	for _, k := range []string{propTimerDeliver, propTimerSec, propTimerMs} {
		props = message.RemoveProperty(props, k)
	}
	if lv != level {
		props = message.AppendProperty(message.RemoveProperty(props, message.PropDelay), message.PropDelay, strconv.Itoa(lv))
	}
	props = message.AppendProperty(props, message.PropRealTopic, m.Topic)
	m.Properties = message.AppendProperty(props, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
	m.Topic, m.QueueID = engine.ScheduleTopic, int32(lv-1)
}

// routeScheduled sends a delayed or timer message to where it waits
// (delay levels win over timer properties, as in 5.x).
func (b *Broker) routeScheduled(req *protocol.Command, m *message.Message) *protocol.Command {
	b.routeDelay(m)
	return b.routeTimer(req, m) // timer.go
}

func hasTimer(props string) bool { return scanSendFlags(props).timer }

func (b *Broker) registerDelay() {
	b.server.Handle(protocol.GetAllDelayOffset, b.handleGetAllDelayOffset)
}

// handleGetAllDelayOffset returns the delivery offsets in
// delayOffset.json's format (Java's ScheduleMessageService.encode).
func (b *Broker) handleGetAllDelayOffset(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	return bodyResponse(req, encodeDelayOffsets(b.sched.Offsets()), nil)
}

// delayRuntimeInfo adds Java's scheduleMessageOffset_<level> keys
// ("delivered,max") and mqd's totals: messages waiting on all levels, and
// the largest lateness of each level's last delivery.
func (b *Broker) delayRuntimeInfo(t map[string]string) {
	var pending, late int64
	for _, st := range b.sched.Stats() {
		t["scheduleMessageOffset_"+strconv.Itoa(st.Level)] = fmt.Sprintf("%d,%d", st.Delivered, st.Max)
		pending += st.Pending
		late = max(late, st.LateMs)
	}
	t["scheduleMessagePending"] = strconv.FormatInt(pending, 10)
	t["scheduleMessageLastLatenessMs"] = strconv.FormatInt(late, 10)
	b.timerRuntimeInfo(t)
}
