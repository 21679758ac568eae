package bench

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSeriesRowFormat(t *testing.T) {
	var buf bytes.Buffer
	s := NewSeries(&buf)
	s.Add(SeriesRow{Second: 3, Sent: 10, Acked: 9, Received: 8, Errors: 1,
		Latency: Percentiles{P50: 0.5, P99: 1.25, P999: 2, Max: 3.0005}, Warmup: true})
	s.Add(SeriesRow{Second: 4})
	want := SeriesHeader + "\n3,10,9,8,1,0.500,1.250,2.000,3.001,warmup\n4,0,0,0,0,0.000,0.000,0.000,0.000,measured\n"
	if buf.String() != want || s.Err() != nil {
		t.Errorf("got %q, %v", buf.String(), s.Err())
	}
	var none *Series
	none.Add(SeriesRow{}) // nil discards
	if none.Err() != nil {
		t.Error("nil series has an error")
	}
	bad := NewSeries(failWriter{})
	bad.Add(SeriesRow{})
	if bad.Err() == nil {
		t.Error("write error not kept")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A produce run writes one row per second, warmup rows marked, and the
// rows' sends add up to the run's.
func TestProduceWritesSeries(t *testing.T) {
	f := startFake(t, 0)
	var buf bytes.Buffer
	s, err := Produce(context.Background(), WireConfig{
		Namesrv: []string{f.addr}, Topic: "SeriesTopic", Size: 256, TPS: 1000, Conns: 1, Mode: ModeAsync,
		Duration: 2 * time.Second, Warmup: time.Second, Timeout: time.Second, Series: NewSeries(&buf),
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] != SeriesHeader || len(lines) < 3 || len(lines) > 5 {
		t.Fatalf("series:\n%s", buf.String())
	}
	var sent int64
	for i, l := range lines[1:] {
		cols := strings.Split(l, ",")
		if len(cols) != 10 || cols[0] != strconv.Itoa(i+1) {
			t.Fatalf("row %q", l)
		}
		n, _ := strconv.ParseInt(cols[1], 10, 64)
		sent += n
		if (i == 0) != (cols[9] == "warmup") {
			t.Errorf("row %d phase %s", i+1, cols[9])
		}
		if p99, _ := strconv.ParseFloat(cols[6], 64); n > 0 && p99 <= 0 {
			t.Errorf("row %d: sends but no p99: %q", i+1, l)
		}
	}
	// the last partial second is not reported: at least the first two seconds' sends
	if sent < 2000 || sent > 3000 || s.Sent != 2000 {
		t.Errorf("rows sum to %d sends, run sent %d", sent, s.Sent)
	}
}
