package bench

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

func TestTopicNamesAndValidate(t *testing.T) {
	c := WireConfig{Topic: "T"}
	if n := c.TopicNames(); len(n) != 1 || n[0] != "T" {
		t.Errorf("one topic: %q", n)
	}
	c.Topics = 3
	if n := c.TopicNames(); len(n) != 3 || n[0] != "T_0" || n[2] != "T_2" {
		t.Errorf("three topics: %q", n)
	}
	for _, bad := range []WireConfig{{Topic: "T", Topics: -1}, {Topic: "T", Topics: MaxTopics + 1},
		{Topic: string(bytes.Repeat([]byte{'t'}, 125)), Topics: 100}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("accepted %d topics of %q", bad.Topics, bad.Topic)
		}
	}
}

// Split: every (topic, queue) pair of an address is served by exactly
// one of that address's connections; not split: every connection serves
// every pair of its address.
func TestConnShares(t *testing.T) {
	var routes []*protocol.TopicRouteData
	names := []string{"a", "b", "c"}
	for range names {
		routes = append(routes, &protocol.TopicRouteData{
			QueueDatas: []protocol.QueueData{{BrokerName: "b1", WriteQueueNums: 4, ReadQueueNums: 4, Perm: 6},
				{BrokerName: "b2", WriteQueueNums: 4, ReadQueueNums: 4, Perm: 6}},
			BrokerDatas: []protocol.BrokerData{{BrokerName: "b1", BrokerAddrs: map[int64]string{0: "h1:1"}},
				{BrokerName: "b2", BrokerAddrs: map[int64]string{0: "h2:1"}}},
		})
	}
	byAddr, addrs := spreadPairs(names, routes)
	if len(addrs) != 2 || len(byAddr["h1:1"]) != 12 || len(byAddr["h2:1"]) != 12 {
		t.Fatalf("pairs %v %d %d", addrs, len(byAddr["h1:1"]), len(byAddr["h2:1"]))
	}
	for _, nconns := range []int{2, 5, 30} {
		seen := map[topicQueue]int{}
		for k, share := range connShares(byAddr, addrs, nconns, true) {
			if len(share) == 0 {
				t.Errorf("%d conns: connection %d serves nothing", nconns, k)
			}
			for _, p := range share {
				if p.addr != addrs[k%len(addrs)] {
					t.Errorf("%d conns: connection %d serves %v of another broker", nconns, k, p)
				}
				seen[p]++
			}
		}
		for _, pairs := range byAddr {
			for _, p := range pairs {
				if seen[p] == 0 || (nconns <= 24 && seen[p] != 1) {
					t.Errorf("%d conns: pair %v served %d times", nconns, p, seen[p])
				}
			}
		}
	}
	for k, share := range connShares(byAddr, addrs, 4, false) {
		if len(share) != 12 {
			t.Errorf("unsplit: connection %d serves %d pairs", k, len(share))
		}
	}
}

func TestProduceSpreadOverTopics(t *testing.T) {
	f := startFake(t, 0)
	s, err := Produce(context.Background(), WireConfig{
		Namesrv: []string{f.addr}, Topic: "Spread", Topics: 50, Size: 256, TPS: 10000, Conns: 3, Mode: ModeAsync,
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Sent != 5000 || s.Acked != 5000 {
		t.Errorf("sent %d acked %d errors %v", s.Sent, s.Acked, s.Errors)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.topics) != 50 {
		t.Errorf("created %d topics, want 50", len(f.topics))
	}
	// 6000 sends (with the warmup) over 50 topics × 4 queues: 30 a pair
	// on average; round-robin keeps every pair within a factor 2 of that.
	for i := range 50 {
		for q := range 4 {
			n := f.perQueue["Spread_"+strconv.Itoa(i)+"/"+strconv.Itoa(q)]
			if n < 15 || n > 60 {
				t.Errorf("Spread_%d queue %d got %d sends", i, q, n)
			}
		}
	}
	if len(f.perQueue) != 200 {
		t.Errorf("sends reached %d pairs, want 200", len(f.perQueue))
	}
	// a second run finds the topics and creates nothing
	f.created.Store(false)
	f.mu.Unlock()
	_, err = Produce(context.Background(), WireConfig{Namesrv: []string{f.addr}, Topic: "Spread", Topics: 50, Size: 256,
		TPS: 1000, Duration: 100 * time.Millisecond, Warmup: 0, Timeout: time.Second})
	f.mu.Lock()
	if err != nil || f.created.Load() {
		t.Errorf("second run: err %v, created again %v", err, f.created.Load())
	}
}
