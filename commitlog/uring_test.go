package commitlog

import (
	"testing"

	"github.com/mqd/mqd/internal/vfs"
)

func uringAvailable() bool { return false }

func newUringFS(t *testing.T) vfs.FS { t.Skip("io_uring backend not wired"); return nil }
