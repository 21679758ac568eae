package crashfs

import (
	"strings"
	"sync"
	"time"
)

// Sync gates, for tests of durability timeouts: the fdatasyncs (Sync and
// WritevSync) of files whose path contains a pattern can be held back
// until released, and slowed by a fixed delay each. A gated sync waits
// before it takes the file system's lock, so everything else goes on
// meanwhile. A crash does not carry the gate over.
type syncGate struct {
	mu    sync.Mutex
	match string        // "": no file is gated
	delay time.Duration // added to every gated sync
	held  chan struct{} // nil: not held
}

// GateSyncs gates the syncs of files whose path contains match: they wait
// while HoldSyncs is in force, and take delay longer each.
func (f *FS) GateSyncs(match string, delay time.Duration) {
	f.gate.mu.Lock()
	f.gate.match, f.gate.delay = match, delay
	f.gate.mu.Unlock()
}

// HoldSyncs makes gated syncs wait until ReleaseSyncs.
func (f *FS) HoldSyncs() {
	f.gate.mu.Lock()
	if f.gate.held == nil {
		f.gate.held = make(chan struct{})
	}
	f.gate.mu.Unlock()
}

// ReleaseSyncs lets held syncs go on.
func (f *FS) ReleaseSyncs() {
	f.gate.mu.Lock()
	if f.gate.held != nil {
		close(f.gate.held)
		f.gate.held = nil
	}
	f.gate.mu.Unlock()
}

// waitGate holds a sync of name as the gate says.
func (f *FS) waitGate(name string) {
	g := &f.gate
	g.mu.Lock()
	match, delay, held := g.match, g.delay, g.held
	g.mu.Unlock()
	if match == "" || !strings.Contains(name, match) {
		return
	}
	if held != nil {
		<-held
	}
	if delay > 0 {
		time.Sleep(delay)
	}
}
