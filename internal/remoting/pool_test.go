package remoting

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

func TestPool(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	conns := make(chan *Conn, 8)
	s.OnConnect(func(c *Conn) { conns <- c })
	p := NewPool(ClientConfig{Logger: newLogger(&logBuffer{})})
	defer p.Close()
	addr := s.Addr().String()

	// Concurrent first uses share one dial.
	var wg sync.WaitGroup
	clients := make([]*Client, 8)
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := p.Get(ctxTimeout(t, 5*time.Second), addr)
			if err != nil {
				t.Error(err)
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	for _, c := range clients {
		if c != clients[0] {
			t.Fatal("pool dialled more than once")
		}
	}
	resp, err := p.Invoke(ctxTimeout(t, 5*time.Second), addr, request(echoCode, map[string]string{"a": "b"}, ""))
	if err != nil || resp.Ext("a") != "b" {
		t.Fatalf("%+v %v", resp, err)
	}

	// The server drops the connection: the next call redials.
	(<-conns).Close()
	waitFor(t, "client notices close", 2*time.Second, clients[0].Closed)
	resp, err = p.Invoke(ctxTimeout(t, 5*time.Second), addr, request(echoCode, nil, "again"))
	if err != nil || string(resp.Body) != "again" {
		t.Fatalf("%+v %v", resp, err)
	}
	c2, _ := p.Get(ctxTimeout(t, 5*time.Second), addr)
	if c2 == clients[0] || c2.Closed() {
		t.Fatal("no redial")
	}

	done := make(chan error, 1)
	p.InvokeAsync(ctxTimeout(t, 5*time.Second), addr, request(echoCode, nil, ""), func(_ *protocol.Command, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.InvokeOneway(ctxTimeout(t, 5*time.Second), addr, request(echoCode, nil, "")); err != nil {
		t.Fatal(err)
	}

	p.CloseAddr(addr)
	waitFor(t, "CloseAddr", 2*time.Second, c2.Closed)
	p.Close()
	if _, err := p.Get(context.Background(), addr); !errors.Is(err, ErrPoolClosed) {
		t.Fatal(err)
	}
}

func TestPoolDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := NewPool(ClientConfig{DialTimeout: time.Second})
	defer p.Close()
	if _, err := p.Invoke(context.Background(), addr, request(echoCode, nil, "")); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	done := make(chan error, 1)
	p.InvokeAsync(context.Background(), addr, request(echoCode, nil, ""), func(_ *protocol.Command, err error) { done <- err })
	if <-done == nil {
		t.Fatal("async dial failure not reported")
	}
}
