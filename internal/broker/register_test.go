package broker

import (
	"bytes"
	"context"
	"hash/crc32"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// fakeNamesrv records REGISTER_BROKER and UNREGISTER_BROKER requests.
type fakeNamesrv struct {
	addr   string
	mu     sync.Mutex
	reqs   []*protocol.Command // in arrival order
	remark string              // of every SUCCESS answer
}

func startFakeNamesrv(t *testing.T) *fakeNamesrv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := &fakeNamesrv{addr: ln.Addr().String()}
	s := remoting.NewServer(remoting.ServerConfig{Listener: ln})
	record := func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		ns.mu.Lock()
		ns.reqs = append(ns.reqs, req)
		remark := ns.remark
		ns.mu.Unlock()
		return protocol.NewResponse(req, protocol.ResponseSuccess, remark)
	}
	s.Handle(protocol.RegisterBroker, record)
	s.Handle(protocol.UnregisterBroker, record)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ns
}

func (ns *fakeNamesrv) requests() []*protocol.Command {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]*protocol.Command(nil), ns.reqs...)
}

// lastRegistration waits until a REGISTER_BROKER satisfying ok arrived and
// returns its header and decoded body.
func (ns *fakeNamesrv) lastRegistration(t *testing.T, ok func(*protocol.RegisterBrokerBody) bool) (protocol.RegisterBrokerRequestHeader, *protocol.RegisterBrokerBody) {
	t.Helper()
	var (
		h    protocol.RegisterBrokerRequestHeader
		body *protocol.RegisterBrokerBody
	)
	awaitCond(t, "registration", func() bool {
		reqs := ns.requests()
		for i := len(reqs) - 1; i >= 0; i-- {
			if reqs[i].Code != protocol.RegisterBroker {
				continue
			}
			if err := h.Decode(reqs[i].ExtFields); err != nil {
				t.Fatalf("register header: %v", err)
			}
			if want := int32(crc32.ChecksumIEEE(reqs[i].Body) & 0x7FFFFFFF); h.BodyCrc32 != want {
				t.Fatalf("bodyCrc32 %d, want %d", h.BodyCrc32, want)
			}
			var err error
			if body, err = protocol.DecodeRegisterBrokerBody(reqs[i].Body, h.Compressed); err != nil {
				t.Fatalf("register body: %v", err)
			}
			return ok(body)
		}
		return false
	})
	return h, body
}

func TestRegisterWithNameservers(t *testing.T) {
	ns := startFakeNamesrv(t)
	dead, _ := net.Listen("tcp", "127.0.0.1:0") // a nameserver that is down
	deadAddr := dead.Addr().String()
	dead.Close()
	b, c := startBroker(t, func(cfg *Config) {
		cfg.NamesrvAddrs = []string{deadAddr, ns.addr}
		cfg.RegisterNameServerPeriod = time.Hour // only the start and topic changes register
	})
	h, body := ns.lastRegistration(t, func(*protocol.RegisterBrokerBody) bool { return true })
	// The HA server's real address (tests inject the remoting listener,
	// so it listens on any free port; mqd uses listenPort + 1).
	want := protocol.RegisterBrokerRequestHeader{BrokerName: "broker-a", BrokerAddr: b.Addr(), ClusterName: "DefaultCluster",
		HaServerAddr: b.HAAddr(), BrokerID: 0, Compressed: false, BodyCrc32: h.BodyCrc32}
	if h != want {
		t.Fatalf("header %+v, want %+v", h, want)
	}
	tbw := body.TopicConfigSerializeWrapper.TopicConfigTable[TopicAutoCreate]
	if tbw.Perm != 7 || tbw.WriteQueueNums != 8 || body.FilterServerList == nil {
		t.Fatalf("TBW102 registered as %+v; filter servers %v", tbw, body.FilterServerList)
	}
	v0 := body.TopicConfigSerializeWrapper.DataVersion

	// Creating a topic re-registers at once, with a newer data version.
	expectCode(t, call(t, c, createTopicReq("RegT", 2)), protocol.ResponseSuccess)
	_, body = ns.lastRegistration(t, func(b *protocol.RegisterBrokerBody) bool {
		_, ok := b.TopicConfigSerializeWrapper.TopicConfigTable["RegT"]
		return ok
	})
	if v := body.TopicConfigSerializeWrapper.DataVersion; v.Counter <= v0.Counter {
		t.Fatalf("data version %+v after %+v", v, v0)
	}
	// So does auto-creation on send.
	mustSendOK(t, produce(t, c, protocol.SendMessage, sendHeader("RegAuto", 0, ""), []byte("x")))
	ns.lastRegistration(t, func(b *protocol.RegisterBrokerBody) bool {
		_, ok := b.TopicConfigSerializeWrapper.TopicConfigTable["RegAuto"]
		return ok
	})

	// Shutdown unregisters, and nothing registers afterwards.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	b.topics.Put(protocol.TopicConfig{TopicName: "AfterShutdown", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6})
	time.Sleep(50 * time.Millisecond)
	reqs := ns.requests()
	last := reqs[len(reqs)-1]
	var uh protocol.UnregisterBrokerRequestHeader
	if last.Code != protocol.UnregisterBroker || uh.Decode(last.ExtFields) != nil ||
		uh != (protocol.UnregisterBrokerRequestHeader{BrokerName: "broker-a", BrokerAddr: b.Addr(), ClusterName: "DefaultCluster"}) {
		t.Fatalf("last request %v %v", last, last.ExtFields)
	}
}

