package acl

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func writeFile(t *testing.T, path, data string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	// Set the time explicitly: two writes within the file system's time
	// resolution must still be seen as changes.
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

const oneAccount = "accounts:\n  - accessKey: account1\n    secretKey: secret11\n    defaultTopicPerm: PUB\n"

func TestWatcherReloadsAndKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	t0 := time.Now().Add(-time.Hour)
	writeFile(t, path, oneAccount, t0)
	w, err := NewWatcher(path, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if w.Validator().Table().Accounts["account1"] == nil {
		t.Fatal("account1 not loaded")
	}
	if ok, err := w.Poll(); ok || err != nil {
		t.Fatalf("unchanged file reloaded: %v %v", ok, err)
	}
	// A torn rewrite (truncated, not yet written) seen by one Poll is not
	// taken: a change must hold from one Poll to the next.
	writeFile(t, path, "", t0.Add(time.Second/2))
	if ok, err := w.Poll(); ok || err != nil || w.Validator().Table().Accounts["account1"] == nil {
		t.Fatalf("a file seen changing was taken at once: %v %v", ok, err)
	}
	writeFile(t, path, oneAccount+"  - accessKey: account2\n    secretKey: secret22\n", t0.Add(time.Second))
	if ok, err := w.Poll(); ok || err != nil || w.Validator().Table().Accounts["account1"] == nil {
		t.Fatalf("the rewritten file was taken before it settled: %v %v", ok, err)
	}
	if ok, err := w.Poll(); !ok || err != nil {
		t.Fatalf("changed file not reloaded: %v %v", ok, err)
	}
	if w.Validator().Table().Accounts["account2"] == nil {
		t.Fatal("account2 not loaded")
	}
	good := w.Validator().Table()

	writeFile(t, path, "accounts:\n  - accessKey: short\n    secretKey: x\n", t0.Add(2*time.Second))
	w.Poll() // settling
	if ok, err := w.Poll(); ok || err == nil {
		t.Fatalf("bad file taken: %v %v", ok, err)
	}
	if w.Validator().Table() != good {
		t.Fatal("bad file replaced the last good table")
	}
	if ok, err := w.Poll(); ok || err != nil {
		t.Fatalf("bad file retried without a change: %v %v", ok, err)
	}
	os.Remove(path)
	w.Poll() // settling
	if ok, err := w.Poll(); ok || err == nil || w.Validator().Table() != good {
		t.Fatalf("removed file: %v %v", ok, err)
	}
	// Same size, new time: a change.
	writeFile(t, path, oneAccount, t0.Add(3*time.Second))
	w.Poll() // settling
	if ok, err := w.Poll(); !ok || err != nil {
		t.Fatalf("restored file: %v %v", ok, err)
	}
	if w.Validator().Table().Accounts["account2"] != nil {
		t.Fatal("account2 still present")
	}
}

func TestWatcherStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plain_acl.yml")
	w, err := NewWatcher(path, quietLog())
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if len(w.Validator().Table().Accounts) != 0 {
		t.Fatal("accounts from nowhere")
	}
	writeFile(t, path, oneAccount, time.Now())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { w.Run(stop, 5*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for w.Validator().Table().Accounts["account1"] == nil {
		if time.Now().After(deadline) {
			t.Fatal("file that appeared was not loaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done

	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "accounts: [\n", time.Now())
	if _, err := NewWatcher(bad, quietLog()); err == nil {
		t.Fatal("invalid file accepted at start")
	}
}
