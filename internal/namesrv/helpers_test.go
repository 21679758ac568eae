package namesrv

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// startNS starts a nameserver on a loopback port, shut down at cleanup.
func startNS(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" && cfg.Listener == nil {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// dialNS connects a remoting client to s, closed at cleanup.
func dialNS(t *testing.T, s *Server) *remoting.Client {
	t.Helper()
	c, err := remoting.Dial(context.Background(), s.Addr(), remoting.ClientConfig{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// call sends one request and returns the response.
func call(t *testing.T, c *remoting.Client, code int16, h protocol.HeaderEncoder, body []byte) *protocol.Command {
	t.Helper()
	req := protocol.NewRequest(code, h)
	req.Body = body
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		t.Fatalf("invoke %s: %v", protocol.RequestCodeName(code), err)
	}
	return resp
}

func expectCode(t *testing.T, resp *protocol.Command, code int16) {
	t.Helper()
	if resp.Code != code {
		t.Fatalf("response code %d (%s), remark %q; want %d", resp.Code,
			protocol.ResponseCodeName(resp.Code), resp.Remark, code)
	}
}

func topic(name string, read, write, perm int32) protocol.TopicConfig {
	return protocol.TopicConfig{TopicName: name, ReadQueueNums: read, WriteQueueNums: write,
		Perm: perm, TopicFilterType: protocol.TopicFilterSingleTag}
}

// broker describes one REGISTER_BROKER request.
type broker struct {
	cluster, name, addr, ha string
	id                      int64
	version                 protocol.DataVersion
	topics                  []protocol.TopicConfig
	compressed              bool
	crc                     bool // fill bodyCrc32
}

func (b broker) header() *protocol.RegisterBrokerRequestHeader {
	return &protocol.RegisterBrokerRequestHeader{
		BrokerName: b.name, BrokerAddr: b.addr, ClusterName: b.cluster,
		HaServerAddr: b.ha, BrokerID: b.id, Compressed: b.compressed,
	}
}

func (b broker) body(t *testing.T) []byte {
	t.Helper()
	rb := &protocol.RegisterBrokerBody{}
	rb.TopicConfigSerializeWrapper.DataVersion = b.version
	rb.TopicConfigSerializeWrapper.TopicConfigTable = map[string]protocol.TopicConfig{}
	for _, tc := range b.topics {
		rb.TopicConfigSerializeWrapper.TopicConfigTable[tc.TopicName] = tc
	}
	var (
		out []byte
		err error
	)
	if b.compressed {
		out, err = rb.EncodeCompressed()
	} else {
		out, err = rb.Encode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// register sends b over c and expects SUCCESS.
func register(t *testing.T, c *remoting.Client, b broker) *protocol.Command {
	t.Helper()
	h, body := b.header(), b.body(t)
	if b.crc {
		h.BodyCrc32 = bodyCRC(body)
	}
	resp := call(t, c, protocol.RegisterBroker, h, body)
	expectCode(t, resp, protocol.ResponseSuccess)
	return resp
}

func unregister(t *testing.T, c *remoting.Client, b broker) {
	t.Helper()
	resp := call(t, c, protocol.UnregisterBroker, &protocol.UnregisterBrokerRequestHeader{
		BrokerName: b.name, BrokerAddr: b.addr, ClusterName: b.cluster, BrokerID: b.id,
	}, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
}

// routeResp asks for a topic's route.
func routeResp(t *testing.T, c *remoting.Client, topicName string) *protocol.Command {
	t.Helper()
	return call(t, c, protocol.GetRouteInfoByTopic, &protocol.GetRouteInfoRequestHeader{Topic: topicName}, nil)
}

// route asks for a topic's route, expects SUCCESS and decodes it.
func route(t *testing.T, c *remoting.Client, topicName string) *protocol.TopicRouteData {
	t.Helper()
	resp := routeResp(t, c, topicName)
	expectCode(t, resp, protocol.ResponseSuccess)
	rd, err := protocol.DecodeTopicRouteData(resp.Body)
	if err != nil {
		t.Fatalf("decode route %q: %v", resp.Body, err)
	}
	return rd
}

func clusterInfo(t *testing.T, c *remoting.Client) *protocol.ClusterInfo {
	t.Helper()
	resp := call(t, c, protocol.GetBrokerClusterInfo, nil, nil)
	expectCode(t, resp, protocol.ResponseSuccess)
	ci, err := protocol.DecodeClusterInfo(resp.Body)
	if err != nil {
		t.Fatalf("decode cluster info %q: %v", resp.Body, err)
	}
	return ci
}

func brokerNames(rd *protocol.TopicRouteData) (queues, brokers []string) {
	for _, q := range rd.QueueDatas {
		queues = append(queues, q.BrokerName)
	}
	for _, b := range rd.BrokerDatas {
		brokers = append(brokers, b.BrokerName)
	}
	return queues, brokers
}

func expectNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// eventually polls cond every 10 ms for up to 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	brokerA = broker{cluster: "DefaultCluster", name: "broker-a", addr: "10.0.0.1:10911",
		ha: "10.0.0.1:10912", version: protocol.DataVersion{Timestamp: 1700000000000, Counter: 1}}
	brokerB = broker{cluster: "DefaultCluster", name: "broker-b", addr: "10.0.0.2:10911",
		ha: "10.0.0.2:10912", version: protocol.DataVersion{Timestamp: 1700000000000, Counter: 1}}
)

func with(b broker, topics ...protocol.TopicConfig) broker {
	b.topics = topics
	return b
}
