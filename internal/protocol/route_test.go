package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// goClientRoute re-implements how rocketmq-client-go v2.1.2 reads a route
// body (Java's TopicRouteData): queueDatas through a JSON decoder, and every
// brokerAddrs object through a splitter — strip the braces, split on ',',
// split each part at the first ':', remove '"'.
type goClientRoute struct {
	queueDatas []struct {
		BrokerName     string `json:"brokerName"`
		ReadQueueNums  int    `json:"readQueueNums"`
		WriteQueueNums int    `json:"writeQueueNums"`
		Perm           int    `json:"perm"`
		TopicSynFlag   int    `json:"topicSynFlag"`
	}
	brokers map[string]map[int64]string
}

func parseLikeGoClient(t *testing.T, body []byte) goClientRoute {
	t.Helper()
	var top struct {
		QueueDatas  json.RawMessage `json:"queueDatas"`
		BrokerDatas []struct {
			BrokerName  string          `json:"brokerName"`
			BrokerAddrs json.RawMessage `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(outerJSON(body), &top); err != nil {
		t.Fatal(err)
	}
	var r goClientRoute
	if len(top.QueueDatas) == 0 || top.QueueDatas[0] != '[' {
		t.Fatalf("queueDatas is not an array: %s", top.QueueDatas)
	}
	if err := json.Unmarshal(top.QueueDatas, &r.queueDatas); err != nil {
		t.Fatal(err)
	}
	r.brokers = map[string]map[int64]string{}
	for _, bd := range top.BrokerDatas {
		addrs := string(bd.BrokerAddrs)
		if len(addrs) < 2 || addrs[0] != '{' {
			t.Fatalf("brokerAddrs is not an object: %q (the Go client would panic)", addrs)
		}
		m := map[int64]string{}
		for _, part := range strings.Split(addrs[1:len(addrs)-1], ",") {
			i := strings.Index(part, ":")
			if i < 0 {
				continue
			}
			id, err := strconv.ParseInt(strings.ReplaceAll(part[:i], `"`, ""), 10, 64)
			if err != nil {
				t.Fatalf("brokerAddrs key %q does not parse as the Go client needs", part[:i])
			}
			m[id] = strings.ReplaceAll(part[i+1:], `"`, "")
		}
		r.brokers[bd.BrokerName] = m
	}
	return r
}

// outerJSON lets encoding/json walk the outer structure of a fastjson body
// (gjson, which the Go client uses, tolerates unquoted keys; encoding/json
// does not). Quoting the keys does not change what the splitter yields.
func outerJSON(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	return QuoteIntegerKeys(b)
}

func multiRoute() *TopicRouteData {
	return &TopicRouteData{
		QueueDatas: []QueueData{
			{BrokerName: "broker-a", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6, TopicSysFlag: 1},
			{BrokerName: "broker-b", ReadQueueNums: 4, WriteQueueNums: 2, Perm: 4},
		},
		BrokerDatas: []BrokerData{
			{Cluster: "c1", BrokerName: "broker-a", BrokerAddrs: map[int64]string{0: "10.0.0.1:10911", 1: "10.0.0.2:10911", 10: "10.0.0.3:10911", 2: "[::1]:10911"}},
			{Cluster: "c1", BrokerName: "broker-b", BrokerAddrs: map[int64]string{}},
			{Cluster: "c1", BrokerName: "broker-c"},
		},
		FilterServerTable: map[string][]string{"10.0.0.1:10911": {"f1", "f2"}, "x": nil},
		OrderTopicConf:    "broker-a:8",
	}
}

