package broker

import (
	"net"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// pullReserve is what a running pull handler reserves in its connection's
// byte budget: the engine's in-memory transfer cap per pull.
const pullReserve = 256 << 10

// serverConfig is the remoting configuration of the broker's listener:
// the transport limits of broker.conf (SECURITY.md, "Transport limits")
// and the reservations of the requests whose responses may be large. It
// also applies maxParkedPullsPerConnection to the pull-hold service.
func (b *Broker) serverConfig(ln net.Listener) remoting.ServerConfig {
	budget := b.cfg.MaxQueuedBytesPerConnection
	if budget == 0 {
		budget = remoting.DefaultMaxConnBytes
	}
	b.pulls.limitPerConn(b.cfg.MaxParkedPullsPerConnection)
	return remoting.ServerConfig{
		Listener: ln, Logger: b.log,
		MaxConns: b.cfg.MaxConnections, MaxConnBytes: budget,
		MaxInboundBytes: b.cfg.MaxInboundBytes, MaxRequestBody: bodilessRequests,
		TypedSendHeaders: true, // send.go reads them with DecodeRequest
		ResponseReserve: map[int16]int64{
			protocol.PullMessage: pullReserve,
			// A query answers up to maxNum whole messages: one at a time
			// per connection (reserving the whole budget runs it alone).
			protocol.QueryMessage:    max(budget, 0),
			protocol.ViewMessageByID: int64(b.maxMessageSize()),
		},
	}
}

// bodilessRequests lists request codes whose Java request carries no body
// (the header holds everything): a body sent with them is dropped unread
// (remoting.ServerConfig.MaxRequestBody), so junk bodies on parked pulls
// or queries pin no memory.
var bodilessRequests = map[int16]int32{
	protocol.PullMessage: 0, protocol.QueryMessage: 0, protocol.ViewMessageByID: 0,
	protocol.QueryConsumerOffset: 0, protocol.UpdateConsumerOffset: 0,
	protocol.SearchOffsetByTimestamp: 0, protocol.GetMaxOffset: 0, protocol.GetMinOffset: 0,
	protocol.GetEarliestMsgStoretime: 0, protocol.ConsumerSendMsgBack: 0,
	protocol.GetConsumerListByGroup: 0,
}
