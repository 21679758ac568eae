package vfs

import (
	"fmt"
	"log/slog"
)

// Config selects the file system backend.
type Config struct {
	// Backend is "auto" (or empty, the default): io_uring when it works
	// here, else pwrite; "io_uring": io_uring or an error; "pwrite".
	Backend string
	// RingEntries sizes the io_uring submission ring; 0 means
	// DefaultRingEntries.
	RingEntries uint32
}

// newUring is NewUring; tests replace it to simulate an unavailable
// io_uring.
var newUring = NewUring

// Open returns the backend cfg asks for and logs exactly one line saying
// which backend runs and, when "auto" falls back to pwrite, why (ENOSYS on
// old kernels, EPERM under Docker's default seccomp profile or
// kernel.io_uring_disabled, a failed opcode probe). With "io_uring" a
// failure is returned instead, and nothing is logged. log may be nil
// (slog.Default).
func Open(cfg Config, log *slog.Logger) (FS, error) {
	if log == nil {
		log = slog.Default()
	}
	entries := cfg.RingEntries
	if entries == 0 {
		entries = DefaultRingEntries
	}
	switch cfg.Backend {
	case "", "auto":
		fsys, err := newUring(entries)
		if err != nil {
			log.Warn("vfs: io_uring unavailable, using the pwrite backend",
				"backend", "pwrite", "reason", err.Error())
			return Default(), nil
		}
		log.Info("vfs: using the io_uring backend", "backend", "io_uring", "ring_entries", entries)
		return fsys, nil
	case "io_uring":
		fsys, err := newUring(entries)
		if err != nil {
			return nil, fmt.Errorf("vfs: io_uring backend: %w", err)
		}
		log.Info("vfs: using the io_uring backend", "backend", "io_uring", "ring_entries", entries)
		return fsys, nil
	case "pwrite":
		log.Info("vfs: using the pwrite backend", "backend", "pwrite", "reason", "configured")
		return Default(), nil
	}
	return nil, fmt.Errorf("vfs: unknown backend %q (want auto, io_uring or pwrite)", cfg.Backend)
}
