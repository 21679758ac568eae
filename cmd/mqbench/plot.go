package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqd/mqd/bench/plot"
)

// runPlot is `mqbench plot -o out.png [label=]a.csv ...`: one line per
// series file (mqbench -series), written as a PNG.
func runPlot(args []string) error {
	fs := flag.NewFlagSet("mqbench plot", flag.ContinueOnError)
	out := fs.String("o", "", "output PNG file (required)")
	ycol := fs.String("y", "p99_ms", "column to plot: p50_ms, p99_ms, p999_ms, max_ms (log scale), sent, acked, received, errors (linear)")
	title := fs.String("title", "", "chart title (default: the column)")
	width := fs.Int("width", 1200, "width in pixels")
	height := fs.Int("height", 675, "height in pixels")
	warmup := fs.Bool("warmup", false, "include the warmup seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: mqbench plot -o out.png [-y p99_ms] [label=]series.csv ...")
	}
	logY := strings.HasSuffix(*ycol, "_ms")
	c := &plot.Chart{Title: *title, XLabel: "second of the run", YLabel: *ycol, Width: *width, Height: *height, LogY: logY}
	if c.Title == "" {
		c.Title = *ycol + " per second"
	}
	if logY {
		c.YLabel += " (log scale)"
	} else {
		c.YLabel += " per second"
	}
	for _, arg := range fs.Args() {
		label, path, ok := strings.Cut(arg, "=")
		if !ok {
			path, label = arg, strings.TrimSuffix(filepath.Base(arg), filepath.Ext(arg))
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		l, err := plot.ReadSeries(f, label, "second", *ycol, *warmup)
		f.Close()
		if err != nil {
			return err
		}
		c.Lines = append(c.Lines, l)
	}
	var buf bytes.Buffer
	if err := c.WritePNG(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d series)\n", *out, len(c.Lines))
	return nil
}
