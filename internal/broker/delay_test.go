package broker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
)

// shortDelayLevels sets three test levels: 100, 200 and 300 ms.
func shortDelayLevels(c *Config) {
	c.Store.DelayLevels = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
}

// tagsCodeFilter records the consume-queue tagsCode of what it sees.
type tagsCodeFilter struct{ codes []int64 }

func (f *tagsCodeFilter) MatchTagsCode(c int64) bool { f.codes = append(f.codes, c); return true }
func (f *tagsCodeFilter) MatchRecord([]byte) bool    { return true }

func TestDelayConfKeys(t *testing.T) {
	cfg := NewConfig()
	ignored, err := ApplyProperties(map[string]string{"messageDelayLevel": "1s 2m 3h 1d", "flushDelayOffsetInterval": "2500"}, &cfg)
	if err != nil || len(ignored) != 0 {
		t.Fatal(err, ignored)
	}
	want := []time.Duration{time.Second, 2 * time.Minute, 3 * time.Hour, 24 * time.Hour}
	if len(cfg.Store.DelayLevels) != 4 || cfg.Store.DelayLevels[3] != want[3] || cfg.Delay.FlushDelayOffsetInterval != 2500*time.Millisecond {
		t.Fatal(cfg.Store.DelayLevels, cfg.Delay)
	}
	ignored, err = ApplyProperties(map[string]string{"timerWheelEnable": "false", "timerMaxDelaySec": "60", "timerRollWindowSlot": "30"}, &cfg)
	if err != nil || len(ignored) != 0 || cfg.Timer.WheelEnable || cfg.Timer.MaxDelay != time.Minute || cfg.Timer.RollWindow != 30*time.Second {
		t.Fatal(err, ignored, cfg.Timer)
	}
	for _, bad := range []string{"", "1x", "s", "-1s", "1s 0m"} {
		if _, err := ApplyProperties(map[string]string{"messageDelayLevel": bad}, &cfg); err == nil {
			t.Errorf("messageDelayLevel %q accepted", bad)
		}
	}
}

func TestDelayDeliversAtDueTimeWithPropertiesIntact(t *testing.T) {
	b, c := startBroker(t, shortDelayLevels)
	props := "TAGS\x01tg\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01U1\x02color\x01red\x02DELAY\x012"
	sent := time.Now().UnixMilli()
	rh := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("DT", 1, props), []byte("later")))
	if rh.QueueID != 1 {
		t.Fatalf("response queue %d", rh.QueueID)
	}
	awaitCond(t, "delivery", func() bool { return b.store.MaxOffsetInQueue("DT", 1) == 1 })
	// The schedule entry's tagsCode is its due time: store time + 200 ms.
	f := &tagsCodeFilter{}
	r := b.store.GetMessage(engine.ScheduleTopic, 1, 0, 1, f)
	sv, _ := message.Parse(r.Messages[0])
	if len(f.codes) != 1 || f.codes[0] != sv.StoreTimestamp+200 {
		t.Fatalf("schedule tagsCode %v, store time %d", f.codes, sv.StoreTimestamp)
	}
	r.Release()
	r = b.store.GetMessage("DT", 1, 0, 1, nil)
	defer r.Release()
	v, _ := message.Parse(r.Messages[0])
	if v.StoreTimestamp < sv.StoreTimestamp+200 || v.StoreTimestamp < sent+200 {
		t.Fatalf("delivered at %d, scheduled at %d", v.StoreTimestamp, sv.StoreTimestamp)
	}
	got := message.ParseProperties(v.PropertiesString())
	for k, want := range map[string]string{"TAGS": "tg", "KEYS": "k1 k2", "UNIQ_KEY": "U1", "color": "red",
		"REAL_TOPIC": "DT", "REAL_QID": "1", "DELAY": "2"} {
		if got[k] != want {
			t.Errorf("property %s = %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
	if string(v.Body) != "later" || v.Flag != 7 || v.BornTimestamp != 1_700_000_000_000 || v.TopicString() != "DT" {
		t.Fatalf("delivered %q flag %d born %d topic %s", v.Body, v.Flag, v.BornTimestamp, v.TopicString())
	}
	if _, ok := got[message.PropWait]; ok {
		t.Fatal("WAIT kept")
	}
}

func TestDelayLevelClampedToMax(t *testing.T) {
	b, c := startBroker(t, shortDelayLevels)
	rh := mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("DC", 0, "DELAY\x0199"), []byte("x")))
	v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID))
	if v.QueueID != 2 {
		t.Fatalf("queue %d", v.QueueID)
	}
	if d, _ := v.Property(message.PropDelay); d != "3" {
		t.Fatalf("DELAY %q", d)
	}
	awaitCond(t, "delivery", func() bool { return b.store.MaxOffsetInQueue("DC", 0) == 1 })
}

