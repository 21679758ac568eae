package engine

import "github.com/mqd/mqd/commitlog"

// FlushStats reports the commit log's fdatasync latency and group-commit
// round sizes (for the metrics exporter).
func (s *Store) FlushStats() commitlog.FlushStats { return s.cl.FlushStats() }
