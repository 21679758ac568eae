package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
)

func captureLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func logLines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// uringAvailable reports whether this machine runs the io_uring backend.
func uringAvailable(t *testing.T) bool {
	fsys, err := NewUring(8)
	if err != nil {
		t.Logf("io_uring unavailable: %v", err)
		return false
	}
	fsys.Close()
	return true
}

func TestOpenAuto(t *testing.T) {
	log, buf := captureLog()
	fsys, err := Open(Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	want := "pwrite"
	if uringAvailable(t) {
		want = "io_uring"
	}
	lines := logLines(buf)
	if fsys.Backend() != want || len(lines) != 1 || !strings.Contains(lines[0], "backend="+want) {
		t.Fatalf("backend %s, log %q", fsys.Backend(), lines)
	}
}

func TestOpenPwrite(t *testing.T) {
	log, buf := captureLog()
	fsys, err := Open(Config{Backend: "pwrite"}, log)
	if err != nil || fsys.Backend() != "pwrite" {
		t.Fatalf("Open(pwrite) = %v, %v", fsys, err)
	}
	if lines := logLines(buf); len(lines) != 1 || !strings.Contains(lines[0], "backend=pwrite") {
		t.Fatalf("log %q", lines)
	}
}

func TestOpenUring(t *testing.T) {
	if !uringAvailable(t) {
		t.Skip("io_uring unavailable")
	}
	log, buf := captureLog()
	fsys, err := Open(Config{Backend: "io_uring", RingEntries: 32}, log)
	if err != nil || fsys.Backend() != "io_uring" {
		t.Fatalf("Open(io_uring) = %v, %v", fsys, err)
	}
	defer fsys.Close()
	if lines := logLines(buf); len(lines) != 1 || !strings.Contains(lines[0], "ring_entries=32") {
		t.Fatalf("log %q", lines)
	}
}

func TestOpenUnknownBackend(t *testing.T) {
	if _, err := Open(Config{Backend: "aio"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Open(aio) succeeded")
	}
}

// TestOpenFallback simulates io_uring blocked by seccomp (EPERM): "auto"
// falls back to pwrite and says why in its one line; "io_uring" fails and
// logs nothing.
func TestOpenFallback(t *testing.T) {
	saved := newUring
	defer func() { newUring = saved }()
	newUring = func(uint32) (FS, error) {
		return nil, fmt.Errorf("uring: io_uring_setup(256): %w", syscall.EPERM)
	}
	log, buf := captureLog()
	fsys, err := Open(Config{Backend: "auto"}, log)
	if err != nil || fsys.Backend() != "pwrite" {
		t.Fatalf("auto fallback = %v, %v", fsys, err)
	}
	lines := logLines(buf)
	if len(lines) != 1 || !strings.Contains(lines[0], "backend=pwrite") ||
		!strings.Contains(lines[0], "operation not permitted") {
		t.Fatalf("log %q", lines)
	}

	log, buf = captureLog()
	if _, err := Open(Config{Backend: "io_uring"}, log); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("Open(io_uring) = %v, want EPERM", err)
	}
	if lines := logLines(buf); len(lines) != 0 {
		t.Fatalf("log on error: %q", lines)
	}
}
