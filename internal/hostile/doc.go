// Package hostile is the catalogue of hostile frames (issue 8): each
// attack a client without credentials can mount with a few small,
// hand-crafted RocketMQ frames, replayed over TCP against a real mqd
// process (embedded nameserver, temporary store, free loopback ports).
//
// The package holds tests only. For every attack the test starts a fresh
// mqd, checks that it serves a normal send and pull and that its broker is
// in the nameserver's route of a probe topic, replays the attack while
// reading the process's VmRSS and VmHWM from /proc/<pid>/status, and then
// asserts:
//   - bounded memory: peak RSS during the attack at most
//     maxGrowth above the RSS before it (see hostile_test.go for the bound
//     and why);
//   - the broker still answers a normal send and pull;
//   - the broker is still in the route of the probe topic, and again after
//     the process restarts on the same store.
//
// Adding an attack is adding one function to the catalogue in
// attacks_test.go.
//
// Run: go test ./internal/hostile/ (builds cmd/mqd once; Linux only, as
// it reads /proc). MQD_BIN=/path/to/mqd runs the catalogue against another
// build, e.g. an older one to measure what an attack did before its fix.
package hostile
