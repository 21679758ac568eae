package bench

// Spread load (issue 14: "10,000 topics × 8 queues with producers spread
// over them"): mqbench produce -topics N sends round-robin over every
// write queue of N topics. The topics are looked up, the missing ones
// created with UPDATE_AND_CREATE_TOPIC on every master, and their routes
// awaited, each step by a few requests in parallel; then every connection
// to a broker gets its share of that broker's (topic, queue) pairs, so the
// request templates exist once per pair, not once per pair and connection.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// MaxTopics bounds -topics (each pair of topic and queue holds one request
// template, about half a KiB).
const MaxTopics = 100_000

// TopicNames are the topics a run produces to: the topic itself, or with
// Topics > 1 topic_0 … topic_{Topics-1}.
func (c *WireConfig) TopicNames() []string {
	if c.Topics <= 1 {
		return []string{c.Topic}
	}
	names := make([]string, c.Topics)
	for i := range names {
		names[i] = c.Topic + "_" + strconv.Itoa(i)
	}
	return names
}

// adminWorkers is how many admin requests ensureTopics keeps in flight.
const adminWorkers = 16

// parallel runs f(i) for i in [0, n) on adminWorkers goroutines and returns
// the first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range min(adminWorkers, n) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || ctx.Err() != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// ensureTopics returns the route of every topic in names (in that order),
// creating the missing ones and waiting up to 15 s (plus 1 ms a topic) for
// their routes to appear.
func (a *wireAdmin) ensureTopics(ctx context.Context, names []string) ([]*protocol.TopicRouteData, error) {
	if len(names) == 1 {
		r, err := a.ensureTopicNamed(ctx, names[0])
		return []*protocol.TopicRouteData{r}, err
	}
	routes := make([]*protocol.TopicRouteData, len(names))
	lookup := func(i int) error {
		r, err := a.route(ctx, names[i])
		switch {
		case err == nil && len(routeQueues(r, true)) > 0:
			routes[i] = r
		case err != nil && !errors.Is(err, errTopicNotExist):
			return err
		}
		return nil
	}
	if err := parallel(ctx, len(names), lookup); err != nil {
		return nil, err
	}
	missing := missingRoutes(routes)
	if len(missing) == 0 {
		return routes, nil
	}
	addrs, err := a.masterAddrs(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	err = parallel(ctx, len(missing)*len(addrs), func(i int) error {
		return a.createTopic(ctx, addrs[i%len(addrs)], names[missing[i/len(addrs)]])
	})
	if err != nil {
		return nil, err
	}
	a.logf("created %d topics with %d queues on %d broker(s) in %v", len(missing), a.cfg.Queues, len(addrs), time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(15*time.Second + time.Duration(len(missing))*time.Millisecond)
	for len(missing) > 0 {
		if err := parallel(ctx, len(missing), func(i int) error { return lookup(missing[i]) }); err != nil {
			return nil, err
		}
		if missing = missingRoutes(routes); len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d topics created but their routes did not appear in time (first: %s)", len(missing), len(names), names[missing[0]])
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return routes, nil
}

func missingRoutes(routes []*protocol.TopicRouteData) []int {
	var out []int
	for i, r := range routes {
		if r == nil {
			out = append(out, i)
		}
	}
	return out
}

// topicQueue is one write queue of one topic.
type topicQueue struct {
	topic string
	brokerQueue
}

// spreadPairs lists the write queues of every topic by broker address (in
// topics order, then queue order) and returns the addresses in first-seen
// order.
func spreadPairs(names []string, routes []*protocol.TopicRouteData) (map[string][]topicQueue, []string) {
	byAddr := map[string][]topicQueue{}
	var addrs []string
	for i, r := range routes {
		for _, q := range routeQueues(r, true) {
			if byAddr[q.addr] == nil {
				addrs = append(addrs, q.addr)
			}
			byAddr[q.addr] = append(byAddr[q.addr], topicQueue{topic: names[i], brokerQueue: q})
		}
	}
	return byAddr, addrs
}

// connShares assigns connection k (of nconns) to addrs[k % len(addrs)] and
// returns its pairs: every pair of that address when split is false (each
// connection covers all queues of its broker, as with one topic), else the
// connection's round-robin share of them, so that together the
// connections of an address cover each pair exactly once.
func connShares(byAddr map[string][]topicQueue, addrs []string, nconns int, split bool) [][]topicQueue {
	shares := make([][]topicQueue, nconns)
	for k := range nconns {
		a := k % len(addrs)
		pairs := byAddr[addrs[a]]
		if !split {
			shares[k] = pairs
			continue
		}
		serving := (nconns - a + len(addrs) - 1) / len(addrs) // connections a, a+len(addrs), … < nconns
		rank := k / len(addrs)
		if serving > len(pairs) { // more connections than pairs: wrap
			shares[k] = []topicQueue{pairs[rank%len(pairs)]}
			continue
		}
		for j := rank; j < len(pairs); j += serving {
			shares[k] = append(shares[k], pairs[j])
		}
	}
	return shares
}
