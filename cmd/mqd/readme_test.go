package main

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mqd/mqd/internal/broker"
)

// usage is what `mqd -h` prints.
func usage(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	_, perr := parseFlags([]string{"-h"})
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if perr == nil {
		t.Fatal("-h did not stop parsing")
	}
	return string(out)
}

// README documents every flag mqd defines.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`(?m)^\s+-(\S+)`).FindAllStringSubmatch(usage(t), -1)
	if len(names) < 10 {
		t.Fatalf("parsed %d flags from the usage text", len(names))
	}
	for _, m := range names {
		form := "`--" + m[1]
		if len(m[1]) == 1 {
			form = "`-" + m[1]
		}
		if !strings.Contains(string(readme), form) {
			t.Errorf("README.md does not document %s`", form)
		}
	}
	for _, s := range []string{"mqd repair --store DIR --truncate-at OFFSET [-c broker.conf]", "`mqd namesrv`", "`mqd broker`"} {
		if !strings.Contains(string(readme), s) {
			t.Errorf("README.md does not document %q", s)
		}
	}
}

// README's broker.conf tables document the keys only mqd has, and the
// broker accepts each of them.
func TestREADMEDocumentsMqdOnlyKeys(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{"maxOpenConsumeQueueFiles": "64", "haSlaveAckDurable": "true",
		"haStreamCompression": "none", "haAdvertisedAddr": "127.0.0.1:10912",
		"syncFlushMinGapMicros": "700", "syncFlushMinGapFromTps": "0", "flushCommitLogMaxDirtyBytes": "1048576"}
	for k, v := range keys {
		if !strings.Contains(string(readme), "| `"+k+"` |") {
			t.Errorf("README.md has no table row for broker.conf key %s", k)
		}
		cfg := broker.NewConfig()
		ignored, err := broker.ApplyProperties(map[string]string{k: v}, &cfg)
		if err != nil || len(ignored) > 0 {
			t.Errorf("broker.conf %s=%s: ignored %v, err %v", k, v, ignored, err)
		}
	}
	cfg := broker.NewConfig()
	if _, err := broker.ApplyProperties(map[string]string{"maxOpenConsumeQueueFiles": "64"}, &cfg); err != nil ||
		cfg.Store.MaxOpenConsumeQueueFiles != 64 {
		t.Errorf("maxOpenConsumeQueueFiles=64 sets %d (err %v)", cfg.Store.MaxOpenConsumeQueueFiles, err)
	}
}

// README's Layout table names every package of the module (or a parent
// directory whose row covers it, as `cmd` covers cmd/mqd).
func TestREADMELayoutNamesEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\|([^|]*)\\|").FindAllStringSubmatch(layout, -1) {
		for _, n := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(m[1], -1) {
			named[n[1]] = true
		}
	}
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("../..", p)
		if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if gos, _ := filepath.Glob(filepath.Join(p, "*.go")); len(gos) == 0 || rel == "." {
			return nil
		}
		for dir := filepath.ToSlash(rel); dir != "."; dir = path.Dir(dir) {
			if named[dir] {
				return nil
			}
		}
		t.Errorf("README's Layout table does not name package %s", filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
