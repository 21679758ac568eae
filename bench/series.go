package bench

// The machine-readable per-second series of a run (mqbench -series FILE):
// one CSV line per second, the same figures as the per-second text line.
// bench/plot reads these files by column name.

import (
	"bufio"
	"io"
	"strconv"
	"sync"
)

// SeriesHeader is the first line of a series file. Latencies are in ms
// (send latency for produce, store→receipt for consume, born→receipt for
// e2e); phase is warmup or measured.
const SeriesHeader = "second,sent,acked,received,errors,p50_ms,p99_ms,p999_ms,max_ms,phase"

// SeriesRow is one second of a run.
type SeriesRow struct {
	Second                int
	Sent, Acked, Received int64
	Errors                int64
	Latency               Percentiles
	Warmup                bool
}

// Series writes rows to a CSV writer, flushing each line so that an
// interrupted run leaves every finished second on disk. The zero value and
// nil discard rows.
type Series struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

// NewSeries writes the header to w and returns the series.
func NewSeries(w io.Writer) *Series {
	s := &Series{w: bufio.NewWriter(w)}
	s.line(SeriesHeader)
	return s
}

// Add writes one row.
func (s *Series) Add(r SeriesRow) {
	if s == nil || s.w == nil {
		return
	}
	phase := "measured"
	if r.Warmup {
		phase = "warmup"
	}
	b := make([]byte, 0, 96)
	b = strconv.AppendInt(b, int64(r.Second), 10)
	for _, v := range []int64{r.Sent, r.Acked, r.Received, r.Errors} {
		b = append(b, ',')
		b = strconv.AppendInt(b, v, 10)
	}
	for _, v := range []float64{r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max} {
		b = append(b, ',')
		b = strconv.AppendFloat(b, v, 'f', 3, 64)
	}
	b = append(b, ',')
	b = append(b, phase...)
	s.line(string(b))
}

func (s *Series) line(l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if _, err := s.w.WriteString(l + "\n"); err != nil {
		s.err = err
		return
	}
	s.err = s.w.Flush()
}

// Err is the first write error, if any.
func (s *Series) Err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
