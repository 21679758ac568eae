package broker

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func queryOffset(t *testing.T, c *remoting.Client, group, topic string, queueID int32) *protocol.Command {
	t.Helper()
	return call(t, c, protocol.NewRequest(protocol.QueryConsumerOffset,
		&protocol.QueryConsumerOffsetRequestHeader{ConsumerGroup: group, Topic: topic, QueueID: queueID}))
}

func updateOffset(t *testing.T, c *remoting.Client, group, topic string, queueID int32, off int64) {
	t.Helper()
	resp := call(t, c, protocol.NewRequest(protocol.UpdateConsumerOffset,
		&protocol.UpdateConsumerOffsetRequestHeader{ConsumerGroup: group, Topic: topic, QueueID: queueID, CommitOffset: off}))
	if resp.Code != 0 {
		t.Fatalf("update: %d %s", resp.Code, resp.Remark)
	}
}

func wantOffset(t *testing.T, resp *protocol.Command, want string) {
	t.Helper()
	if resp.Code != 0 || resp.ExtFields["offset"] != want {
		t.Fatalf("code %d offset %q, want 0 %q", resp.Code, resp.ExtFields["offset"], want)
	}
}

// restartBroker shuts b down and starts a new broker on the same store.
func restartBroker(t *testing.T, b *Broker) (*Broker, *remoting.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := b.cfg
	cfg.Listener = ln
	return serve(t, cfg)
}

func TestConsumerOffsets(t *testing.T) {
	b, c := startBroker(t, nil)
	addTopic(t, b, "T", 2)
	putMsg(t, b, "T", 0, "a")
	wantOffset(t, queryOffset(t, c, "new", "T", 0), "0")    // young queue
	wantOffset(t, queryOffset(t, c, "new", "NONE", 0), "0") // unknown queue
	updateOffset(t, c, "g", "T", 0, 7)
	updateOffset(t, c, "g", "T", 1, 3)
	updateOffset(t, c, "g", "T", 1, 2) // backwards is accepted
	wantOffset(t, queryOffset(t, c, "g", "T", 0), "7")
	wantOffset(t, queryOffset(t, c, "g", "T", 1), "2")
	if got := b.offsets.Topics("g"); len(got) != 1 || got[0] != "T" {
		t.Fatalf("topics %v", got)
	}
	if resp := call(t, c, protocol.NewRequest(protocol.QueryConsumerOffset, nil)); resp.Code != protocol.ResponseSystemError {
		t.Fatalf("missing header: %d", resp.Code)
	}

	nb, nc := restartBroker(t, b)
	wantOffset(t, queryOffset(t, nc, "g", "T", 0), "7")
	wantOffset(t, queryOffset(t, nc, "g", "T", 1), "2")
	if got := nb.offsets.Offsets("g", "T"); len(got) != 2 {
		t.Fatalf("offsets %v", got)
	}
}

func TestOffsetLoopPersists(t *testing.T) {
	b, c := startBroker(t, func(cfg *Config) { cfg.FlushConsumerOffsetInterval = 20 * time.Millisecond })
	addTopic(t, b, "T", 1)
	updateOffset(t, c, "g", "T", 0, 42)
	waitFor(t, "offset file", func() bool {
		var f offsetFile
		if err := loadJSON(b.offsets.path, &f); err != nil {
			return false
		}
		return f.OffsetTable["T@g"][0] == 42
	})
	data, _ := json.Marshal(offsetFile{OffsetTable: map[string]map[int32]int64{"T@g": {0: 42}}})
	if string(data) != `{"offsetTable":{"T@g":{"0":42}}}` {
		t.Fatalf("file shape %s", data)
	}
}
