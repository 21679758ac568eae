package namesrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
)

// NamespaceOrderTopicConfig is the KV namespace holding orderTopicConf
// strings by topic ("brokerName:queueNum;..."); the whole namespace is the
// REGISTER_BROKER response body.
const NamespaceOrderTopicConfig = "ORDER_TOPIC_CONFIG"

// kvFile is the persisted form, the same shape as Java's kvConfig.json.
type kvFile struct {
	ConfigTable map[string]map[string]string `json:"configTable"`
}

// kvStore is the namespace → key → value table. mu guards table and
// serialises writes of the file.
type kvStore struct {
	path string // "" = memory only

	mu    sync.RWMutex
	table map[string]map[string]string
}

// loadKV reads path when it exists; a missing file is an empty table.
func loadKV(path string) (*kvStore, error) {
	k := &kvStore{path: path, table: map[string]map[string]string{}}
	if path == "" {
		return k, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("namesrv: read kv config: %w", err)
	}
	if len(b) == 0 {
		return k, nil
	}
	var f kvFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("namesrv: parse kv config %s: %w", path, err)
	}
	for ns, kv := range f.ConfigTable {
		if kv == nil {
			kv = map[string]string{}
		}
		k.table[ns] = kv
	}
	return k, nil
}

// KV table limits (Config.MaxKVEntries, Config.MaxKVEntryBytes).
const (
	DefaultMaxKVEntries    = 4096
	DefaultMaxKVEntryBytes = 4 << 10
)

// errKVFull refuses a new entry beyond MaxKVEntries.
var errKVFull = errors.New("kv config table full")

// put sets namespace/key and persists. The table keeps the change even
// when persisting fails (as Java does); the error is for the log. A new
// entry beyond maxEntries is refused with errKVFull.
func (k *kvStore) put(ns, key, value string, maxEntries int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.table[ns][key]; !ok && k.countLocked() >= maxEntries {
		return errKVFull
	}
	t := k.table[ns]
	if t == nil {
		t = map[string]string{}
		k.table[ns] = t
	}
	t[key] = value
	return k.persistLocked()
}

func (k *kvStore) countLocked() int {
	n := 0
	for _, t := range k.table {
		n += len(t)
	}
	return n
}

// del removes namespace/key (the namespace itself stays, possibly empty,
// as in Java) and persists.
func (k *kvStore) del(ns, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.table[ns]
	if t == nil {
		return nil
	}
	if _, ok := t[key]; !ok {
		return nil
	}
	delete(t, key)
	return k.persistLocked()
}

func (k *kvStore) get(ns, key string) (string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	v, ok := k.table[ns][key]
	return v, ok
}

// list copies a namespace; false when it does not exist.
func (k *kvStore) list(ns string) (map[string]string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	t, ok := k.table[ns]
	if !ok {
		return nil, false
	}
	return maps.Clone(t), true
}

// persistLocked writes the table to a temp file, syncs it and renames it
// over path. Caller holds mu.
func (k *kvStore) persistLocked() error {
	if k.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(kvFile{ConfigTable: k.table}, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(k.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(k.path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), k.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
