package broker

import (
	"testing"
	"time"
)

// A fenced master leaves the routes at once and stays out of them while
// fenced; lifting the fence registers it again.
func TestFencedMasterLeavesRoutes(t *testing.T) {
	ns, addr := startNamesrv(t)
	b, _ := startBroker(t, func(c *Config) {
		c.NamesrvAddrs = []string{addr}
		c.RegisterNameServerPeriod = 50 * time.Millisecond // registration rounds must not bring it back
	})
	advertised := func() bool {
		rd, ok := ns.TopicRoute(TopicAutoCreate)
		if !ok {
			return false
		}
		for _, bd := range rd.BrokerDatas {
			if bd.BrokerAddrs[0] == b.Addr() {
				return true
			}
		}
		return false
	}
	waitUntil(t, "registered", advertised)
	b.SetFenced(true)
	waitUntil(t, "unregistered", func() bool { return !advertised() })
	time.Sleep(300 * time.Millisecond) // several registration periods
	if advertised() {
		t.Fatal("a fenced master registered again")
	}
	b.SetFenced(false)
	waitUntil(t, "registered again", advertised)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
