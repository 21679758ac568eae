package plot

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
)

const sample = `second,sent,acked,received,errors,p50_ms,p99_ms,p999_ms,max_ms,phase
1,100,100,0,0,0.500,50.000,60.000,70.000,warmup
2,100,100,0,0,0.500,10.000,12.000,13.000,measured
3,100,100,0,0,0.500,10.000,12.000,13.000,measured
4,0,0,0,0,0.000,0.000,0.000,0.000,measured
5,100,100,0,0,0.500,1.000,2.000,3.000,measured
6,100,100,0,0,0.500,1.000,2.000,3.000,measured
`

func TestReadSeries(t *testing.T) {
	l, err := ReadSeries(strings.NewReader(sample), "a", "second", "p99_ms", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.X) != 5 || l.X[0] != 2 || l.Y[0] != 10 || l.Y[2] != 0 || l.Y[4] != 1 {
		t.Fatalf("got %v %v", l.X, l.Y)
	}
	if l, _ := ReadSeries(strings.NewReader(sample), "a", "second", "p99_ms", true); len(l.X) != 6 || l.Y[0] != 50 {
		t.Fatalf("with warmup: %v %v", l.X, l.Y)
	}
	if _, err := ReadSeries(strings.NewReader(sample), "a", "second", "p42_ms", false); err == nil {
		t.Error("missing column accepted")
	}
	if _, err := ReadSeries(strings.NewReader(""), "a", "second", "p99_ms", false); err == nil {
		t.Error("empty file accepted")
	}
}

// decode renders c to PNG and decodes it back.
func decode(t *testing.T, c *Chart) (*frame, func(x, y int) [3]uint32) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != c.Width || b.Dy() != c.Height {
		t.Fatalf("size %v, want %dx%d", b, c.Width, c.Height)
	}
	f, err := c.layout()
	if err != nil {
		t.Fatal(err)
	}
	return f, func(x, y int) [3]uint32 {
		r, g, b, _ := img.At(x, y).RGBA()
		return [3]uint32{r >> 8, g >> 8, b >> 8}
	}
}

func rgb(i int) [3]uint32 {
	c := Color(i)
	return [3]uint32{uint32(c.R), uint32(c.G), uint32(c.B)}
}

func TestRenderLogPointsLandWhereExpected(t *testing.T) {
	a, _ := ReadSeries(strings.NewReader(sample), "mqd-sync", "second", "p99_ms", false)
	b := Line{Label: "nats", X: []float64{2, 6}, Y: []float64{100, 100}}
	c := &Chart{Title: "p99 per second", XLabel: "second", YLabel: "p99 ms (log)", Width: 800, Height: 500, LogY: true, Lines: []Line{a, b}}
	f, at := decode(t, c)
	// ranges: x 0..6, y decades 10^0..10^2
	if f.x0 != 0 || f.x1 != 6 || f.y0 != 0 || f.y1 != 2 {
		t.Fatalf("frame %+v", f)
	}
	// the point (3 s, 10 ms), computed here without the frame's mapping
	px := f.left + (f.right-f.left)/2   // x=3 of 0..6
	py := f.bottom - (f.bottom-f.top)/2 // 10 ms: half way between 1 and 100 on a log axis
	if got := at(px, py); got != rgb(0) {
		t.Errorf("pixel at (3 s, 10 ms) = %v, want line 0's colour %v", got, rgb(0))
	}
	// line 1 (100 ms) runs along the top edge of the plot area
	if got := at(f.px(4), f.top); got != rgb(1) && at(f.px(4), f.top+1) != rgb(1) {
		t.Errorf("line 1 (100 ms) not at the top edge: %v", got)
	}
	// second 4 has p99 0: a gap on a log axis, so nothing of line 0 is
	// drawn at x=4 near the bottom
	x4 := f.px(4)
	for y := f.top + 1; y < f.bottom; y++ {
		if at(x4, y) == rgb(0) {
			t.Errorf("line 0 drawn at the gap (4 s), row %d", y)
			break
		}
	}
	// the legend swatch of line 1 is drawn
	found := false
	for y := f.top; y < f.top+80 && !found; y++ {
		for x := f.right - 400; x < f.right; x++ {
			if at(x, y) == rgb(1) && at(x+10, y) == rgb(1) && at(x+20, y) == rgb(1) {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("no legend swatch for line 1")
	}
}

func TestRenderLinear(t *testing.T) {
	c := &Chart{Lines: []Line{{Label: "tps", X: []float64{0, 10}, Y: []float64{0, 47000}}}}
	f, at := decode(t, c)
	if c.Width != 1200 || c.Height != 675 || f.y0 != 0 || f.y1 != 50000 {
		t.Fatalf("defaults or range: %dx%d %+v", c.Width, c.Height, f)
	}
	py, _ := f.py(0)
	if at(f.left+1, py-1) != rgb(0) && at(f.left+1, py) != rgb(0) {
		t.Error("line does not start at the origin")
	}
}

func TestRenderRejects(t *testing.T) {
	for _, c := range []*Chart{
		{Lines: nil},
		{LogY: true, Lines: []Line{{X: []float64{1}, Y: []float64{0}}}},
		{Width: 50, Lines: []Line{{X: []float64{1}, Y: []float64{1}}}},
		{Lines: []Line{{X: []float64{1, 2}, Y: []float64{1}}}},
		{Lines: []Line{{X: []float64{math.NaN()}, Y: []float64{1}}}},
	} {
		if _, err := c.Render(); err == nil {
			t.Errorf("rendered %+v", c)
		}
	}
}

func TestNiceStepAndText(t *testing.T) {
	for span, want := range map[float64]float64{60: 10, 45: 5, 10: 1, 47000: 5000, 0.3: 0.05} {
		if got := niceStep(span, 10); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", span, got, want)
		}
	}
	if textWidth("10", 2) != 22 || textWidth("", 2) != 0 {
		t.Error("textWidth")
	}
	for _, s := range []string{"0123456789", "abcdefghijklmnopqrstuvwxyz", ".,-_:/=()%+<>×? "} {
		for _, r := range s {
			g, ok := glyphs[r]
			if r >= 'a' && r <= 'z' {
				g, ok = glyphs[r-'a'+'A']
			}
			if !ok {
				t.Errorf("no glyph for %q", r)
				continue
			}
			for _, row := range g {
				if len(row) != glyphW {
					t.Errorf("glyph %q row %q", r, row)
				}
			}
		}
	}
}
