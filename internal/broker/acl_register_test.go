package broker

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// aclNamesrv is a nameserver stand-in guarding REGISTER_BROKER and
// UNREGISTER_BROKER as a nameserver with --namesrv-acl does; it counts
// the registrations that passed.
func aclNamesrv(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	table, err := acl.Parse([]byte("accounts:\n  - accessKey: brokerAdmin\n    secretKey: broker-secret\n    admin: true\n" +
		"  - accessKey: plainUser\n    secretKey: user-secret\n"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	s := remoting.NewServer(remoting.ServerConfig{Listener: ln})
	gate := acl.NewGate(acl.NewValidator(table), nil, acl.AdminOnly)
	s.SetGuard(func(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
		return gate.Check(req, conn.RemoteAddrString())
	})
	ok := func(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
		accepted.Add(1)
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	}
	s.Handle(protocol.RegisterBroker, ok)
	s.Handle(protocol.UnregisterBroker, ok)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), accepted
}

// innerClientAuthenticationCredentials signs the broker's registration
// (Java 5.3's AclClientRPCHook on BrokerOuterAPI); without them a guarded
// nameserver refuses it.
func TestRegisterSignedWithInnerCredentials(t *testing.T) {
	addr, accepted := aclNamesrv(t)
	startBroker(t, func(c *Config) {
		c.NamesrvAddrs = []string{addr}
		props := map[string]string{"innerClientAuthenticationCredentials": `{"accessKey":"brokerAdmin","secretKey":"broker-secret"}`}
		if _, err := ApplyProperties(props, c); err != nil {
			t.Fatal(err)
		}
	})
	awaitCond(t, "signed registration accepted", func() bool { return accepted.Load() > 0 })

	addr2, accepted2 := aclNamesrv(t)
	b, _ := startBroker(t, func(c *Config) { c.NamesrvAddrs = []string{addr2} })
	b.registerAll()
	b.registerAll()
	if n := accepted2.Load(); n != 0 {
		t.Fatalf("%d unsigned registrations accepted", n)
	}
}

func TestInnerCredentialsParse(t *testing.T) {
	for _, bad := range []string{`{"accessKey":"a"}`, `not json`, `{"secretKey":"b"}`} {
		var c Config
		if _, err := ApplyProperties(map[string]string{"innerClientAuthenticationCredentials": bad}, &c); err == nil ||
			!strings.Contains(err.Error(), "innerClientAuthenticationCredentials") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	var c Config
	if _, err := ApplyProperties(map[string]string{"innerClientAuthenticationCredentials": ""}, &c); err != nil || c.ACL.Inner.AccessKey != "" {
		t.Fatalf("empty: %v %+v", err, c.ACL.Inner)
	}
}
