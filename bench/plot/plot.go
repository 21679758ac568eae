// Package plot draws line charts of per-second benchmark series as PNG
// with the standard library alone: axes with labelled ticks (a built-in
// bitmap font), a linear x axis, a linear or log-scale y axis, one line per
// series and a legend. mqbench plot uses it on mqbench -series files
// (BENCHMARKS.md, "How to re-run").
package plot

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
)

// Line is one series: points (X[i], Y[i]). A NaN Y, or with a log y axis a
// Y ≤ 0, is a gap.
type Line struct {
	Label string
	X, Y  []float64
}

// Chart is what to draw.
type Chart struct {
	Title         string
	XLabel        string
	YLabel        string
	Width, Height int  // pixels; defaults 1200×675
	LogY          bool // log10 y axis
	Lines         []Line
}

// Size bounds (a chart is drawn in memory: 4 bytes a pixel).
const (
	minSide = 200
	maxSide = 8000
)

// Layout constants in pixels.
const (
	scale       = 2 // font pixels per glyph pixel
	marginLeft  = 100
	marginRight = 30
	marginTop   = 60
	marginBot   = 70
	tickLen     = 6
)

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{0, 0, 0, 255}
	grid   = color.RGBA{225, 225, 225, 255}
	minor  = color.RGBA{242, 242, 242, 255}
	colors = []color.RGBA{
		{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {23, 190, 207, 255},
	}
)

// Color is the colour of line i.
func Color(i int) color.RGBA { return colors[i%len(colors)] }

// frame maps data coordinates to pixels.
type frame struct {
	x0, x1, y0, y1 float64 // data range (y in log10 when logY)
	left, right    int     // plot area in pixels
	top, bottom    int
	logY           bool
}

func (f *frame) px(x float64) int {
	return f.left + int(math.Round((x-f.x0)/(f.x1-f.x0)*float64(f.right-f.left)))
}

// py maps y to a pixel row; ok is false for a gap.
func (f *frame) py(y float64) (int, bool) {
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return 0, false
	}
	if f.logY {
		if y <= 0 {
			return 0, false
		}
		y = math.Log10(y)
	}
	return f.bottom - int(math.Round((y-f.y0)/(f.y1-f.y0)*float64(f.bottom-f.top))), true
}

// layout fixes the size and the data ranges.
func (c *Chart) layout() (*frame, error) {
	if c.Width == 0 {
		c.Width = 1200
	}
	if c.Height == 0 {
		c.Height = 675
	}
	if c.Width < minSide || c.Height < minSide || c.Width > maxSide || c.Height > maxSide {
		return nil, errors.New("plot: width and height must be 200..8000 pixels")
	}
	f := &frame{left: marginLeft, right: c.Width - marginRight, top: marginTop, bottom: c.Height - marginBot, logY: c.LogY}
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, l := range c.Lines {
		if len(l.X) != len(l.Y) {
			return nil, errors.New("plot: line " + strconv.Quote(l.Label) + " has unequal X and Y")
		}
		for i, x := range l.X {
			y := l.Y[i]
			if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) || (c.LogY && y <= 0) {
				continue
			}
			xmin, xmax = min(xmin, x), max(xmax, x)
			ymin, ymax = min(ymin, y), max(ymax, y)
		}
	}
	if math.IsInf(xmin, 1) {
		return nil, errors.New("plot: no point to draw")
	}
	f.x0, f.x1 = min(0, math.Floor(xmin)), math.Ceil(xmax) // seconds: from 0
	if f.x1 <= f.x0 {
		f.x1 = f.x0 + 1
	}
	if c.LogY {
		f.y0, f.y1 = math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if f.y1 <= f.y0 {
			f.y1 = f.y0 + 1
		}
	} else {
		f.y0, f.y1 = min(0, ymin), ymax
		step := niceStep(f.y1-f.y0, 8)
		f.y1 = math.Ceil(f.y1/step) * step
		if f.y1 <= f.y0 {
			f.y1 = f.y0 + 1
		}
	}
	return f, nil
}

// niceStep is a step of 1, 2 or 5 × 10^k giving about n intervals over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// Render draws the chart.
func (c *Chart) Render() (*image.RGBA, error) {
	f, err := c.layout()
	if err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, c.Width, c.Height))
	fillRect(img, 0, 0, c.Width, c.Height, white)
	c.axes(img, f)
	for i, l := range c.Lines {
		drawLine(img, f, l, Color(i))
	}
	c.legend(img, f)
	return img, nil
}

// WritePNG renders the chart and encodes it to w.
func (c *Chart) WritePNG(w io.Writer) error {
	img, err := c.Render()
	if err != nil {
		return err
	}
	return png.Encode(w, img)
}

// fmtNum formats a tick value without trailing zeros.
func fmtNum(v float64) string {
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
