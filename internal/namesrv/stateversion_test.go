package namesrv

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// oldMaster and newMaster are two addresses of broker-a claiming brokerId
// 0 (controller mode: the master of an older and of a newer epoch).
func masters() (oldM, newM broker) {
	oldM = with(brokerA, topic("T", 4, 4, 6), topic("OnlyOld", 4, 4, 6))
	newM = with(brokerA, topic("T", 4, 4, 6), topic("OnlyNew", 4, 4, 6))
	newM.addr, newM.ha = "10.0.0.7:10911", "10.0.0.7:10912"
	return oldM, newM
}

func withState(b broker, sv int64) broker {
	b.version.StateVersion = sv
	return b
}

// masterOf is the address broker-a's brokerId 0 is routed to.
func masterOf(t *testing.T, c *remoting.Client) string {
	t.Helper()
	return clusterInfo(t, c).BrokerAddrTable["broker-a"].BrokerAddrs[protocol.MasterID]
}

func expectRefused(t *testing.T, resp *protocol.Command, refused bool) {
	t.Helper()
	var h protocol.RegisterBrokerResponseHeader
	if err := h.Decode(resp.ExtFields); err != nil {
		t.Fatal(err)
	}
	got := strings.HasPrefix(resp.Remark, protocol.RemarkStaleRegistration)
	if got != refused || h.MasterAddr != "" || h.HaServerAddr != "" {
		t.Fatalf("remark %q header %+v, want refused=%v", resp.Remark, h, refused)
	}
}

// TestStateVersionRule: a registration of a brokerId held by another
// live address is refused only when the holder's stateVersion is higher
// (Java 5 RouteInfoManager); equal or lower replaces the holder.
// stateVersions are plain int64s, extremes included.
func TestStateVersionRule(t *testing.T) {
	for _, tc := range []struct {
		holder, reg int64
		refused     bool
	}{
		{5, 4, true},
		{5, 5, false},
		{5, 6, false},
		{0, 0, false}, // 4.x brokers: today's behaviour
		{1, 0, true},  // a 4.x broker over a controller-mode master
		{0, 1, false},
		{math.MaxInt64, math.MinInt64, true},
		{math.MinInt64, math.MaxInt64, false},
		{-1, -2, true},
	} {
		s := startNS(t, Config{})
		c1, c2 := dialNS(t, s), dialNS(t, s)
		oldM, newM := masters()
		register(t, c1, withState(oldM, tc.holder))
		resp := register(t, c2, withState(newM, tc.reg))
		expectRefused(t, resp, tc.refused)
		want, onlyIn, notIn := newM.addr, "OnlyNew", ""
		if tc.refused {
			want, onlyIn, notIn = oldM.addr, "OnlyOld", "OnlyNew"
		}
		if got := masterOf(t, c1); got != want {
			t.Fatalf("%+v: brokerId 0 → %s, want %s", tc, got, want)
		}
		route(t, c1, onlyIn)
		if notIn != "" {
			// nothing of the refused registration is applied, and the
			// refused address holding no id is not kept live
			expectCode(t, routeResp(t, c1, notIn), protocol.ResponseTopicNotExist)
			s.routes.mu.RLock()
			_, live := s.routes.brokerLive[newM.addr]
			s.routes.mu.RUnlock()
			if live {
				t.Fatalf("%+v: refused address kept live", tc)
			}
		}
	}
}

// TestStateVersionRefusedKeepsOtherID: a slave claiming brokerId 0 with
// an older epoch than the master's is refused and keeps its slave id
// (nothing changes before the check, unlike Java); repeating the refused
// registration does not refresh it.
func TestStateVersionRefusedKeepsOtherID(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	oldM, newM := masters()
	register(t, c, withState(newM, 3))
	slave := withState(oldM, 0)
	slave.id = 2
	register(t, c, slave)
	at := time.Now()
	time.Sleep(5 * time.Millisecond)
	expectRefused(t, register(t, c, withState(oldM, 2)), true)
	addrs := clusterInfo(t, c).BrokerAddrTable["broker-a"].BrokerAddrs
	if addrs[0] != newM.addr || addrs[2] != oldM.addr || len(addrs) != 2 {
		t.Fatalf("brokerAddrs %v", addrs)
	}
	s.routes.mu.RLock()
	bl := s.routes.brokerLive[oldM.addr]
	s.routes.mu.RUnlock()
	if bl == nil || bl.lastUpdate.After(at) {
		t.Fatalf("refused slave's liveness %+v: want kept, not refreshed", bl)
	}
}