func TestRegisterPeriodicallyWithBrokerPermission(t *testing.T) {
	ns := startFakeNamesrv(t)
	startBroker(t, func(cfg *Config) {
		cfg.NamesrvAddrs = []string{ns.addr}
		cfg.RegisterNameServerPeriod = 20 * time.Millisecond
		cfg.BrokerPermission = protocol.PermRead // read-only broker
	})
	awaitCond(t, "periodic registrations", func() bool { return len(ns.requests()) >= 3 })
	_, body := ns.lastRegistration(t, func(*protocol.RegisterBrokerBody) bool { return true })
	for name, tc := range body.TopicConfigSerializeWrapper.TopicConfigTable {
		if tc.Perm != protocol.PermRead {
			t.Fatalf("topic %s registered with perm %d, want the broker's %d", name, tc.Perm, protocol.PermRead)
		}
	}
}

func TestRegistrationsDoNotOverlap(t *testing.T) {
	// A nameserver that answers slowly: concurrent triggers must collapse
	// into at most one extra round.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inflight, maxInflight, total := 0, 0, 0
	s := remoting.NewServer(remoting.ServerConfig{Listener: ln})
	s.Handle(protocol.RegisterBroker, func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		mu.Lock()
		inflight++
		total++
		maxInflight = max(maxInflight, inflight)
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		inflight--
		mu.Unlock()
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	b, _ := startBroker(t, func(cfg *Config) {
		cfg.NamesrvAddrs = []string{ln.Addr().String()}
		cfg.RegisterNameServerPeriod = time.Hour
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(b.registerAll)
	}
	wg.Wait()
	awaitCond(t, "rounds to finish", func() bool {
		b.reg.mu.Lock()
		defer b.reg.mu.Unlock()
		return !b.reg.running
	})
	mu.Lock()
	defer mu.Unlock()
	if maxInflight != 1 || total > 4 || total < 2 {
		t.Fatalf("max %d registrations at once, %d in total", maxInflight, total)
	}
}

func TestRegisterHeaderHAAddress(t *testing.T) {
	b := &Broker{cfg: Config{BrokerName: "b", ClusterName: "c", BrokerID: 1},
		storeHost: netip.MustParseAddrPort("10.0.0.1:10911")}
	h := b.registerHeader(&registerBody{data: []byte("hello")})
	if h.HaServerAddr != "10.0.0.1:10912" || h.BodyCrc32 != 907060870 || h.BrokerID != 1 {
		t.Fatalf("%+v", h)
	}
}

// TestRegisterStateVersion: in controller mode a master registers its
// epoch as DataVersion.stateVersion; a statically configured master with
// an epoch registers the 4.x form (no stateVersion). An answer saying the
// nameserver ignored the registration is logged, not retried.
func TestRegisterStateVersion(t *testing.T) {
	for _, controller := range []bool{true, false} {
		ns := startFakeNamesrv(t)
		ns.mu.Lock()
		ns.remark = protocol.RemarkStaleRegistration + ": brokerId 0 of broker-a is held by x with stateVersion 9 > 3"
		ns.mu.Unlock()
		var logs syncBuffer
		startBroker(t, func(cfg *Config) {
			cfg.NamesrvAddrs = []string{ns.addr}
			cfg.RegisterNameServerPeriod = time.Hour
			cfg.Controller.Enable = controller
			cfg.HA.Epoch = 3
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		_, body := ns.lastRegistration(t, func(*protocol.RegisterBrokerBody) bool { return true })
		raw := string(ns.requests()[0].Body)
		want := int64(0)
		if controller {
			want = 3
		}
		if sv := body.TopicConfigSerializeWrapper.DataVersion.StateVersion; sv != want ||
			strings.Contains(raw, "stateVersion") != controller {
			t.Fatalf("controller=%v: stateVersion %d, body %.200s", controller, sv, raw)
		}
		awaitCond(t, "the ignored registration logged", func() bool {
			return strings.Contains(logs.String(), "the nameserver ignored this registration")
		})
		if l := logs.String(); strings.Contains(l, "register broker refused or failed") {
			t.Fatalf("an ignored registration taken for a failure:\n%s", l)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
