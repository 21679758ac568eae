package main

import (
	"bytes"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// helpText is what `mqbench <cmd> -h` (or `mqbench plot -h`) prints.
func helpText(t *testing.T, plot bool) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	if plot {
		err = runPlot([]string{"-h"})
	} else {
		_, _, err = parseFlags("produce", []string{"-h"})
	}
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if err == nil {
		t.Fatal("-h did not stop parsing")
	}
	return string(out)
}

// README's mqbench table documents every flag of produce/consume/e2e, and
// the plot paragraph every flag of mqbench plot.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, plot := range []bool{false, true} {
		names := regexp.MustCompile(`(?m)^\s+-(\S+)`).FindAllStringSubmatch(helpText(t, plot), -1)
		if len(names) < 5 {
			t.Fatalf("parsed %d flags from the usage text", len(names))
		}
		for _, m := range names {
			form := "`-" + m[1] + "`"
			if plot { // in the synopsis: -o out.png, [-warmup]
				form = "-" + m[1] + " "
				if strings.Contains(string(readme), "[-"+m[1]+"]") {
					continue
				}
			}
			if !strings.Contains(string(readme), form) {
				t.Errorf("README.md does not document %s", form)
			}
		}
	}
}

func TestParseFlagsTopicsAndSeries(t *testing.T) {
	cfg, series, err := parseFlags("produce", []string{"-topics", "10000", "-queues", "8", "-series", "s.csv"})
	if err != nil || cfg.Topics != 10000 || cfg.Queues != 8 || series != "s.csv" {
		t.Errorf("got %d topics, %d queues, series %q, %v", cfg.Topics, cfg.Queues, series, err)
	}
	for _, args := range [][]string{{"-topics", "0"}, {"-topics", "100001"}} {
		if _, _, err := parseFlags("produce", args); err == nil {
			t.Errorf("accepted %q", args)
		}
	}
	if _, _, err := parseFlags("e2e", []string{"-topics", "2"}); err == nil {
		t.Error("e2e accepted -topics 2")
	}
}

func TestRunPlot(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "mqd-sync.csv")
	data := "second,sent,acked,received,errors,p50_ms,p99_ms,p999_ms,max_ms,phase\n" +
		"1,10,10,0,0,0.1,0.5,1,2,warmup\n2,10,10,0,0,0.1,0.7,1,2,measured\n3,10,10,0,0,0.1,3.5,4,5,measured\n"
	if err := os.WriteFile(csv, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "p99.png")
	if err := runPlot([]string{"-o", out, "-width", "640", "-height", "360", csv, "other=" + csv}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 360 {
		t.Fatalf("decoded %v, %v", img.Bounds(), err)
	}
	for _, bad := range [][]string{{csv}, {"-o", out}, {"-o", out, "-y", "nope", csv}, {"-o", out, filepath.Join(dir, "missing.csv")}} {
		if err := runPlot(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
