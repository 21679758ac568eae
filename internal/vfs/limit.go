package vfs

import (
	"math"

	"golang.org/x/sys/unix"
)

// FileLimit returns the process's soft RLIMIT_NOFILE: how many descriptors
// it may hold open (the Go runtime raises the soft limit to the hard limit
// at start). An unlimited or unreadable limit gives math.MaxInt.
func FileLimit() int {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil ||
		l.Cur == unix.RLIM_INFINITY || l.Cur > math.MaxInt32 {
		return math.MaxInt
	}
	return int(l.Cur)
}
