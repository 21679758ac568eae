package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Config files under <store>/config are written as RocketMQ does (facts
// §9.1): new content to X.tmp (synced), the old file kept as X.bak, then
// X.tmp renamed over X and the directory synced. Loading falls back to
// X.bak when X is missing, empty or unparsable. The formats are mqd's own
// JSON (standard JSON), not fastjson's.

// saveJSON writes v to path atomically.
func saveJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return saveFile(path, data)
}

// saveFile writes data to path atomically (see saveJSON).
func saveFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && len(old) > 0 {
		if err := writeSynced(path+".bak", old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadJSON reads path (or its .bak) into v. A missing file leaves v
// untouched and returns nil.
func loadJSON(path string, v any) error {
	return loadFile(path, func(data []byte) error { return json.Unmarshal(data, v) })
}

// loadFile reads path (or its .bak) and hands the content to decode.
func loadFile(path string, decode func([]byte) error) error {
	for _, p := range []string{path, path + ".bak"} {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) || (err == nil && len(data) == 0) {
			continue
		}
		if err != nil {
			return err
		}
		if err := decode(data); err != nil {
			if p == path {
				continue // damaged: try the backup
			}
			return fmt.Errorf("broker: %s: %w", p, err)
		}
		return nil
	}
	return nil
}

// persistDirty writes the snapshot taken under mu to path when *dirty is
// set, clearing it, and sets it again when the write fails. persistMu
// serialises the writes (a newer snapshot never lands before an older).
func persistDirty(persistMu *sync.Mutex, mu sync.Locker, dirty *bool, path string, snapshot func() any) error {
	return persistDirtyJournal(persistMu, mu, dirty, path, nil, snapshot)
}

// persistDirtyJournal is persistDirty for a table with a journal j (nil:
// none): a successful write compacts it (journal.go).
func persistDirtyJournal(persistMu *sync.Mutex, mu sync.Locker, dirty *bool, path string, j *journal, snapshot func() any) error {
	persistMu.Lock()
	defer persistMu.Unlock()
	mu.Lock()
	if !*dirty {
		mu.Unlock()
		return nil
	}
	v := snapshot()
	var mark int64
	if j != nil {
		mark = j.mark()
	}
	*dirty = false
	mu.Unlock()
	if err := saveJSON(path, v); err != nil {
		mu.Lock()
		*dirty = true
		mu.Unlock()
		return err
	}
	if j != nil {
		mu.Lock()
		j.compacted(mark)
		mu.Unlock()
	}
	return nil
}
