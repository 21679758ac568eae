package broker

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// TestSendOnFullDiskThenResume: commit-log writes fail with ENOSPC. A
// producer gets SERVICE_NOT_AVAILABLE with a remark saying the disk is
// full (or FLUSH_DISK_TIMEOUT for a send already in the log), never
// SEND_OK, and sends succeed again by themselves once space is back.
func TestSendOnFullDiskThenResume(t *testing.T) {
	fsys := crashfs.New()
	_, c := startBroker(t, func(cfg *Config) {
		cfg.Store.FS = fsys
		cfg.Store.Retention.DiskUsage = func(string) (float64, error) { return 0.1, nil }
	})
	send := func() *protocol.Command {
		return produce(t, c, protocol.SendMessage, sendHeader("Full", 0, ""), []byte("payload"))
	}
	mustSendOK(t, send())
	fsys.Inject(crashfs.Fault{Op: crashfs.OpWrite, PathContains: "/commitlog/", Err: syscall.ENOSPC})
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp := send()
		if resp.Code == protocol.ResponseServiceNotAvailable {
			if !strings.Contains(resp.Remark, "disk full") {
				t.Fatalf("remark %q does not say the disk is full", resp.Remark)
			}
			break
		}
		if resp.Code != protocol.ResponseFlushDiskTimeout || time.Now().After(deadline) {
			t.Fatalf("send on a full disk: code %d %q", resp.Code, resp.Remark)
		}
	}
	fsys.ClearFaults()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp := send()
		if resp.Code == protocol.ResponseSuccess {
			break
		}
		if resp.Code != protocol.ResponseServiceNotAvailable || time.Now().After(deadline) {
			t.Fatalf("send after space came back: code %d %q", resp.Code, resp.Remark)
		}
	}
}

// TestPullOnFailedQueue: a consume queue whose files fail (EIO) answers
// pulls with SYSTEM_ERROR and the reason as remark, while a queue of
// another topic keeps serving new messages.
func TestPullOnFailedQueue(t *testing.T) {
	fsys := crashfs.New()
	b, c := startBroker(t, func(cfg *Config) {
		cfg.Store.FS = fsys
		cfg.Store.Retention.DiskUsage = func(string) (float64, error) { return 0.1, nil }
		cfg.Store.CheckpointInterval = 10 * time.Millisecond
	})
	addTopic(t, b, "Bad", 1)
	addTopic(t, b, "Good", 1)
	sendHeartbeat(t, c, "c1", "g", subSpec{topic: "Bad", expr: "*"}, subSpec{topic: "Good", expr: "*"})
	putMsg(t, b, "Bad", 0, "a")
	fsys.Inject(crashfs.Fault{Op: crashfs.OpWrite | crashfs.OpSync, PathContains: "consumequeue/Bad/0"})
	putMsg(t, b, "Bad", 0, "b")
	var resp *protocol.Command
	waitFor(t, "the queue to fail", func() bool {
		resp = call(t, c, pullReq("g", "Bad", 0, 0, 32, 0, 0))
		return resp.Code == protocol.ResponseSystemError
	})
	if !strings.Contains(resp.Remark, "consumequeue") || !strings.Contains(resp.Remark, "Bad/0") {
		t.Fatalf("remark %q does not say which queue failed", resp.Remark)
	}
	putMsg(t, b, "Good", 0, "g")
	checkPull(t, call(t, c, pullReq("g", "Good", 0, 0, 32, 0, 0)), pullWant{0, 1, 0, 1, "g"})
}
