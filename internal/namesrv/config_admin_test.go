package namesrv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

func getConfig(t *testing.T, c *remoting.Client) map[string]string {
	t.Helper()
	resp := call(t, c, protocol.GetNamesrvConfig, nil, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	return parseProps(string(resp.Body))
}

// UPDATE_NAMESRV_CONFIG changes behaviour at once, GET_NAMESRV_CONFIG shows
// it, and the change is read back by the next New.
func TestUpdateNamesrvConfigLive(t *testing.T) {
	store := filepath.Join(t.TempDir(), "config", "namesrv.properties")
	s := startNS(t, Config{ConfigStorePath: store})
	c := dialNS(t, s)
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, NamespaceOrderTopicConfig, "T", "broker-a:4"), protocol.ResponseSuccess)
	register(t, c, with(brokerA, topic("T", 4, 4, 6)))
	if rd := route(t, c, "T"); rd.OrderTopicConf != "" {
		t.Fatalf("orderTopicConf %q before the update", rd.OrderTopicConf)
	}
	// the body mqadmin updateNamesrvConfig sends (MixAll.properties2String)
	expectCode(t, call(t, c, protocol.UpdateNamesrvConfig, nil, []byte("orderMessageEnable=true\nmaxKVEntryBytes=20\n")),
		protocol.ResponseSuccess)
	if rd := route(t, c, "T"); rd.OrderTopicConf != "broker-a:4" {
		t.Fatalf("orderTopicConf %q after orderMessageEnable=true", rd.OrderTopicConf)
	}
	expectCode(t, kvCall(t, c, protocol.PutKVConfig, "ns", "key", strings.Repeat("v", 20)), protocol.ResponseSystemError)
	got := getConfig(t, c)
	if got["orderMessageEnable"] != "true" || got["maxKVEntryBytes"] != "20" || got["configStorePath"] != store {
		t.Fatalf("GET_NAMESRV_CONFIG after update: %v", got)
	}
	data, err := os.ReadFile(store)
	if err != nil || string(data) != "maxKVEntryBytes=20\norderMessageEnable=true\n" {
		t.Fatalf("stored %q, %v", data, err)
	}
	s2 := startNS(t, Config{ConfigStorePath: store})
	if got := getConfig(t, dialNS(t, s2)); got["orderMessageEnable"] != "true" || got["maxKVEntryBytes"] != "20" {
		t.Fatalf("restarted GET_NAMESRV_CONFIG: %v", got)
	}
}

func TestUpdateNamesrvConfigRefused(t *testing.T) {
	store := filepath.Join(t.TempDir(), "namesrv.properties")
	s := startNS(t, Config{ConfigStorePath: store})
	c := dialNS(t, s)
	for body, code := range map[string]int16{
		"kvConfigPath=/etc/passwd":             protocol.ResponseNoPermission, // Java: "Can not update config path"
		"configStorePath=/tmp/x":               protocol.ResponseNoPermission,
		"aclFile=/tmp/acl.yml":                 protocol.ResponseNoPermission,
		"orderMessageEnable=true\nnoSuchKey=1": protocol.ResponseSystemError,
		"maxQueueNums=-1":                      protocol.ResponseSystemError,
		"brokerExpiryMillis=soon":              protocol.ResponseSystemError,
		"orderMessageEnable=maybe":             protocol.ResponseSystemError,
	} {
		resp := call(t, c, protocol.UpdateNamesrvConfig, nil, []byte(body))
		if resp.Code != code || resp.Remark == "" {
			t.Errorf("%q: code %d remark %q, want %d", body, resp.Code, resp.Remark, code)
		}
	}
	if got := getConfig(t, c); got["orderMessageEnable"] != "false" || got["maxQueueNums"] != "65536" {
		t.Fatalf("a refused update changed the config: %v", got)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatalf("a refused update was stored: %v", err)
	}
	big := []byte("orderMessageEnable=true\n" + strings.Repeat("#", maxConfigBody))
	expectCode(t, call(t, c, protocol.UpdateNamesrvConfig, nil, big), protocol.ResponseSystemError)
}

// brokerExpiryMillis applies to the running expiry scan.
func TestUpdateNamesrvConfigExpiry(t *testing.T) {
	s := startNS(t, Config{ScanInterval: 20 * time.Millisecond, BrokerExpiry: time.Hour})
	c, admin := dialNS(t, s), dialNS(t, s)
	register(t, c, with(brokerA, topic("T", 4, 4, 6)))
	time.Sleep(100 * time.Millisecond)
	if len(clusterInfo(t, admin).BrokerAddrTable) != 1 {
		t.Fatal("broker not registered or expired early")
	}
	expectCode(t, call(t, admin, protocol.UpdateNamesrvConfig, nil, []byte("brokerExpiryMillis=50")),
		protocol.ResponseSuccess)
	eventually(t, "broker expired after brokerExpiryMillis=50", func() bool {
		return len(clusterInfo(t, admin).BrokerAddrTable) == 0
	})
}
