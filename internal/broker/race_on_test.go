//go:build race

package broker

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// tests that rely on a pooled buffer coming back are not run under it.
const raceEnabled = true
