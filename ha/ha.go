// Package ha replicates a master's commit log to slaves by log offset, as
// RocketMQ's classic HAService does (Java's HAService): a slave connects to the
// master's HA port, says where its log ends, and the master streams the
// frames from there; the slave appends them at the same offsets and
// reports how far it got, which releases SYNC_MASTER sends waiting for a
// slave. A slave may ask for S2-compressed data messages (compress.go).
// The stream is specified in FORMAT.md beside this file.
//
// The package imports no storage package: it declares the Source (master)
// and Sink (slave) it needs and the broker plugs the engine in.
//
// Goroutines: the Server runs an accept loop and, per slave connection, a
// sender (owns the connection's writes and its log reader) and a report
// reader (owns the reads). The Client runs one goroutine per connection
// attempt for the frames and one for the reports. Server.mu guards the
// slave set, the acknowledged offset and the waiter queue; nothing is done
// under it but bookkeeping.
package ha

import (
	"errors"
	"log/slog"
	"time"
)

// Reader reads a master's log as frames from a frame boundary onward.
type Reader interface {
	// Read appends frames to dst until it holds at least max bytes or the
	// written end is reached; it returns dst and the offset after them.
	Read(dst []byte, max int) ([]byte, int64, error)
	Offset() int64
	Close()
}

// Source is the master's log.
type Source interface {
	WrittenOffset() int64 // end of the bytes that may be streamed
	MinPhysOffset() int64
	SegmentSize() int64
	// TrailerBefore is the CRC-32C trailer of the frame ending at end.
	TrailerBefore(end int64) (crc uint32, ok bool, err error)
	// Advanced is closed the next time WrittenOffset may have moved.
	Advanced() <-chan struct{}
	OpenReader(from int64) (Reader, error)
}

// Sink is the slave's log.
type Sink interface {
	MaxPhysOffset() int64 // where the next frame must start
	WrittenOffset() int64
	DurableOffset() int64
	SegmentSize() int64
	TrailerBefore(end int64) (crc uint32, ok bool, err error)
	Advanced() <-chan struct{}
	// AppendReplica validates and appends frames starting at from.
	AppendReplica(from int64, frames []byte, durable bool) (int64, error)
}

// Errors of the SYNC_MASTER wait.
var (
	ErrSlaveNotAvailable = errors.New("ha: no slave connected, or the slave is too far behind")
	ErrSlaveTimeout      = errors.New("ha: timed out waiting for the slave")
	// ErrRefused wraps a master's refusal of a slave (its log has bytes the
	// master never had, a different segment size, …): the slave must not
	// continue; automatic truncation is not done.
	ErrRefused = errors.New("ha: master refused this slave")
	// ErrFenced fails SYNC_MASTER waits of a fenced master (Server.Fence).
	ErrFenced = errors.New("ha: this master is fenced: it acknowledges no write")
)

// Config holds the timing and size settings shared by both ends.
type Config struct {
	// BatchSize bounds the frame bytes of one data message
	// (haTransferBatchSize; default 256 KiB; a larger record goes alone).
	BatchSize int
	// Heartbeat is haSendHeartbeatInterval (5 s): the master sends an
	// empty data message and the slave a report at least this often.
	Heartbeat time.Duration
	// Housekeeping is haHousekeepingInterval (20 s): either side drops a
	// link silent for this long.
	Housekeeping time.Duration
	// FallBehindMax is haSlaveFallbehindMax (256 MiB): a SYNC_MASTER send
	// further than this ahead of the slave answers SLAVE_NOT_AVAILABLE.
	FallBehindMax int64
	// AckDurable makes a slave acknowledge only what it has fdatasynced
	// (zero loss when both machines lose power); default: what it wrote.
	AckDurable bool
	// Compress makes a slave ask for S2-compressed data messages
	// (haStreamCompression=s2; compress.go). A master needs no setting.
	Compress bool
	// Epochs is this store's epoch history (epoch.go; nil: an empty one
	// in memory). A master answers slaves from it; a slave records the
	// master's epochs in it before it appends their bytes.
	Epochs *Epochs
	// BrokerID (slaves) is sent in the hello so the master can tell its
	// replicas apart (Status.Replicas).
	BrokerID int64
	Logger   *slog.Logger
}

func (c *Config) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 256 << 10
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 5 * time.Second
	}
	if c.Housekeeping <= 0 {
		c.Housekeeping = 20 * time.Second
	}
	if c.FallBehindMax <= 0 {
		c.FallBehindMax = 256 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Epochs == nil {
		c.Epochs = NewMemoryEpochs()
	}
}
