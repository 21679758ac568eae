package remoting

import (
	"context"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// TestTypedSendHeadersOptIn: only a server configured with
// TypedSendHeaders hands its send handlers typed headers; others see the
// ExtFields map as decoded. Both read the same header.
func TestTypedSendHeadersOptIn(t *testing.T) {
	h := protocol.SendMessageRequestHeader{ProducerGroup: "g", Topic: "T", DefaultTopic: "TBW102",
		DefaultTopicQueueNums: 4, QueueID: 1, BornTimestamp: 1_700_000_000_000}
	for _, typed := range []bool{false, true} {
		s, _ := startServer(t, ServerConfig{TypedSendHeaders: typed})
		got := make(chan *protocol.Command, 1)
		s.Handle(protocol.SendMessageV2, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
			got <- req
			return protocol.NewResponse(req, protocol.ResponseSuccess, "")
		})
		req := protocol.NewRequest(protocol.SendMessageV2, nil)
		req.ExtFields = h.EncodeV2()
		if _, err := dial(t, s, ClientConfig{}).Invoke(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		r := <-got
		if _, ok := r.SendHeader(); ok != typed || (r.ExtFields == nil) != typed {
			t.Fatalf("TypedSendHeaders=%v: typed=%v ExtFields=%v", typed, ok, r.ExtFields)
		}
		var d protocol.SendMessageRequestHeader
		if err := d.DecodeRequest(r); err != nil || d != h {
			t.Fatalf("TypedSendHeaders=%v: header %+v (%v), want %+v", typed, d, err, h)
		}
	}
}
