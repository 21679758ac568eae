package broker

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

func journalTestConfig() *Config {
	cfg := NewConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.defaults()
	return &cfg
}

// crashCopy copies the config directory's files as they are on disk now,
// without closing anything: what a restart after kill -9 finds.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Auto-created topics are appended to the journal, not written by
// rewriting topics.json (which with thousands of topics cost megabytes
// and three fsyncs per creation), and every acknowledged creation is found
// again by a restart from the files as they are on disk.
func TestAutoCreatedTopicsJournaled(t *testing.T) {
	dir := t.TempDir()
	big := topicFile{TopicConfigTable: map[string]protocol.TopicConfig{}, DataVersion: protocol.DataVersion{Counter: 7}}
	for i := range 3000 {
		big.TopicConfigTable["Old"+strconv.Itoa(i)] = topicConfig("Old"+strconv.Itoa(i), 4, 6)
	}
	if err := saveJSON(filepath.Join(dir, topicConfigFileName), big); err != nil {
		t.Fatal(err)
	}
	cfg := journalTestConfig()
	m, err := newTopicManager(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.closeJournal()
	file := filepath.Join(dir, topicConfigFileName)
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if _, ok, err := m.CreateFromDefault("New"+strconv.Itoa(i), TopicAutoCreate, 4); !ok || err != nil {
				t.Errorf("create %d: %v %v", i, ok, err)
			}
		})
	}
	wg.Wait()
	if after, err := os.ReadFile(file); err != nil || string(after) != string(before) {
		t.Fatalf("topics.json rewritten by auto-creations (%v)", err)
	}
	if m.journal.len() != 100 {
		t.Fatalf("journal has %d lines, want 100", m.journal.len())
	}
	again, err := newTopicManager(crashCopy(t, dir), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.closeJournal()
	for i := range 100 {
		if _, ok := again.Get("New" + strconv.Itoa(i)); !ok {
			t.Fatalf("acknowledged topic New%d lost across a crash", i)
		}
	}
	if _, ok := again.Get("Old2999"); !ok || again.version.Counter <= m.version.Counter {
		t.Fatalf("old topics or version lost: %d <= %d", again.version.Counter, m.version.Counter)
	}
	// The restart folded the journal into the file and emptied it.
	if st, err := os.Stat(again.path + journalSuffix); err != nil || st.Size() != 0 {
		t.Fatalf("journal after restart: %v %v", st, err)
	}
}

// A rewrite (an admin change, or every compactJournalAfter creations)
// empties the journal; lines it covered never come back, also when the
// truncation was lost: a topic deleted after its auto-creation stays
// deleted.
func TestTopicJournalCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := journalTestConfig()
	m, err := newTopicManager(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.closeJournal()
	if _, err := m.CreateIfMissing("Gone", 1, 6); err != nil {
		t.Fatal(err)
	}
	stale, err := os.ReadFile(m.path + journalSuffix)
	if err != nil || len(stale) == 0 {
		t.Fatalf("journal %q %v", stale, err)
	}
	if ok, err := m.Delete("Gone"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if m.journal.len() != 0 {
		t.Fatalf("journal not emptied by a rewrite: %d lines", m.journal.len())
	}
	// A crash between the rewrite and the truncation: the old line is back.
	c := crashCopy(t, dir)
	if err := os.WriteFile(filepath.Join(c, topicConfigFileName+journalSuffix), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := newTopicManager(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	again.closeJournal()
	if _, ok := again.Get("Gone"); ok {
		t.Fatal("a deleted topic came back from a stale journal line")
	}
	for i := range compactJournalAfter {
		if _, err := m.CreateIfMissing("C"+strconv.Itoa(i), 1, 6); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.journal.len(); n != 0 {
		t.Fatalf("journal has %d lines after %d creations", n, compactJournalAfter)
	}
	var f topicFile
	if err := loadJSON(m.path, &f); err != nil || len(f.TopicConfigTable) < compactJournalAfter {
		t.Fatalf("rewrite missing: %d topics, %v", len(f.TopicConfigTable), err)
	}
}

// A torn last line (a creation whose append the crash cut) is dropped; a
// damaged line in the middle is skipped and logged; the lines around them
// are applied.
func TestJournalTornAndDamagedLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.journal")
	good := func(v int64, name string) string {
		raw, _ := json.Marshal(topicConfig(name, 1, 6))
		line, _ := json.Marshal(journalLine{V: v, C: raw})
		return string(line) + "\n"
	}
	data := good(1, "A") + "{not json\n" + good(3, "B") + good(4, "C")[:20]
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := readJournal(path, 0, slog.New(slog.NewTextHandler(io.Discard, nil)), func(v int64, c json.RawMessage) error {
		var tc protocol.TopicConfig
		if err := json.Unmarshal(c, &tc); err != nil {
			return err
		}
		got = append(got, tc.TopicName)
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != "A" || got[1] != "B" {
		t.Fatalf("%v %v", got, err)
	}
}

// Auto-created groups are durable when Get returns (they were only
// written by the next periodic flush, 5 s later); the flush empties the
// journal.
func TestAutoCreatedGroupsJournaled(t *testing.T) {
	dir := t.TempDir()
	cfg := journalTestConfig()
	m, err := newGroupManager(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.closeJournal()
	for i := range 20 {
		if _, ok, err := m.Get("g" + strconv.Itoa(i)); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	again, err := newGroupManager(crashCopy(t, dir), cfg)
	if err != nil {
		t.Fatal(err)
	}
	again.closeJournal()
	for i := range 20 {
		if _, ok := again.Lookup("g" + strconv.Itoa(i)); !ok {
			t.Fatalf("acknowledged group g%d lost across a crash", i)
		}
	}
	if err := m.persistDirty(); err != nil || m.journal.len() != 0 {
		t.Fatalf("flush: %v, journal %d lines", err, m.journal.len())
	}
}

// FuzzJournal feeds arbitrary bytes to the journal parser: no panic, and
// only complete lines newer than the file's version are applied, in
// order, each decoding as the table's entry type or reported as damage.
func FuzzJournal(f *testing.F) {
	raw, _ := json.Marshal(topicConfig("T", 4, 6))
	line, _ := json.Marshal(journalLine{V: 3, C: raw})
	f.Add(append(line, '\n'))
	f.Add([]byte("{\"v\":1}\n{\"v\":2,\"c\":null}\n{\"v\":9,\"c\":[]}\n"))
	f.Add([]byte("\n\n{"))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte{'\n'})
		applied := 0
		parseJournal(data, "fuzz", 1, log, func(v int64, c json.RawMessage) error {
			if v <= 1 || c == nil {
				t.Fatalf("applied version %d (file version 1), entry %q", v, c)
			}
			applied++
			var tc protocol.TopicConfig
			return json.Unmarshal(c, &tc)
		})
		if applied > lines {
			t.Fatalf("%d lines applied from %d complete lines", applied, lines)
		}
	})
}