func TestTimerMessages(t *testing.T) {
	b, c := startBroker(t, shortDelayLevels)
	expect := func(props string, code int16) *protocol.Command {
		t.Helper()
		resp := produce(t, c, protocol.SendMessage, sendHeader("TT", 1, props), []byte("x"))
		if resp.Code != code {
			t.Fatalf("%q: %d %q, want %d", props, resp.Code, resp.Remark, code)
		}
		return resp
	}
	for _, p := range []string{"TIMER_DELAY_SEC\x01999999999", "TIMER_DELAY_MS\x01abc", "TIMER_DELIVER_MS\x01-5"} {
		if r := expect(p, protocol.ResponseMessageIllegal); !strings.Contains(r.Remark, "timer message illegal") {
			t.Fatalf("remark %q", r.Remark)
		}
	}
	resp := produce(t, c, protocol.SendBatchMessage, batchHeader("TT", "TIMER_DELAY_MS\x0150"), batchBody(t, 2))
	expectCode(t, resp, protocol.ResponseMessageIllegal)
	// Already due: stored straight into the topic.
	rh := mustSendOK(t, expect("TIMER_DELIVER_MS\x011", protocol.ResponseSuccess))
	if v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID)); v.TopicString() != "TT" {
		t.Fatalf("past timer stored in %s", v.TopicString())
	}
	// TIMER_DELAY_SEC wins over TIMER_DELIVER_MS; delivered at its time.
	sent := time.Now().UnixMilli()
	rh = mustSendOK(t, expect("TIMER_DELIVER_MS\x011\x02TIMER_DELAY_MS\x01400\x02KEYS\x01k", protocol.ResponseSuccess))
	v := viewByOffset(t, c, offsetOfID(t, b, rh.MsgID))
	out, _ := v.Property("TIMER_OUT_MS")
	if v.TopicString() != "rmq_sys_wheel_timer" || v.QueueID != 0 || out == "" {
		t.Fatalf("timer stored %s/%d %q", v.TopicString(), v.QueueID, v.PropertiesString())
	}
	awaitCond(t, "timer delivery", func() bool { return b.store.MaxOffsetInQueue("TT", 1) == 2 })
	r := b.store.GetMessage("TT", 1, 1, 1, nil)
	defer r.Release()
	d, _ := message.Parse(r.Messages[0])
	if d.StoreTimestamp < sent+400 {
		t.Fatalf("delivered %d ms after send, before its 400 ms", d.StoreTimestamp-sent)
	}
	got := message.ParseProperties(d.PropertiesString())
	if got["KEYS"] != "k" || got["TIMER_OUT_MS"] != out || got["TIMER_DEQUEUE_MS"] == "" || got["REAL_TOPIC"] != "" {
		t.Fatalf("delivered properties %v", got)
	}
	// Delay level wins and drops the timer properties.
	rh = mustSendOK(t, expect("TIMER_DELAY_SEC\x015\x02DELAY\x011", protocol.ResponseSuccess))
	v = viewByOffset(t, c, offsetOfID(t, b, rh.MsgID))
	if _, ok := v.Property("TIMER_DELAY_SEC"); ok || v.TopicString() != engine.ScheduleTopic {
		t.Fatalf("stored %s %q", v.TopicString(), v.PropertiesString())
	}
}

func TestTimerWheelDisabled(t *testing.T) {
	_, c := startBroker(t, func(c *Config) { c.Timer.WheelEnable = false })
	resp := produce(t, c, protocol.SendMessage, sendHeader("TT", 0, "TIMER_DELAY_SEC\x015"), []byte("x"))
	if resp.Code != protocol.ResponseSystemError || resp.Remark != remarkNoTimer {
		t.Fatalf("%d %q", resp.Code, resp.Remark)
	}
}

func batchHeader(topic, props string) *protocol.SendMessageRequestHeader {
	h := sendHeader(topic, 0, props)
	h.Batch = true
	return h
}

func TestDelayOffsetsPersistedAndReported(t *testing.T) {
	b, c := startBroker(t, func(c *Config) { shortDelayLevels(c); c.Delay.FlushDelayOffsetInterval = 20 * time.Millisecond })
	for i := range 3 {
		mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("DO", 0, "DELAY\x011"), []byte(strconv.Itoa(i))))
	}
	awaitCond(t, "delivery", func() bool { return b.store.MaxOffsetInQueue("DO", 0) == 3 })
	path := filepath.Join(b.cfg.Store.Dir, "config", delayOffsetFile)
	awaitCond(t, "delayOffset.json", func() bool {
		data, _ := os.ReadFile(path)
		return string(data) == `{"offsetTable":{1:3,2:0,3:0}}`
	})
	resp := call(t, c, protocol.NewRequest(protocol.GetAllDelayOffset, nil))
	if resp.Code != protocol.ResponseSuccess || string(resp.Body) != `{"offsetTable":{1:3,2:0,3:0}}` {
		t.Fatalf("GET_ALL_DELAY_OFFSET: %d %s", resp.Code, resp.Body)
	}
	resp = call(t, c, protocol.NewRequest(protocol.GetBrokerRuntimeInfo, nil))
	var kv protocol.KVTable
	err := json.Unmarshal(resp.Body, &kv)
	if err != nil || kv.Table["scheduleMessageOffset_1"] != "3,3" || kv.Table["scheduleMessageOffset_2"] != "0,0" ||
		kv.Table["scheduleMessagePending"] != "0" || kv.Table["scheduleMessageLastLatenessMs"] == "" || kv.Table["timerDelivered"] != "0" {
		t.Fatalf("runtime info: %v %v", err, kv.Table)
	}
	// After a restart the offsets are reloaded: nothing is delivered twice.
	b2, _ := restartBroker(t, b)
	time.Sleep(300 * time.Millisecond)
	if n := b2.store.MaxOffsetInQueue("DO", 0); n != 3 {
		t.Fatalf("after restart DO holds %d messages", n)
	}
}

func TestDecodeDelayOffsetsBothForms(t *testing.T) {
	for _, in := range []string{`{"offsetTable":{1:5,18:7}}`, "{\n\t\"offsetTable\":{\"1\":5,\"18\":7}\n}"} {
		m, err := decodeDelayOffsets([]byte(in))
		if err != nil || m[1] != 5 || m[18] != 7 {
			t.Errorf("%q: %v %v", in, m, err)
		}
	}
	if _, err := decodeDelayOffsets([]byte(`{"offsetTable":{1:`)); err == nil || !strings.Contains(err.Error(), delayOffsetFile) {
		t.Fatal(err)
	}
}
