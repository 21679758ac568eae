package plot

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// maxRows bounds a series file (a day of seconds is 86,400).
const maxRows = 1 << 20

// ReadSeries reads the xcol and ycol columns of a CSV series with a header
// line (mqbench -series: second,sent,…,p99_ms,…,phase). Rows whose phase
// column is "warmup" are skipped unless warmup is set; an empty or
// unparsable y cell is a gap (NaN).
func ReadSeries(r io.Reader, label, xcol, ycol string, warmup bool) (Line, error) {
	l := Line{Label: label}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return l, fmt.Errorf("%s: header: %w", label, err)
	}
	xi, yi, pi := slices.Index(head, xcol), slices.Index(head, ycol), slices.Index(head, "phase")
	if xi < 0 || yi < 0 {
		return l, fmt.Errorf("%s: no column %q or %q in header %q", label, xcol, ycol, head)
	}
	for n := 0; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return l, fmt.Errorf("%s: %w", label, err)
		}
		if n >= maxRows {
			return l, fmt.Errorf("%s: more than %d rows", label, maxRows)
		}
		if xi >= len(rec) {
			continue
		}
		if !warmup && pi >= 0 && pi < len(rec) && rec[pi] == "warmup" {
			continue
		}
		x, err := strconv.ParseFloat(rec[xi], 64)
		if err != nil {
			continue
		}
		y := math.NaN()
		if yi < len(rec) {
			if v, err := strconv.ParseFloat(rec[yi], 64); err == nil {
				y = v
			}
		}
		l.X, l.Y = append(l.X, x), append(l.Y, y)
	}
	return l, nil
}
