package broker

import (
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// haAdvertisedAddr is registered as the HA address while the broker keeps
// listening where it did; bad values are refused.
func TestHAAdvertisedAddr(t *testing.T) {
	cfg := NewConfig()
	for _, v := range []string{"ha.example.com:30912", "10.0.0.5:1", "[::1]:65535"} {
		if _, err := ApplyProperties(map[string]string{"haAdvertisedAddr": v}, &cfg); err != nil || cfg.HA.AdvertisedAddr != v {
			t.Errorf("%s: %v (%q)", v, err, cfg.HA.AdvertisedAddr)
		}
	}
	for _, v := range []string{"host", ":10912", "host:0", "host:65536", "host:x", "a b:1", "a:1;b:2", "h/x:1", string(make([]byte, 300)) + ":1"} {
		if _, err := ApplyProperties(map[string]string{"haAdvertisedAddr": v}, &cfg); err == nil {
			t.Errorf("haAdvertisedAddr=%q accepted", v)
		}
	}

	ns := startFakeNamesrv(t)
	b, _ := startBroker(t, func(cfg *Config) {
		cfg.NamesrvAddrs = []string{ns.addr}
		cfg.RegisterNameServerPeriod = time.Hour
		cfg.HA.AdvertisedAddr = "203.0.113.7:30912"
	})
	if b.HAAddr() != "203.0.113.7:30912" {
		t.Fatalf("HAAddr %s", b.HAAddr())
	}
	h, _ := ns.lastRegistration(t, func(*protocol.RegisterBrokerBody) bool { return true })
	if h.HaServerAddr != "203.0.113.7:30912" {
		t.Fatalf("registered haServerAddr %q", h.HaServerAddr)
	}
	if b.ha.addr.Port() == 30912 || !b.ha.addr.IsValid() {
		t.Fatalf("the HA server listens at %v", b.ha.addr) // where it listens is unchanged
	}
}
