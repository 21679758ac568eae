package ha_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
)

// TestEpochJoin runs the v2 join between real stores: a slave records its
// master's epochs before their bytes; a master whose history says the
// slave's last epoch ended earlier than the slave's log orders it to
// truncate there, and the slave's Run returns that order.
func TestEpochJoin(t *testing.T) {
	master := open(t, t.TempDir(), engine.SyncFlush)
	defer master.Close()
	put(t, master, 0, 20)
	mid := master.WrittenOffset()
	put(t, master, 20, 40)
	serve := func(epochs *ha.Epochs) *ha.Server {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := ha.NewServer(ln, source{master}, ha.Config{Heartbeat: 100 * time.Millisecond, Epochs: epochs})
		go srv.Serve()
		return srv
	}

	// Master history [1@0]: the slave copies the log and the history.
	srv := serve(ha.NewMemoryEpochs(ha.Entry{Epoch: 1, Start: 0}))
	slave := open(t, t.TempDir(), engine.SyncFlush)
	defer slave.Close()
	slaveEpochs := ha.NewMemoryEpochs()
	ctx, cancel := context.WithCancel(context.Background())
	cl := ha.NewClient(slave, func() string { return srv.Addr().String() }, ha.Config{Heartbeat: 100 * time.Millisecond, Epochs: slaveEpochs, BrokerID: 3})
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	waitFor(t, "slave caught up", caughtUp(master, slave))
	if got := slaveEpochs.Entries(); !slices.Equal(got, []ha.Entry{{Epoch: 1, Start: 0}}) {
		t.Fatalf("slave's epochs %v", got)
	}
	if r := srv.Status().Replicas; len(r) != 1 || r[0].BrokerID != 3 {
		t.Fatalf("replicas %+v", r)
	}
	cancel()
	<-done
	srv.Close()

	// The same log served under the history [1@0, 2@mid]: the slave's
	// epoch-1 bytes past mid are not in the master's epoch 1.
	srv = serve(ha.NewMemoryEpochs(ha.Entry{Epoch: 1, Start: 0}, ha.Entry{Epoch: 2, Start: mid}))
	defer srv.Close()
	cl = ha.NewClient(slave, func() string { return srv.Addr().String() }, ha.Config{Epochs: slaveEpochs})
	errc := make(chan error, 1)
	go func() { errc <- cl.Run(context.Background()) }()
	select {
	case err := <-errc:
		var trunc *ha.TruncateError
		if !errors.As(err, &trunc) || trunc.At != mid || trunc.LogEnd != slave.WrittenOffset() || trunc.Epoch != 1 {
			t.Fatalf("Run: %v, want a truncation to %d", err, mid)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no truncation order")
	}
	if st := cl.Status(); st.Err == nil {
		t.Fatal("status does not report the order")
	}
}
