package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
)

// BenchmarkSendPath measures one SEND_MESSAGE(_V2) request through the
// broker without the network: decode the frame (JSON header, as Java and Go
// producers send it), run the send handler (ASYNC_FLUSH store, so the disk
// is not in the figure), encode the response frame. Issue 14's goal is 0
// allocs/op; judge CPU by ns/op A/B in one sitting (or callgrind), never
// across sittings.
//
//	go test -run '^$' -bench SendPath -benchmem ./internal/broker
func BenchmarkSendPath(b *testing.B) {
	for _, bc := range []struct {
		name string
		code int16
		st   protocol.SerializeType
	}{
		{"V2/JSON", protocol.SendMessageV2, protocol.SerializeJSON},
		{"V1/JSON", protocol.SendMessage, protocol.SerializeJSON},
		{"V2/ROCKETMQ", protocol.SendMessageV2, protocol.SerializeRocketMQ},
	} {
		b.Run(bc.name, func(b *testing.B) { benchSendPath(b, bc.code, bc.st, 1) })
	}
	// Issue 14's 10,000 topics × 8 queues, round-robin: what a send costs
	// when its topic's state is not in the CPU cache.
	b.Run("V2/JSON/10000topics", func(b *testing.B) {
		benchSendPath(b, protocol.SendMessageV2, protocol.SerializeJSON, 10000)
	})
}

// benchSendPath sends to topics topics of 8 queues round-robin (one:
// queue 1 of BenchTopic).
func benchSendPath(b *testing.B, code int16, st protocol.SerializeType, topics int) {
	br := benchBroker(b, engine.AsyncFlush)
	frames := make([][]byte, 0, topics*8)
	for i := range topics {
		if topics == 1 {
			frames = append(frames, benchSendFrame(b, code, st, "BenchTopic", 1))
			break
		}
		name := fmt.Sprintf("BenchTopic_%d", i)
		benchTopic(br, name)
		for q := range int32(8) {
			frames = append(frames, benchSendFrame(b, code, st, name, q))
		}
	}
	handler := br.server.Handler(code)
	ctx := context.Background()
	out := make([]byte, 0, 4096)
	send := func(frame []byte) {
		cmd, err := protocol.DecodeRequestFrame(frame) // as remoting's read loop does
		if err != nil {
			b.Fatal(err)
		}
		resp := handler(ctx, nil, cmd)
		if resp.Code != protocol.ResponseSuccess {
			b.Fatalf("send: %d %s", resp.Code, resp.Remark)
		}
		cmd.Recycle() // as remoting's connection does for HandleRecycled codes
		if out, err = resp.AppendHead(out[:0]); err != nil {
			b.Fatal(err)
		}
		resp.Recycle() // ... once the response is written
	}
	if topics > 1 {
		for _, f := range frames { // every queue's first send (its state made) before the clock
			send(f)
		}
	}
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	for i := range b.N {
		send(frames[i%len(frames)])
	}
}

// benchSendFrame is a send request to queue of topic as a producer sends it.
func benchSendFrame(b *testing.B, code int16, st protocol.SerializeType, topic string, queue int32) []byte {
	h := &protocol.SendMessageRequestHeader{
		ProducerGroup: "bench-producer", Topic: topic, DefaultTopic: TopicAutoCreate,
		DefaultTopicQueueNums: 4, QueueID: queue, BornTimestamp: 1_700_000_000_000,
		Properties: "TAGS\x01tag-a\x02KEYS\x01k1\x02UNIQ_KEY\x017F0000010001ABCDEF0123456789AB\x02WAIT\x01true\x02",
	}
	req := protocol.NewRequest(code, nil)
	if code == protocol.SendMessage {
		req.ExtFields = h.Encode()
	} else {
		req.ExtFields = h.EncodeV2()
	}
	req.Opaque, req.SerializeType, req.Body = 42, st, make([]byte, 1024)
	frame, err := req.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return frame[4:] // DecodeFrame takes the frame without its length
}

// benchTopic adds an 8-queue topic to the table without persisting it
// (10,000 rewrites of the file would take minutes).
func benchTopic(br *Broker, name string) {
	m := br.topics
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setLocked(topicConfig(name, 8, protocol.PermRead|protocol.PermWrite))
	m.changedLocked(true)
}

// benchBroker starts a broker on a loopback port with a store under
// $MQD_BENCH_DIR (or a temp dir) and the given flush policy; both are
// removed when the benchmark ends.
func benchBroker(b *testing.B, flush engine.FlushDiskType) *Broker {
	dir := os.Getenv("MQD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "sendbench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := NewConfig()
	cfg.BrokerIP1, cfg.Listener = "127.0.0.1", ln
	cfg.Store = engine.Config{Dir: dir, FlushDiskType: flush}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Shutdown(context.Background()) })
	return br
}
