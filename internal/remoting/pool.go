package remoting

import (
	"context"
	"errors"
	"sync"

	"github.com/mqd/mqd/internal/protocol"
)

// ErrPoolClosed is returned by a closed Pool.
var ErrPoolClosed = errors.New("remoting: pool closed")

// Pool keeps one Client per address, dialling on first use and again after
// the connection died. Concurrent first uses of an address share one dial.
// Calls are never retried: a request that may have been sent is not sent
// again (sends are not idempotent); the next call simply redials.
type Pool struct {
	cfg ClientConfig

	mu     sync.Mutex
	conns  map[string]*poolEntry
	closed bool
}

// poolEntry is a dial in progress or done; ready is closed when c/err are
// set.
type poolEntry struct {
	ready chan struct{}
	c     *Client
	err   error
}

// NewPool returns a pool dialling with cfg. cfg.OnClose, if set, is still
// called for every pooled connection that closes.
func NewPool(cfg ClientConfig) *Pool {
	return &Pool{cfg: cfg, conns: map[string]*poolEntry{}}
}

// Get returns a live client for addr, dialling if needed.
func (p *Pool) Get(ctx context.Context, addr string) (*Client, error) {
	for attempt := 0; ; attempt++ {
		e, dial, err := p.entry(addr)
		if err != nil {
			return nil, err
		}
		if dial {
			p.dial(ctx, addr, e)
		} else {
			select {
			case <-e.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if e.err == nil && !e.c.Closed() {
			return e.c, nil
		}
		p.forget(addr, e)
		if dial || attempt > 0 {
			if e.err != nil {
				return nil, e.err
			}
			return nil, e.c.closedErr()
		}
	}
}

// entry returns the current entry for addr, or a new one the caller must
// dial (dial = true).
func (p *Pool) entry(addr string) (e *poolEntry, dial bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false, ErrPoolClosed
	}
	if e = p.conns[addr]; e != nil {
		return e, false, nil
	}
	e = &poolEntry{ready: make(chan struct{})}
	p.conns[addr] = e
	return e, true, nil
}

func (p *Pool) dial(ctx context.Context, addr string, e *poolEntry) {
	cfg := p.cfg
	userClose := cfg.OnClose
	cfg.OnClose = func(c *Conn) {
		p.forgetConn(addr, c)
		if userClose != nil {
			userClose(c)
		}
	}
	e.c, e.err = Dial(ctx, addr, cfg)
	close(e.ready)
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed && e.err == nil {
		e.c.Close()
	}
}

// forget drops e if it is still addr's entry.
func (p *Pool) forget(addr string, e *poolEntry) {
	p.mu.Lock()
	if p.conns[addr] == e {
		delete(p.conns, addr)
	}
	p.mu.Unlock()
}

// forgetConn drops addr's entry if it holds c (called when c closes).
func (p *Pool) forgetConn(addr string, c *Conn) {
	p.mu.Lock()
	if e := p.conns[addr]; e != nil {
		select {
		case <-e.ready:
			if e.c != nil && e.c.Conn == c {
				delete(p.conns, addr)
			}
		default:
		}
	}
	p.mu.Unlock()
}

// Invoke sends cmd to addr and waits for the response.
func (p *Pool) Invoke(ctx context.Context, addr string, cmd *protocol.Command) (*protocol.Command, error) {
	c, err := p.Get(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.Invoke(ctx, cmd)
}

// InvokeAsync sends cmd to addr; cb gets the response or error (once).
func (p *Pool) InvokeAsync(ctx context.Context, addr string, cmd *protocol.Command, cb func(*protocol.Command, error)) {
	c, err := p.Get(ctx, addr)
	if err != nil {
		go cb(nil, err)
		return
	}
	c.InvokeAsync(ctx, cmd, cb)
}

// InvokeOneway sends cmd to addr with the oneway flag.
func (p *Pool) InvokeOneway(ctx context.Context, addr string, cmd *protocol.Command) error {
	c, err := p.Get(ctx, addr)
	if err != nil {
		return err
	}
	return c.InvokeOneway(cmd)
}

// CloseAddr closes and forgets the connection to addr, if any.
func (p *Pool) CloseAddr(addr string) {
	p.mu.Lock()
	e := p.conns[addr]
	delete(p.conns, addr)
	p.mu.Unlock()
	if e != nil {
		go func() {
			<-e.ready
			if e.c != nil {
				e.c.Close()
			}
		}()
	}
}

// Close closes every pooled connection; later calls fail with
// ErrPoolClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.conns
	p.conns = map[string]*poolEntry{}
	p.mu.Unlock()
	for _, e := range entries {
		select {
		case <-e.ready:
			if e.c != nil {
				e.c.Close()
			}
		default: // the dialler closes it when it sees p.closed
		}
	}
	return nil
}
