package broker

// The figures GET_BROKER_RUNTIME_INFO (28) adds to its KVTable, under the
// keys of Java's BrokerController runtime info, DefaultMessageStore
// .getRuntimeInfo and StoreStatsService.getRuntimeInfo, so mqadmin
// brokerStatus, the dashboard and rocketmq-exporter read them unchanged.

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mqd/mqd/internal/message"
	"golang.org/x/sys/unix"
)

// runtimeInfo adds the traffic, store and disk figures to t.
func (b *Broker) runtimeInfo(t map[string]string) {
	s, now := b.stats, time.Now()
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	tps := func(pick func(sample) int64) string {
		return fmt.Sprintf("%.2f %.2f %.2f", s.rate(10, pick), s.rate(60, pick), s.rate(600, pick))
	}
	putMsgs, putBytes := s.total.PutMsgs.Load(), s.total.PutBytes.Load()
	s.mu.Lock()
	today, yesterday, maxLag := s.todayMorning, s.yesterdayMorning, s.maxDispatchLag
	s.mu.Unlock()
	t["putTps"] = tps(func(x sample) int64 { return x.put })
	t["getTransferedTps"] = tps(func(x sample) int64 { return x.get })
	t["getFoundTps"] = tps(func(x sample) int64 { return x.getFound })
	t["getMissTps"] = tps(func(x sample) int64 { return x.getMiss })
	t["getTotalTps"] = tps(func(x sample) int64 { return x.getFound + x.getMiss })
	t["msgPutTotalTodayNow"] = i64(putMsgs)
	t["msgGetTotalTodayNow"] = i64(s.total.GetMsgs.Load())
	t["msgPutTotalTodayMorning"] = i64(today.put)
	t["msgGetTotalTodayMorning"] = i64(today.get)
	t["msgPutTotalYesterdayMorning"] = i64(yesterday.put)
	t["msgGetTotalYesterdayMorning"] = i64(yesterday.get)
	t["putMessageTimesTotal"] = i64(putMsgs)
	t["putMessageSizeTotal"] = i64(putBytes)
	t["putMessageAverageSize"] = strconv.FormatFloat(float64(putBytes)/float64(max(putMsgs, 1)), 'f', 2, 64)
	t["bootTimestamp"] = i64(s.Boot.UnixMilli())
	t["startAcceptSendRequestTimeStamp"] = i64(s.Boot.UnixMilli())
	t["runtime"] = javaRuntime(now.Sub(s.Boot))
	t["dispatchMaxBuffer"] = i64(maxLag)
	t["remainHowManyDataToFlush"] = i64(max(b.store.MaxPhysOffset()-b.store.DurableOffset(), 0))
	t["earliestMessageTimeStamp"] = i64(b.earliestMessageTime())
	if total, free, err := diskSpace(b.store.Dir()); err == nil {
		ratio := 0.0
		if total > 0 {
			ratio = 1 - float64(free)/float64(total)
		}
		t["commitLogDiskRatio"] = strconv.FormatFloat(ratio, 'f', -1, 64)
		t["consumeQueueDiskRatio"] = t["commitLogDiskRatio"] // one directory holds both
		t["commitLogDirCapacity"] = fmt.Sprintf("Total : %s, Free : %s.", humanBytes(total), humanBytes(free))
	}
}

// earliestMessageTime is the store time of the oldest record in the commit
// log, -1 when it is empty.
func (b *Broker) earliestMessageTime() int64 {
	if b.store.MaxPhysOffset() <= b.store.MinPhysOffset() {
		return -1
	}
	rec, err := b.store.ReadMessage(b.store.MinPhysOffset())
	if err != nil {
		return -1
	}
	v, err := message.Parse(rec)
	if err != nil {
		return -1
	}
	return v.StoreTimestamp
}

// diskSpace reports the size and the space available to users of the file
// system holding dir.
func diskSpace(dir string) (total, free int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize), nil
}

// javaRuntime formats an uptime as StoreStatsService does.
func javaRuntime(d time.Duration) string {
	sec := int64(d / time.Second)
	return fmt.Sprintf("[ %d days, %d hours, %d minutes, %d seconds ]", sec/86400, sec%86400/3600, sec%3600/60, sec%60)
}

// humanBytes is MixAll.humanReadableByteCount(bytes, false): binary units.
func humanBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, i := float64(n), 0
	for f >= 1024 && i < 6 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i-1])
}
