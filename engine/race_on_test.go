//go:build race

package engine

// raceEnabled: the crashfs store tests adapt under the race detector (see
// cfsConfig).
const raceEnabled = true
