// Package testport hands tests TCP ports for processes they start (mqd,
// child brokers), without two test processes ever being given the same
// port.
//
// Picking a port by listening on 127.0.0.1:0 and closing it again races:
// the port lies in the kernel's ephemeral range (32768 and up by default),
// so an outgoing connection's local end, or another test binary's listener
// (go test runs packages in parallel), can take it before the child binds
// it. Ports here come from [firstPort, lastPort), below that range, in
// blocks that a test process holds by an exclusive flock(2) on a file named
// after the block; the kernel drops the lock when the process exits, however
// it exits.
//
// Every port is handed out with its upper neighbour reserved too, and the
// neighbour is never handed out: a RocketMQ broker's haListenPort defaults
// to listenPort + 1 (BrokerStartup), so a broker given port p also binds
// p + 1.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

const (
	firstPort = 20000
	lastPort  = 32000 // below the default ephemeral range (32768)
	blockSize = 32
	blocks    = (lastPort - firstPort) / blockSize
)

var (
	mu   sync.Mutex
	next int // next candidate port in the held block; 0: none held
	end  int // end of the held block
)

// Free returns a port that is free now, that no other test process using
// this package is given, and whose neighbour (port + 1) is also free and
// held back. It fails the test when no block can be had.
func Free(tb testing.TB) int {
	tb.Helper()
	p, err := free()
	if err != nil {
		tb.Fatalf("testport: %v", err)
	}
	return p
}

// Addr returns "127.0.0.1:<Free(tb)>".
func Addr(tb testing.TB) string {
	tb.Helper()
	return "127.0.0.1:" + strconv.Itoa(Free(tb))
}

func free() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for tries := 0; tries < 4*blocks; {
		for next != 0 && next+1 < end {
			p := next
			next += 2
			if bindable(p) && bindable(p+1) {
				return p, nil
			}
		}
		if err := lockBlock(); err != nil {
			return 0, err
		}
		tries++
	}
	return 0, fmt.Errorf("no free port pair in [%d,%d)", firstPort, lastPort)
}

// lockBlock takes an exclusive lock on a block no other process holds and
// makes it the current block. The lock file stays open for the life of
// the process.
func lockBlock() error {
	dir := filepath.Join(os.TempDir(), "mqd-testport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	start := firstTry()
	for i := range blocks {
		b := firstPort + ((start+i)%blocks)*blockSize
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(b)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		held = append(held, f) // keeps the lock (and the file) alive
		next, end = b, b+blockSize
		return nil
	}
	return fmt.Errorf("every port block in [%d,%d) is held by another process", firstPort, lastPort)
}

// firstTry is the block tried first; random, so that processes rarely
// contend.
var firstTry = func() int { return rand.IntN(blocks) }

// held keeps the lock files of this process's blocks open.
var held []*os.File

// bindable reports whether port can be listened on, on every address, as
// mqd does.
func bindable(port int) bool {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
