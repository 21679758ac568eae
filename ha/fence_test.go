package ha_test

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
)

// TestFenceFailsWaitersAndAcknowledgesNothing: a fenced master's waiting
// SYNC_MASTER put fails at once (not after its timeout), a slave's report
// releases nothing while fenced, and the fenced store refuses puts.
func TestFenceFailsWaitersAndAcknowledgesNothing(t *testing.T) {
	c := newCluster(t, engine.SyncFlush)
	c.master.SetReplicaWaiter(replicaWaiter{c.srv, 20 * time.Second})
	// A slave that connects and acknowledges only when told to.
	conn, err := net.Dial("tcp", c.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hello := make([]byte, 32)
	binary.BigEndian.PutUint32(hello, 0x4D514841)
	binary.BigEndian.PutUint32(hello[4:], 1)
	binary.BigEndian.PutUint64(hello[8:], uint64(c.master.SegmentSize()))
	conn.Write(hello)
	waitFor(t, "slave to connect", func() bool { return c.srv.Status().Slaves == 1 })

	res := make(chan engine.PutResult, 1)
	go func() { res <- c.master.PutMessage(msg(0)) }()
	waitFor(t, "put to be written", func() bool { return c.master.WrittenOffset() > 0 })
	time.Sleep(50 * time.Millisecond) // let it queue its wait
	start := time.Now()
	c.srv.Fence(true)
	select {
	case r := <-res:
		if r.Status != engine.SlaveNotAvailable {
			t.Fatalf("fenced waiter: %v, want SLAVE_NOT_AVAILABLE", r.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fencing did not fail the waiting put")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waiter failed after %v", d)
	}
	// A report covering everything releases nothing while fenced.
	end := c.master.WrittenOffset()
	var rep [8]byte
	binary.BigEndian.PutUint64(rep[:], uint64(end))
	conn.Write(rep[:])
	if err := c.srv.WaitAck(end, time.Second); !errors.Is(err, ha.ErrFenced) {
		t.Fatalf("WaitAck while fenced: %v", err)
	}
	c.master.SetFenced(true)
	if r := c.master.PutMessage(msg(1)); r.Status != engine.ServiceNotAvailable || !errors.Is(r.Err, engine.ErrFenced) {
		t.Fatalf("put to a fenced store: %v %v", r.Status, r.Err)
	}
	if c.master.WrittenOffset() != end {
		t.Fatal("a fenced store wrote")
	}
	// Unfenced, the slave's acknowledgement counts again.
	c.master.SetFenced(false)
	c.srv.Fence(false)
	conn.Write(rep[:])
	waitFor(t, "ack after unfencing", func() bool { return c.srv.WaitAck(end, time.Second) == nil })
}
