package namesrv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func kvCall(t *testing.T, c *remoting.Client, code int16, ns, key, value string) *protocol.Command {
	t.Helper()
	return call(t, c, code, &protocol.KVConfigHeader{Namespace: ns, Key: key, Value: value}, nil)
}

func TestKVConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "kvConfig.json")
	s := startNS(t, Config{KVConfigPath: path})
	c := dialNS(t, s)

	resp := kvCall(t, c, protocol.GetKVConfig, "ns", "k", "")
	expectCode(t, resp, protocol.ResponseQueryNotFound)
	if resp.Remark != "No config item, Namespace: ns Key: k" {
		t.Fatalf("remark %q", resp.Remark)
	}
	resp = kvCall(t, c, protocol.GetKVListByNamespace, "ns", "", "")
	expectCode(t, resp, protocol.ResponseQueryNotFound)
	if resp.Remark != "No config item, Namespace: ns" {
		t.Fatalf("remark %q", resp.Remark)
	}

	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns", "k", "v1"), protocol.ResponseSuccess)
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns", "k2", "v2"), protocol.ResponseSuccess)
	resp = kvCall(t, c, protocol.GetKVConfig, "ns", "k", "")
	expectCode(t, resp, protocol.ResponseSuccess)
	if resp.Ext("value") != "v1" {
		t.Fatalf("value ext %v", resp.ExtFields)
	}
	resp = kvCall(t, c, protocol.GetKVListByNamespace, "ns", "", "")
	expectCode(t, resp, protocol.ResponseSuccess)
	var tbl protocol.KVTable
	if err := protocol.DecodeJSON(resp.Body, &tbl); err != nil || len(tbl.Table) != 2 || tbl.Table["k2"] != "v2" {
		t.Fatalf("kv list %s: %v", resp.Body, err)
	}

	expectCode(t, kvCall(t, c, protocol.DeleteKVConfig, "ns", "k2", ""), protocol.ResponseSuccess)
	expectCode(t, kvCall(t, c, protocol.GetKVConfig, "ns", "k2", ""), protocol.ResponseQueryNotFound)
	// PUT without value is a missing required field.
	expectCode(t, call(t, c, protocol.PutKVConfig,
		&protocol.KVConfigHeader{Namespace: "ns", Key: "x"}, nil), protocol.ResponseSystemError)

	// A new nameserver reads the file back.
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	s2 := startNS(t, Config{KVConfigPath: path})
	c2 := dialNS(t, s2)
	resp = kvCall(t, c2, protocol.GetKVConfig, "ns", "k", "")
	expectCode(t, resp, protocol.ResponseSuccess)
	if resp.Ext("value") != "v1" {
		t.Fatalf("reloaded value %v", resp.ExtFields)
	}
	expectCode(t, kvCall(t, c2, protocol.GetKVConfig, "ns", "k2", ""), protocol.ResponseQueryNotFound)
}

func TestKVConfigCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{KVConfigPath: path, Logger: quietLogger}); err == nil {
		t.Fatal("corrupt kv config accepted")
	}
	// Java's file shape loads.
	java := `{"configTable":{"ORDER_TOPIC_CONFIG":{"T":"broker-a:4"}}}`
	if err := os.WriteFile(path, []byte(java), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{KVConfigPath: path, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.kv.get(NamespaceOrderTopicConfig, "T"); !ok || v != "broker-a:4" {
		t.Fatalf("loaded %q %v", v, ok)
	}
}

func TestOrderTopicConf(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		s := startNS(t, Config{OrderMessageEnable: enabled})
		c := dialNS(t, s)
		expectCode(t, kvCall(t, c, protocol.PutKVConfig, NamespaceOrderTopicConfig, "T", "broker-a:4"),
			protocol.ResponseSuccess)

		// The REGISTER_BROKER response carries the namespace as a KVTable.
		resp := register(t, c, with(brokerA, topic("T", 4, 4, 6)))
		if string(resp.Body) != `{"table":{"T":"broker-a:4"}}` {
			t.Fatalf("register body %q", resp.Body)
		}
		rd := route(t, c, "T")
		want := ""
		if enabled {
			want = "broker-a:4"
		}
		if rd.OrderTopicConf != want {
			t.Fatalf("enabled=%v: orderTopicConf %q", enabled, rd.OrderTopicConf)
		}
	}
}
