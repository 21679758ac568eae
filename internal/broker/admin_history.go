package broker

// Minute, hour and day windows of a counter, as Java's StatsItem keeps
// them for VIEW_BROKER_STATS_DATA (statsMinute, statsHour, statsDay):
// samples every 10 s for the last minute, every minute for the last hour,
// every hour for the last day. The stats loop samples under Stats.mu.

// window2 is one sample: a counter and its number of increments.
type window2 struct{ value, times int64 }

type history struct {
	tenSec      [7]window2  // 60 s
	minutes     [61]window2 // 60 min
	hours       [25]window2 // 24 h
	n10, nm, nh int         // samples taken
}

// sample records the totals at second tick of the stats loop.
func (h *history) sample(tick, value, times int64) {
	w := window2{value, times}
	if tick%10 == 0 {
		h.tenSec[h.n10%len(h.tenSec)] = w
		h.n10++
	}
	if tick%60 == 0 {
		h.minutes[h.nm%len(h.minutes)] = w
		h.nm++
	}
	if tick%3600 == 0 {
		h.hours[h.nh%len(h.hours)] = w
		h.nh++
	}
}

// StatsWindow is one window of BrokerStatsData: messages, per second, and
// messages per request.
type StatsWindow struct {
	Sum   int64   `json:"sum"`
	TPS   float64 `json:"tps"`
	Avgpt float64 `json:"avgpt"`
}

func span(buf []window2, n int, period float64) StatsWindow {
	if n < 2 {
		return StatsWindow{}
	}
	k := min(n, len(buf))
	last, first := buf[(n-1)%len(buf)], buf[(n-k)%len(buf)]
	w := StatsWindow{Sum: last.value - first.value}
	w.TPS = float64(w.Sum) / (float64(k-1) * period)
	if t := last.times - first.times; t > 0 {
		w.Avgpt = float64(w.Sum) / float64(t)
	}
	return w
}

func (h *history) minute() StatsWindow { return span(h.tenSec[:], h.n10, 10) }
func (h *history) hour() StatsWindow   { return span(h.minutes[:], h.nm, 60) }
func (h *history) day() StatsWindow    { return span(h.hours[:], h.nh, 3600) }
