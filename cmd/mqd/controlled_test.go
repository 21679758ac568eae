package main

import (
	"log/slog"
	"testing"

	"github.com/mqd/mqd/internal/broker"
)

// TestAgentConfigLease (review finding 2): all-in-sync acknowledgement,
// which needs no lease, applies only to a SYNC_MASTER; an ASYNC_MASTER in
// controller mode (allAckInSyncStateSet left true) keeps the lease that
// stops it acknowledging once cut from the controllers.
func TestAgentConfigLease(t *testing.T) {
	cfg := broker.NewConfig()
	cfg.Controller.Addrs = []string{"127.0.0.1:9878"}
	if !cfg.Controller.AllAck {
		t.Fatal("allAckInSyncStateSet no longer defaults to true: revisit this test")
	}
	for _, c := range []struct {
		role      string
		allAck    bool
		wantLease bool
	}{{broker.RoleSyncMaster, true, false}, {broker.RoleAsyncMaster, false, true}} {
		ac := agentConfig(cfg, c.role, "127.0.0.1:10911", "127.0.0.1:10912", slog.Default())
		if err := ac.Defaults(); err != nil {
			t.Fatal(err)
		}
		if ac.AllAck != c.allAck || (ac.Lease > 0) != c.wantLease {
			t.Errorf("%s: AllAck %v lease %v, want AllAck %v and a lease: %v", c.role, ac.AllAck, ac.Lease, c.allAck, c.wantLease)
		}
	}
}