// TestStateVersion4xBody: a 4.x body has no stateVersion (0, as the
// holder's): the holder is replaced as before; over a holder with a
// stateVersion it is refused. The compressed form carries it too.
func TestStateVersion4xBody(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	oldM, newM := masters()
	register(t, c, oldM)
	body := []byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4,` +
		`"writeQueueNums":4,"perm":6}},"dataVersion":{"counter":1,"timestamp":1700000000000}},"filterServerList":[]}`)
	resp := call(t, c, protocol.RegisterBroker, newM.header(), body)
	expectCode(t, resp, protocol.ResponseSuccess)
	expectRefused(t, resp, false)
	if got := masterOf(t, c); got != newM.addr {
		t.Fatalf("brokerId 0 → %s after a 4.x registration", got)
	}
	held := withState(newM, 7)
	held.compressed = true
	register(t, c, held)
	resp = call(t, c, protocol.RegisterBroker, oldM.header(), body)
	expectCode(t, resp, protocol.ResponseSuccess)
	expectRefused(t, resp, true)
	if got := masterOf(t, c); got != newM.addr {
		t.Fatalf("brokerId 0 → %s, want the holder of stateVersion 7", got)
	}
	older := withState(oldM, 6)
	older.compressed = true
	expectRefused(t, register(t, c, older), true)
}

// TestStateVersionUndecodable: a stateVersion beyond int64 makes the body
// undecodable (SYSTEM_ERROR); the routes do not change.
func TestStateVersionUndecodable(t *testing.T) {
	s := startNS(t, Config{})
	c := dialNS(t, s)
	oldM, newM := masters()
	register(t, c, withState(oldM, 1))
	for _, sv := range []string{"99999999999999999999", "1e30", `"x"`, "-99999999999999999999"} {
		body := []byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{},"dataVersion":{"stateVersion":` + sv +
			`,"counter":1,"timestamp":1}},"filterServerList":[]}`)
		expectCode(t, call(t, c, protocol.RegisterBroker, newM.header(), body), protocol.ResponseSystemError)
	}
	if got := masterOf(t, c); got != oldM.addr {
		t.Fatalf("brokerId 0 → %s", got)
	}
}

// TestStateVersionHolderGoneFreesSlot: once the holder of the higher
// stateVersion unregisters, expires or loses its connection, a lower one
// takes the brokerId.
func TestStateVersionHolderGoneFreesSlot(t *testing.T) {
	leave := map[string]func(t *testing.T, s *Server, holder *remoting.Client, b broker){
		"unregister": func(t *testing.T, _ *Server, holder *remoting.Client, b broker) { unregister(t, holder, b) },
		"close":      func(_ *testing.T, _ *Server, holder *remoting.Client, _ broker) { holder.Close() },
		"expiry":     func(*testing.T, *Server, *remoting.Client, broker) {},
	}
	for name, gone := range leave {
		s := startNS(t, Config{BrokerExpiry: 300 * time.Millisecond, ScanInterval: 20 * time.Millisecond})
		holder, other := dialNS(t, s), dialNS(t, s)
		oldM, newM := masters()
		register(t, holder, withState(newM, 9))
		expectRefused(t, register(t, other, withState(oldM, 8)), true)
		gone(t, s, holder, newM)
		eventually(t, name+": slot freed", func() bool {
			resp := register(t, other, withState(oldM, 8))
			return !strings.HasPrefix(resp.Remark, protocol.RemarkStaleRegistration)
		})
		if got := masterOf(t, other); got != oldM.addr {
			t.Fatalf("%s: brokerId 0 → %s", name, got)
		}
		route(t, other, "OnlyOld")
	}
}
