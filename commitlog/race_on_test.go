//go:build race

package commitlog

// raceEnabled: the race detector slows the crash cycles ~5x, so they run
// fewer seeds by default.
const raceEnabled = true
