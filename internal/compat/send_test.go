package compat

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/mqd/mqd/internal/message"
)

// received collects messages by body.
type received struct {
	mu   sync.Mutex
	msgs map[string]*primitive.MessageExt
	n    int
}

func newReceived() *received { return &received{msgs: map[string]*primitive.MessageExt{}} }

func (r *received) add(msgs ...*primitive.MessageExt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.msgs[string(m.Body)] = m
		r.n++
	}
}

func (r *received) count() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs), r.n
}

func (r *received) get(body string) *primitive.MessageExt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[body]
}

func (r *received) listener() func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		r.add(msgs...)
		return consumer.ConsumeSuccess, nil
	}
}

func TestSendModesKeepKeysTagsAndProperties(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("SendModes", 4)
	p := c.producer()
	ctx := context.Background()
	mk := func(body string) *primitive.Message {
		m := primitive.NewMessage("SendModes", []byte(body)).WithTag("TagA").WithKeys([]string{"k-" + body, "shared"})
		m.WithProperty("userProp", "v-"+body)
		return m
	}
	var sent []string
	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("sync-%d", i)
		res, err := p.SendSync(ctx, mk(body))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("sync send: %v %v", err, res)
		}
		host, off, err := message.ParseOffsetMsgID(res.OffsetMsgID)
		if err != nil || host.String() != c.b.Addr() || off < 0 {
			t.Fatalf("offsetMsgId %q: %v %v", res.OffsetMsgID, host, err)
		}
		sent = append(sent, body)
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("async-%d", i)
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			defer wg.Done()
			if err != nil || res.Status != primitive.SendOK {
				t.Errorf("async send: %v %v", err, res)
			}
		}, mk(body))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, body)
	}
	wg.Wait()
	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("oneway-%d", i)
		if err := p.SendOneWay(ctx, mk(body)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, body)
	}
	var batch []*primitive.Message
	for i := 0; i < 10; i++ {
		body := fmt.Sprintf("batch-%d", i)
		batch = append(batch, mk(body))
		sent = append(sent, body)
	}
	res, err := p.SendSync(ctx, batch...)
	if err != nil || res.Status != primitive.SendOK || len(strings.Split(res.OffsetMsgID, ",")) != 10 {
		t.Fatalf("batch send: %v %+v", err, res)
	}

	got := newReceived()
	pc := c.pushConsumer("cg-sendmodes")
	if err := pc.Subscribe("SendModes", consumer.MessageSelector{}, got.listener()); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	waitUntil(t, 20*time.Second, func() bool { n, _ := got.count(); return n == len(sent) })
	for _, body := range sent {
		m := got.get(body)
		if m.GetTags() != "TagA" || m.GetKeys() != "k-"+body+" shared" || m.GetProperty("userProp") != "v-"+body {
			t.Fatalf("%s: tags %q keys %q prop %q", body, m.GetTags(), m.GetKeys(), m.GetProperty("userProp"))
		}
		if m.StoreHost != c.b.Addr() || m.BornHost == "" {
			t.Fatalf("%s: store host %q born host %q", body, m.StoreHost, m.BornHost)
		}
	}
}

func TestLargeBodies(t *testing.T) {
	c := startCluster(t, nil)
	c.createTopic("Large", 1)
	p := c.producer()
	ctx := context.Background()
	for _, size := range []int{1 << 20, 4<<20 - 4096} {
		body := bytes.Repeat([]byte{byte(size)}, size)
		// vary the content so compression (Go compresses bodies over 4 KiB) has work
		for i := 0; i < len(body); i += 997 {
			body[i] = byte(i)
		}
		res, err := p.SendSync(ctx, primitive.NewMessage("Large", body))
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("%d bytes: %v", size, err)
		}
	}
	big := make([]byte, 4<<20+1)
	crand.Read(big) // random: still above 4 MiB after the client's zlib
	if _, err := p.SendSync(ctx, primitive.NewMessage("Large", big)); err == nil || !strings.Contains(err.Error(), "13") {
		t.Fatalf("oversized body: want MESSAGE_ILLEGAL (13), got %v", err)
	}
	got := newReceived()
	pc := c.pushConsumer("cg-large")
	pc.Subscribe("Large", consumer.MessageSelector{}, got.listener())
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	waitUntil(t, 20*time.Second, func() bool { n, _ := got.count(); return n == 2 })
	for body := range got.msgs {
		if len(body) != 1<<20 && len(body) != 4<<20-4096 {
			t.Fatalf("body of %d bytes", len(body))
		}
	}
}
