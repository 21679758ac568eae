package broker

// Timer messages (RocketMQ 5.x, Java's 5.x TimerMessageStore): a send carrying
// TIMER_DELAY_SEC, TIMER_DELAY_MS or TIMER_DELIVER_MS (and no DELAY level)
// is stored in rmq_sys_wheel_timer with TIMER_OUT_MS = its due time and
// REAL_TOPIC / REAL_QID; the timer package re-puts it when due. Its state
// is saved in config/timercheck.json (timer/FORMAT.md).

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/timer"
)

// TimerConfig holds the timer keys (5.x MessageStoreConfig names).
type TimerConfig struct {
	WheelEnable bool          // timerWheelEnable, true
	MaxDelay    time.Duration // timerMaxDelaySec, 3 days
	RollWindow  time.Duration // timerRollWindowSlot × 1 s, 2 days
}

const timerCheckFile = "timercheck.json"

func applyTimerProperty(c *Config, k, v string) (bool, error) {
	var n int64
	switch k {
	case "timerWheelEnable":
		return true, setBool(&c.Timer.WheelEnable, v)
	case "timerMaxDelaySec":
		err := setInt64(&n, v)
		c.Timer.MaxDelay = time.Duration(n) * time.Second
		return true, err
	case "timerRollWindowSlot":
		err := setInt64(&n, v)
		c.Timer.RollWindow = time.Duration(n) * time.Second
		return true, err
	}
	return false, nil
}

func (b *Broker) initTimer(storeDir string) error {
	if b.cfg.Timer.MaxDelay <= 0 {
		b.cfg.Timer.MaxDelay = 3 * 24 * time.Hour
	}
	svc, err := timer.New(timer.Config{Dir: filepath.Join(storeDir, "timer"), RollWindow: b.cfg.Timer.RollWindow, Logger: b.log})
	b.timers = svc
	return err
}

func (b *Broker) timerCheckPath() string {
	return filepath.Join(b.cfg.Store.Dir, "config", timerCheckFile)
}

func (b *Broker) attachTimer() error {
	var saved *timer.State
	err := loadFile(b.timerCheckPath(), func(data []byte) error {
		var st timer.State
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		saved = &st
		return nil
	})
	if err != nil {
		return err
	}
	return b.timers.SetStore(b.store, saved)
}

func (b *Broker) startTimer() {
	b.goLoop(b.timers.Run)
	b.goLoop(b.timerCheckpointLoop)
}

// timerCheckpointLoop saves the timer's durable state every second (5.x
// timerFlushIntervalMs) and drops the slot files it no longer needs.
func (b *Broker) timerCheckpointLoop(stop <-chan struct{}) {
	tickLoop(stop, time.Second, func() { // delay.go
		st, ok, err := b.timers.Checkpoint()
		if err == nil && ok {
			err = b.saveTimerState(st)
		}
		if err != nil {
			b.log.Error("timer: checkpoint", "err", err)
		}
	})
}

func (b *Broker) saveTimerState(st timer.State) error {
	if err := saveJSON(b.timerCheckPath(), st); err != nil {
		return err
	}
	return b.timers.Saved(st)
}

// closeTimer saves the final state once the store closed cleanly.
func (b *Broker) closeTimer(storeErr error) error {
	if b.timers == nil || storeErr != nil {
		return nil
	}
	st, err := b.timers.FinalState()
	if err != nil {
		return err
	}
	return saveJSON(b.timerCheckPath(), st)
}

// routeTimer moves a timer message to rmq_sys_wheel_timer (5.x
// HookUtils.handleScheduleMessage): refused when the wheel is disabled or
// the time is unparsable or too far; stored as is when already due.
func (b *Broker) routeTimer(req *protocol.Command, m *message.Message) *protocol.Command {
	if !hasTimer(m.Properties) || delayLevel(m.Properties) > 0 {
		return nil
	}
	if _, ok := message.LookupProperty(m.Properties, timer.PropOutMs); ok {
		return nil
	}
	if !b.cfg.Timer.WheelEnable {
		return respond(req, protocol.ResponseSystemError, remarkNoTimer)
	}
	now := time.Now().UnixMilli()
	target, err := timerTarget(m.Properties, now)
	if err != nil {
		b.log.Warn("timer message refused", "topic", m.Topic, "err", err)
		return respond(req, protocol.ResponseMessageIllegal, "timer message illegal, "+err.Error())
	}
	if target <= now {
		return nil
	}
	if maxMs := b.conf().Timer.MaxDelay.Milliseconds(); target-now > maxMs { // live: UPDATE_BROKER_CONFIG
		return respond(req, protocol.ResponseMessageIllegal, fmt.Sprintf(
			"timer message illegal, the delay time should not be bigger than the max delay %dms; topic %s", maxMs, m.Topic))
	}
	props := message.AppendProperty(m.Properties, timer.PropOutMs, strconv.FormatInt(target, 10))
	props = message.AppendProperty(props, message.PropRealTopic, m.Topic)
	m.Properties = message.AppendProperty(props, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
	m.Topic, m.QueueID = timer.Topic, 0
	return nil
}

// timerTarget is the due time: TIMER_DELAY_SEC wins over TIMER_DELAY_MS,
// which wins over TIMER_DELIVER_MS (5.x); relative ones count from now.
func timerTarget(props string, now int64) (int64, error) {
	for _, p := range []struct {
		key  string
		unit int64
		rel  bool
	}{{propTimerSec, 1000, true}, {propTimerMs, 1, true}, {propTimerDeliver, 1, false}} {
		v, ok := message.LookupProperty(props, p.key)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<53/p.unit {
			return 0, fmt.Errorf("%s=%q is not a valid number", p.key, v)
		}
		if p.rel {
			return now + n*p.unit, nil
		}
		return n, nil
	}
	return 0, fmt.Errorf("no timer property")
}

// timerRuntimeInfo adds the timer's progress to the runtime info.
func (b *Broker) timerRuntimeInfo(t map[string]string) {
	st := b.timers.Stats()
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	t["timerEnqueueBehind"] = i64(st.EnqueueBehind)
	t["timerReadTimeMs"] = i64(st.ReadSecond * 1000)
	t["timerDequeueBehindMs"] = i64(st.DequeueBehind.Milliseconds())
	t["timerDelivered"] = i64(st.Sent)
	t["timerRolled"] = i64(st.Rolled)
}
