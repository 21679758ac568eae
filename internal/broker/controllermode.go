package broker

// Controller mode keys (automatic failover, package controller and
// controller/agent; Java 5's BrokerConfig and MessageStoreConfig names).
// The broker package only parses them: cmd/mqd runs the agent that drives
// the broker's role (README "Cluster with automatic failover").

import (
	"fmt"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// Controller-mode defaults of the acknowledgement keys (NewConfig).
const (
	DefaultAllAckInSyncStateSet = true
	DefaultMinInSyncReplicas    = 2
)

// ControllerConfig holds the controller-mode keys.
type ControllerConfig struct {
	Enable bool     // enableControllerMode, false
	Addrs  []string // controllerAddr, ';'-separated controller addresses
	// HeartbeatInterval is brokerHeartbeatInterval (1 s).
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is controllerHeartBeatTimeoutMills: the controller
	// elects a new master this long after the master's last heartbeat
	// (6 s here so failover fits in 10 s; Java: 10 s).
	HeartbeatTimeout time.Duration
	// Lease is controllerLeaseMills (mqd only): a master that has had no
	// heartbeat answered for this long stops acknowledging writes; must be
	// below the timeout. Default: off with AllAck on a SYNC_MASTER
	// (all-in-sync acknowledgement needs no lease, controller/doc.go), else
	// (also for an ASYNC_MASTER, which acknowledges without slaves)
	// HeartbeatTimeout − 2 × HeartbeatInterval (a 4.x one-slave
	// acknowledgement is safe only with it).
	Lease time.Duration
	// AllAck is allAckInSyncStateSet (Java's store key; default true here,
	// NewConfig): a SYNC_MASTER send is acknowledged once every member of
	// the controller's in-sync set has it (ha/isr.go); false: once one
	// slave has it (4.x), fenced by the lease.
	AllAck bool
	// MinInSync is minInSyncReplicas (Java's store key; default 2 here,
	// NewConfig): with AllAck, a SYNC_MASTER send is refused (code 1, "in-sync
	// replicas not enough") while the in-sync set, the master counted, is
	// smaller.
	MinInSync int
	// InSyncLag is haMaxTimeSlaveNotCatchup (15 s): a slave not caught up
	// with where the master was this long ago leaves the in-sync set.
	InSyncLag time.Duration
	Priority  int32 // brokerElectionPriority: lower is preferred among equals
}

func applyControllerProperty(c *Config, k, v string) (bool, error) {
	cc := &c.Controller
	switch k {
	case "enableControllerMode":
		return true, setBool(&cc.Enable, v)
	case "controllerAddr":
		cc.Addrs = SplitAddrs(v)
	case "brokerHeartbeatInterval":
		return true, setMillis(&cc.HeartbeatInterval, v)
	case "controllerHeartBeatTimeoutMills":
		return true, setMillis(&cc.HeartbeatTimeout, v)
	case "controllerLeaseMills":
		return true, setMillis(&cc.Lease, v)
	case "haMaxTimeSlaveNotCatchup":
		return true, setMillis(&cc.InSyncLag, v)
	case "allAckInSyncStateSet":
		return true, setBool(&cc.AllAck, v)
	case "minInSyncReplicas":
		var n int64
		if err := setInt64(&n, v); err != nil {
			return true, err
		}
		if n < 1 || n > protocol.MaxReplicasPerName {
			return true, fmt.Errorf("want 1 to %d", protocol.MaxReplicasPerName)
		}
		cc.MinInSync = int(n)
	case "brokerElectionPriority":
		var n int64
		if err := setInt64(&n, v); err != nil {
			return true, err
		}
		if n < -1<<31 || n > 1<<31-1 {
			return true, fmt.Errorf("out of int32 range")
		}
		cc.Priority = int32(n)
	default:
		return false, nil
	}
	return true, nil
}
