package ha_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
)

// countingProxy forwards one slave's connections to the master and counts
// the bytes the master sent (bytes on the wire).
func countingProxy(t *testing.T, master string) (addr string, fromMaster *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	fromMaster = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m, err := net.Dial("tcp", master)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(m, c); m.Close() }()
			go func() { n, _ := io.Copy(c, m); fromMaster.Add(n); c.Close() }()
		}
	}()
	return ln.Addr().String(), fromMaster
}

// TestCompressedStream: a slave that asks for compression gets a
// byte-identical log for fewer bytes on the wire, on both flush policies.
func TestCompressedStream(t *testing.T) {
	for _, ft := range []engine.FlushDiskType{engine.SyncFlush, engine.AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) {
			wire := map[bool]int64{}
			for _, compress := range []bool{false, true} {
				c := newCluster(t, ft)
				put(t, c.master, 0, 600)
				addr, sent := countingProxy(t, c.srv.Addr().String())
				dir := t.TempDir()
				slave := open(t, dir, ft)
				c.cfg.Compress = compress
				stop, _ := c.slave(slave, addr)
				put(t, c.master, 600, 1200) // while it streams
				waitFor(t, "slave to catch up", caughtUp(c.master, slave))
				stop()
				end := c.master.MaxPhysOffset()
				if err := slave.Close(); err != nil {
					t.Fatal(err)
				}
				if err := c.master.Close(); err != nil {
					t.Fatal(err)
				}
				sameLogs(t, c.master.Dir(), dir, end)
				waitFor(t, "proxy to count", func() bool { return sent.Load() > 0 })
				wire[compress] = sent.Load()
			}
			if wire[true] >= wire[false]/2 {
				t.Fatalf("compressed stream sent %d bytes, plain %d: want less than half", wire[true], wire[false])
			}
		})
	}
}

// fakeMaster accepts one slave, checks whether its (v2) hello asked for
// compression, accepts it at offset 0 and sends msg as one data message.
// closed is closed when the slave drops the link.
func fakeMaster(t *testing.T, wantCompress bool, masterEnd int64, msg []byte) (addr string, closed <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hello := make([]byte, 32+20) // a v2 hello (FORMAT.md §1)
		if _, err := io.ReadFull(c, hello); err != nil || (binary.BigEndian.Uint32(hello[24:])&2 != 0) != wantCompress {
			t.Errorf("hello %x (%v): want compression asked: %v", hello, err, wantCompress)
			return
		}
		reply := make([]byte, 24)
		binary.BigEndian.PutUint32(reply, 0x4D514841)
		binary.BigEndian.PutUint64(reply[8:], uint64(masterEnd))
		c.Write(reply)
		ext := make([]byte, 16) // v2 reply extension of a master without epochs: epoch 0 ends at masterEnd, none later
		binary.BigEndian.PutUint64(ext[4:], uint64(masterEnd))
		c.Write(ext)
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // reports, until the slave drops the link
	}()
	return ln.Addr().String(), done
}

func dataMessage(from, end int64, size uint32, payload []byte) []byte {
	m := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint64(m, uint64(from))
	binary.BigEndian.PutUint64(m[8:], uint64(end))
	binary.BigEndian.PutUint32(m[16:], size)
	return append(m, payload...)
}

// TestCompressingSlaveWithOldMaster: a master that ignores the flag (as one
// without compression does) sends plain payloads; the slave applies them.
func TestCompressingSlaveWithOldMaster(t *testing.T) {
	c := newCluster(t, engine.AsyncFlush)
	put(t, c.master, 0, 50)
	waitFor(t, "master to write", func() bool { return c.master.WrittenOffset() == c.master.MaxPhysOffset() })
	r, err := c.master.NewFrameReader(0)
	if err != nil {
		t.Fatal(err)
	}
	frames, _, err := r.Read(nil, 1<<20)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	end := c.master.MaxPhysOffset()
	addr, _ := fakeMaster(t, true, end, dataMessage(0, end, uint32(len(frames)), frames))
	slave := open(t, t.TempDir(), engine.AsyncFlush)
	defer slave.Close()
	c.cfg.Compress = true
	stop, _ := c.slave(slave, addr)
	defer stop()
	waitFor(t, "slave to apply the plain payload", func() bool { return slave.WrittenOffset() == end })
}

// TestHostileCompressedPayload: a block declaring more than the 64 MiB
// message cap, and a compressed payload the slave did not ask for, drop
// the link without touching the slave's log.
func TestHostileCompressedPayload(t *testing.T) {
	bomb := binary.AppendUvarint(nil, 1<<30) // "decodes to 1 GiB"
	bomb = append(bomb, make([]byte, 16)...)
	for _, tc := range []struct {
		name     string
		compress bool
	}{{"oversized block", true}, {"unasked compression", false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, engine.AsyncFlush)
			c.cfg.Compress = tc.compress
			msg := dataMessage(0, 1<<20, uint32(len(bomb))|1<<31, bomb)
			addr, closed := fakeMaster(t, tc.compress, 1<<20, msg)
			slave := open(t, t.TempDir(), engine.AsyncFlush)
			defer slave.Close()
			stop, _ := c.slave(slave, addr)
			defer stop()
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("slave kept the link")
			}
			if slave.MaxPhysOffset() != 0 {
				t.Fatalf("slave log grew to %d", slave.MaxPhysOffset())
			}
		})
	}
}
