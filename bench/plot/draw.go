package plot

import (
	"image"
	"image/color"
	"math"
)

// axes draws the grid, the frame, the ticks with their labels, the title
// and the axis labels.
func (c *Chart) axes(img *image.RGBA, f *frame) {
	th := glyphH * scale
	// x ticks
	xstep := niceStep(f.x1-f.x0, 10)
	for x := math.Ceil(f.x0/xstep) * xstep; x <= f.x1+xstep/1e6; x += xstep {
		px := f.px(x)
		vline(img, px, f.top, f.bottom, grid)
		vline(img, px, f.bottom, f.bottom+tickLen, black)
		s := fmtNum(x)
		drawText(img, px-textWidth(s, scale)/2, f.bottom+tickLen+4, s, scale, black)
	}
	// y ticks
	label := func(y float64, v float64) {
		py, _ := f.py(y)
		hline(img, f.left, f.right, py, grid)
		hline(img, f.left-tickLen, f.left, py, black)
		s := fmtNum(v)
		drawText(img, f.left-tickLen-4-textWidth(s, scale), py-th/2, s, scale, black)
	}
	if f.logY {
		for d := f.y0; d <= f.y1; d++ {
			base := math.Pow(10, d)
			if d < f.y1 {
				for m := 2.0; m < 10; m++ {
					py, _ := f.py(m * base)
					hline(img, f.left+1, f.right, py, minor)
				}
			}
			label(base, base)
		}
	} else {
		ystep := niceStep(f.y1-f.y0, 8)
		for y := math.Ceil(f.y0/ystep) * ystep; y <= f.y1+ystep/1e6; y += ystep {
			label(y, y)
		}
	}
	// frame
	hline(img, f.left, f.right, f.top, black)
	hline(img, f.left, f.right, f.bottom, black)
	vline(img, f.left, f.top, f.bottom, black)
	vline(img, f.right, f.top, f.bottom, black)
	drawText(img, (c.Width-textWidth(c.Title, scale))/2, 16, c.Title, scale, black)
	drawText(img, f.left, f.top-th-8, c.YLabel, scale, black)
	drawText(img, (f.left+f.right-textWidth(c.XLabel, scale))/2, c.Height-th-10, c.XLabel, scale, black)
}

// legend draws a swatch and the label of every line in the plot area's
// top-right corner, on white.
func (c *Chart) legend(img *image.RGBA, f *frame) {
	if len(c.Lines) == 0 {
		return
	}
	th := glyphH * scale
	w := 0
	for _, l := range c.Lines {
		w = max(w, textWidth(l.Label, scale))
	}
	rowH := th + 8
	bw, bh := w+48, len(c.Lines)*rowH+8
	x0, y0 := f.right-bw-8, f.top+8
	fillRect(img, x0, y0, bw, bh, white)
	hline(img, x0, x0+bw, y0, black)
	hline(img, x0, x0+bw, y0+bh, black)
	vline(img, x0, y0, y0+bh, black)
	vline(img, x0+bw, y0, y0+bh, black)
	for i, l := range c.Lines {
		y := y0 + 8 + i*rowH
		fillRect(img, x0+8, y+th/2-2, 24, 4, Color(i))
		drawText(img, x0+40, y, l.Label, scale, black)
	}
}

// drawLine joins consecutive points of l with 2-pixel-wide segments; a
// gap breaks the line, and a lone point is drawn as a dot.
func drawLine(img *image.RGBA, f *frame, l Line, c color.Color) {
	havePrev := false
	var px0, py0 int
	for i, x := range l.X {
		y, ok := f.py(l.Y[i])
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
			havePrev = false
			continue
		}
		px := f.px(x)
		if havePrev {
			segment(img, px0, py0, px, y, c)
		} else {
			fillRect(img, px-2, y-2, 5, 5, c)
		}
		px0, py0, havePrev = px, y, true
	}
}

// segment draws a 2×2-brush line from (x0, y0) to (x1, y1) (Bresenham).
func segment(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, x0, y0, 2, 2, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) { fillRect(img, x0, y, x1-x0+1, 1, c) }
func vline(img *image.RGBA, x, y0, y1 int, c color.Color) { fillRect(img, x, y0, 1, y1-y0+1, c) }

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