func TestRouteParsesUnderGoClientRules(t *testing.T) {
	for _, r := range []*TopicRouteData{factsRoute(), multiRoute(), {}} {
		body := r.AppendJSON(nil)
		if bytes.ContainsAny(body, " \n\t\r") {
			t.Fatalf("route JSON is not compact: %s", body)
		}
		if !json.Valid(body) {
			t.Fatalf("invalid JSON: %s", body)
		}
		got := parseLikeGoClient(t, body)
		if len(got.queueDatas) != len(r.QueueDatas) {
			t.Fatalf("queueDatas: %+v", got.queueDatas)
		}
		for i, q := range r.QueueDatas {
			g := got.queueDatas[i]
			if g.BrokerName != q.BrokerName || g.ReadQueueNums != int(q.ReadQueueNums) ||
				g.WriteQueueNums != int(q.WriteQueueNums) || g.Perm != int(q.Perm) || g.TopicSynFlag != int(q.TopicSysFlag) {
				t.Fatalf("queueData %d: %+v vs %+v", i, g, q)
			}
		}
		for _, bd := range r.BrokerDatas {
			want := bd.BrokerAddrs
			if want == nil {
				want = map[int64]string{}
			}
			if !reflect.DeepEqual(got.brokers[bd.BrokerName], want) {
				t.Fatalf("%s: got %v want %v", bd.BrokerName, got.brokers[bd.BrokerName], want)
			}
		}
	}
}

func TestRouteRoundTrip(t *testing.T) {
	r := multiRoute()
	got, err := DecodeTopicRouteData(r.AppendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	r.BrokerDatas[2].BrokerAddrs = map[int64]string{}
	r.FilterServerTable["x"] = []string{}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("\n got %+v\nwant %+v", got, r)
	}
	// encoding/json uses the same writer.
	viaStd, err := json.Marshal(r)
	if err != nil || !bytes.Equal(viaStd, r.AppendJSON(nil)) {
		t.Fatalf("json.Marshal differs: %s %v", viaStd, err)
	}
	empty := (&TopicRouteData{}).AppendJSON(nil)
	if string(empty) != `{"brokerDatas":[],"filterServerTable":{},"queueDatas":[]}` {
		t.Fatalf("empty route: %s", empty)
	}
}

func TestRouteFromJavaFastjson(t *testing.T) {
	// 4.x Java namesrv output to a version-317 client: unquoted integer
	// keys, Java ≤ 4.8 flag name.
	in := `{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSynFlag":3,"writeQueueNums":4}]}`
	r, err := DecodeTopicRouteData([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if r.BrokerDatas[0].BrokerAddrs[1] != "10.0.0.2:10911" || r.BrokerDatas[0].MasterAddr() != "10.0.0.1:10911" ||
		r.QueueDatas[0].TopicSysFlag != 3 {
		t.Fatalf("%+v", r)
	}
	got := parseLikeGoClient(t, []byte(in))
	if got.brokers["broker-a"][1] != "10.0.0.2:10911" {
		t.Fatalf("%+v", got)
	}
	ci, err := DecodeClusterInfo([]byte(`{"brokerAddrTable":{"b":{"brokerAddrs":{0:"a:1"},"brokerName":"b","cluster":"c"}},"clusterAddrTable":{"c":["b"]}}`))
	if err != nil || ci.BrokerAddrTable["b"].BrokerAddrs[0] != "a:1" || ci.ClusterAddrTable["c"][0] != "b" {
		t.Fatalf("%+v %v", ci, err)
	}
}

func TestQuoteIntegerKeys(t *testing.T) {
	cases := map[string]string{
		`{0:"a",12:"b"}`:                 `{"0":"a","12":"b"}`,
		`{"k":{-1:[1,2,{3:"x:y,4:z"}]}}`: `{"k":{"-1":[1,2,{"3":"x:y,4:z"}]}}`,
		`{"s":"{5:\"q\"}","n":[1,2]}`:    `{"s":"{5:\"q\"}","n":[1,2]}`,
		`{ 7 : 1 , "a" : [ 8 , 9 ] }`:    `{ "7" : 1 , "a" : [ 8 , 9 ] }`,
		`[1,{2:3}]`:                      `[1,{"2":3}]`,
		`{"unterminated`:                 `{"unterminated`,
	}
	for in, want := range cases {
		if got := string(QuoteIntegerKeys([]byte(in))); got != want {
			t.Errorf("%s: got %s want %s", in, got, want)
		}
	}
	plain := []byte(`{"a":1}`)
	if out := QuoteIntegerKeys(plain); &out[0] != &plain[0] {
		t.Error("standard JSON was copied")
	}
}
