package namesrv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/protocol"
)

const nsACL = `
accounts:
  - accessKey: adminAccount
    secretKey: admin-secret
    admin: true
  - accessKey: userAccount
    secretKey: user-secret
    defaultTopicPerm: PUB|SUB
`

func TestACLGuardsAdminWritesOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(nsACL), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startNS(t, Config{ACLFile: path})
	c := dialNS(t, s)

	kv := func(ak, sk string) *protocol.Command {
		req := protocol.NewRequest(protocol.PutKVConfig, &protocol.KVConfigHeader{Namespace: "ns", Key: "k", Value: "v"})
		if ak != "" {
			req.SetExt(acl.FieldAccessKey, ak)
			req.SetExt(acl.FieldSignature, acl.Sign(sk, req.ExtFields, nil))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Invoke(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct{ ak, sk, remark string }{
		{"", "", "No accessKey is configured"},
		{"userAccount", "wrong-secret", "Check signature failed for accessKey=userAccount"},
		{"userAccount", "user-secret", "Need admin permission for request code=100, but accessKey=userAccount is not"},
	} {
		resp := kv(tc.ak, tc.sk)
		expectCode(t, resp, protocol.ResponseSystemError)
		if !strings.HasPrefix(resp.Remark, acl.ExceptionClass+": "+tc.remark+", ") {
			t.Fatalf("%s: remark %q", tc.ak, resp.Remark)
		}
	}
	if resp := kvCall(t, c, protocol.GetKVConfig, "ns", "k", ""); resp.Code != protocol.ResponseQueryNotFound {
		t.Fatalf("refused PUT stored a value: %d", resp.Code)
	}
	expectCode(t, kv("adminAccount", "admin-secret"), protocol.ResponseSuccess)

	// Reads stay open, as on a Java nameserver.
	resp := kvCall(t, c, protocol.GetKVConfig, "ns", "k", "")
	expectCode(t, resp, protocol.ResponseSuccess)
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseTopicNotExist)
}

// signedCall sends code with header h and body, signed with ak/sk unless
// ak is empty.
func signedCall(t *testing.T, s *Server, ak, sk string, code int16, h protocol.HeaderEncoder, body []byte) *protocol.Command {
	t.Helper()
	req := protocol.NewRequest(code, h)
	req.Body = body
	if ak != "" {
		req.SetExt(acl.FieldAccessKey, ak)
		req.SetExt(acl.FieldSignature, acl.Sign(sk, req.ExtFields, body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := dialNS(t, s).Invoke(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// With an ACL, REGISTER_BROKER and UNREGISTER_BROKER need an admin
// account's signature (or a white-listed address): anyone could otherwise
// put a fake broker in every client's routes, or take a real one out.
func TestACLGuardsRegistration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(nsACL), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startNS(t, Config{ACLFile: path})
	c := dialNS(t, s)
	b := broker{cluster: "c1", name: "b1", addr: "127.0.0.1:10911", ha: "127.0.0.1:10912",
		topics: []protocol.TopicConfig{topic("T", 4, 4, 6)}}
	unreg := &protocol.UnregisterBrokerRequestHeader{BrokerName: b.name, BrokerAddr: b.addr, ClusterName: b.cluster}
	for _, tc := range []struct{ ak, sk, remark string }{
		{"", "", "No accessKey is configured"},
		{"userAccount", "wrong-secret", "Check signature failed for accessKey=userAccount"},
		{"userAccount", "user-secret", "Need admin permission for request code=103, but accessKey=userAccount is not"},
	} {
		resp := signedCall(t, s, tc.ak, tc.sk, protocol.RegisterBroker, b.header(), b.body(t))
		expectCode(t, resp, protocol.ResponseSystemError)
		if !strings.HasPrefix(resp.Remark, acl.ExceptionClass+": "+tc.remark+", ") {
			t.Fatalf("%q: remark %q", tc.ak, resp.Remark)
		}
	}
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseTopicNotExist)
	expectCode(t, signedCall(t, s, "adminAccount", "admin-secret", protocol.RegisterBroker, b.header(), b.body(t)),
		protocol.ResponseSuccess)
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseSuccess)
	// Unregistering a live broker is guarded the same way.
	for _, ak := range []string{"", "userAccount"} {
		expectCode(t, signedCall(t, s, ak, "user-secret", protocol.UnregisterBroker, unreg, nil), protocol.ResponseSystemError)
	}
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseSuccess)
	expectCode(t, signedCall(t, s, "adminAccount", "admin-secret", protocol.UnregisterBroker, unreg, nil), protocol.ResponseSuccess)
	expectCode(t, routeResp(t, c, "T"), protocol.ResponseTopicNotExist)

	// A white-listed address (a Java 4.9 broker signs nothing) registers unsigned.
	white := filepath.Join(t.TempDir(), "white.yml")
	if err := os.WriteFile(white, []byte("globalWhiteRemoteAddresses:\n  - 127.0.0.1\n"+nsACL), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startNS(t, Config{ACLFile: white})
	register(t, dialNS(t, w), b)
}

func TestACLBadFileRefusesStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte("accounts:\n  - accessKey: short\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Addr: "127.0.0.1:0", ACLFile: path, Logger: quietLogger}); err == nil {
		t.Fatal("nameserver built with an invalid ACL file")
	}
}
