package remoting

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// DefaultDialTimeout applies when the Dial context has no deadline.
const DefaultDialTimeout = 3 * time.Second

// ClientConfig configures Dial. Zero values take the defaults.
type ClientConfig struct {
	DialTimeout time.Duration // default 3 s, when ctx has no deadline
	MaxFrame    int           // default protocol.DefaultMaxFrame
	// IdleTimeout closes the connection after this long without inbound
	// bytes; 0 (default) never does.
	IdleTimeout  time.Duration
	WriteTimeout time.Duration // default 30 s; negative disables
	// MaxInflight bounds concurrently running handlers of server→client
	// requests (default 64).
	MaxInflight int
	// MaxConnBytes is the connection's byte budget for serving
	// server→client requests (see ServerConfig; default
	// DefaultMaxConnBytes; negative: none).
	MaxConnBytes int64
	Logger       *slog.Logger // default slog.Default()
	// Mux serves server→client requests (e.g. NOTIFY_CONSUMER_IDS_CHANGED).
	// Nil means a fresh Mux: every such request gets code 3.
	Mux *Mux
	// OnClose runs once when the connection closes.
	OnClose func(*Conn)
}

// Client is a dialled connection. All Conn methods are available: Invoke
// (pipelined), InvokeAsync, InvokeOneway, Close, Done.
type Client struct {
	*Conn
	mux *Mux
}

// Dial connects to addr.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	cc := cfg.connConfig()
	if _, ok := ctx.Deadline(); !ok {
		timeout := cfg.DialTimeout
		if timeout <= 0 {
			timeout = DefaultDialTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := newConn(nc, cc)
	c.start()
	return &Client{Conn: c, mux: cc.mux}, nil
}

func (cfg ClientConfig) connConfig() *connConfig {
	cc := &connConfig{
		mux: cfg.Mux, logger: cfg.Logger, maxFrame: cfg.MaxFrame,
		idleTimeout: cfg.IdleTimeout, writeTimeout: orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		maxInflight: cfg.MaxInflight, onClose: cfg.OnClose,
		maxBytes: orDefaultN(cfg.MaxConnBytes, DefaultMaxConnBytes), limitLog: &rateLog{},
	}
	if cc.mux == nil {
		cc.mux = NewMux()
	}
	if cc.logger == nil {
		cc.logger = slog.Default()
	}
	if cc.maxFrame <= 0 {
		cc.maxFrame = protocol.DefaultMaxFrame
	}
	if cc.maxInflight <= 0 {
		cc.maxInflight = 64
	}
	return cc
}

// Handle registers a handler for a server→client request code on the
// client's Mux (shared with every client dialled with the same
// ClientConfig.Mux, e.g. all connections of a Pool).
func (c *Client) Handle(code int16, h Handler) { c.mux.Handle(code, h) }
