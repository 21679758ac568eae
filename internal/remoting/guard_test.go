package remoting

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

func TestGuardRunsBeforeEveryHandler(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	var handled, guarded atomic.Int32
	s.Handle(1, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		handled.Add(1)
		return protocol.NewResponse(req, protocol.ResponseSuccess, "handler")
	})
	s.SetGuard(func(_ context.Context, conn *Conn, req *protocol.Command) *protocol.Command {
		guarded.Add(1)
		if conn.RemoteAddrString() == "" || req.Ext("deny") == "" {
			return nil
		}
		return protocol.NewResponse(req, protocol.ResponseSystemError, "denied")
	})
	c := dial(t, s, ClientConfig{})
	ctx := ctxTimeout(t, 5*time.Second)
	for _, tc := range []struct {
		code   int16
		ext    map[string]string
		want   int16
		remark string
	}{
		{1, nil, protocol.ResponseSuccess, "handler"},
		{1, map[string]string{"deny": "1"}, protocol.ResponseSystemError, "denied"},
		{999, map[string]string{"deny": "1"}, protocol.ResponseSystemError, "denied"}, // unknown codes too
		{999, nil, protocol.ResponseRequestCodeNotSupported, " request type 999 not supported"},
	} {
		resp, err := c.Invoke(ctx, request(tc.code, tc.ext, ""))
		if err != nil || resp.Code != tc.want || resp.Remark != tc.remark {
			t.Fatalf("code %d %v: %+v %v", tc.code, tc.ext, resp, err)
		}
	}
	if handled.Load() != 1 || guarded.Load() != 4 {
		t.Fatalf("handled %d guarded %d", handled.Load(), guarded.Load())
	}
	// A denied oneway request gets no answer.
	nc := rawDial(t, s)
	ow := request(1, map[string]string{"deny": "1"}, "")
	ow.Opaque, ow.Flag = 7, protocol.FlagOneway
	writeCmd(t, nc, ow)
	normal := request(1, nil, "")
	normal.Opaque = 8
	writeCmd(t, nc, normal)
	if resp := readCmd(t, nc); resp.Opaque != 8 {
		t.Fatalf("first frame back is %+v, want the reply to opaque 8", resp)
	}
	s.SetGuard(nil)
	if resp, err := c.Invoke(ctx, request(1, map[string]string{"deny": "1"}, "")); err != nil || resp.Code != protocol.ResponseSuccess {
		t.Fatalf("guard removed: %+v %v", resp, err)
	}
}
