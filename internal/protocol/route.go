package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
)

// Route bodies: TopicRouteData (GET_ROUTEINFO_BY_TOPIC response) and
// ClusterInfo (GET_BROKER_CLUSTER_INFO response) — Java's TopicRouteData and ClusterInfo.
//
// The Go client v2.1.2 parses brokerAddrs with a hand-rolled splitter
// (strip braces, split on ',', split at the first ':', remove '"'), so the
// writers below emit compact JSON with no whitespace, brokerAddrs always an
// object with quoted integer keys, and queueDatas always an array. The
// parsers also accept fastjson's unquoted integer keys ({0:"a:1"}).

// Permission bits of topics and brokers.
const (
	PermPriority int32 = 8
	PermRead     int32 = 4
	PermWrite    int32 = 2
	PermInherit  int32 = 1
)

// MasterID is the brokerId of a master.
const MasterID int64 = 0

// QueueData is one brokerName's queues of a topic.
type QueueData struct {
	BrokerName     string
	ReadQueueNums  int32
	WriteQueueNums int32
	Perm           int32
	// TopicSysFlag is written under both "topicSysFlag" (Java ≥ 4.9) and
	// "topicSynFlag" (Java ≤ 4.8, Go client); either is accepted on input.
	TopicSysFlag int32
}

// AppendJSON appends the compact JSON form (keys sorted like fastjson).
func (q *QueueData) AppendJSON(dst []byte) []byte {
	dst = appendStrField(append(dst, '{'), "brokerName", q.BrokerName)
	dst = appendIntField(append(dst, ','), "perm", int64(q.Perm))
	dst = appendIntField(append(dst, ','), "readQueueNums", int64(q.ReadQueueNums))
	dst = appendIntField(append(dst, ','), "topicSysFlag", int64(q.TopicSysFlag))
	dst = appendIntField(append(dst, ','), "topicSynFlag", int64(q.TopicSysFlag))
	dst = appendIntField(append(dst, ','), "writeQueueNums", int64(q.WriteQueueNums))
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (q QueueData) MarshalJSON() ([]byte, error) { return q.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler.
func (q *QueueData) UnmarshalJSON(b []byte) error {
	var aux struct {
		BrokerName     string `json:"brokerName"`
		ReadQueueNums  int32  `json:"readQueueNums"`
		WriteQueueNums int32  `json:"writeQueueNums"`
		Perm           int32  `json:"perm"`
		TopicSysFlag   *int32 `json:"topicSysFlag"`
		TopicSynFlag   *int32 `json:"topicSynFlag"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*q = QueueData{BrokerName: aux.BrokerName, ReadQueueNums: aux.ReadQueueNums,
		WriteQueueNums: aux.WriteQueueNums, Perm: aux.Perm}
	if aux.TopicSysFlag != nil {
		q.TopicSysFlag = *aux.TopicSysFlag
	} else if aux.TopicSynFlag != nil {
		q.TopicSysFlag = *aux.TopicSynFlag
	}
	return nil
}

// BrokerData is one brokerName with its addresses by brokerId (0 = master).
type BrokerData struct {
	Cluster     string           `json:"cluster"`
	BrokerName  string           `json:"brokerName"`
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
}

// AppendJSON appends the compact JSON form; brokerAddrs is always an object
// with quoted integer keys in ascending id order.
func (b *BrokerData) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"brokerAddrs":{`...)
	ids := make([]int64, 0, len(b.BrokerAddrs))
	for id := range b.BrokerAddrs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, id, 10)
		dst = append(dst, '"', ':')
		dst = appendJSONString(dst, b.BrokerAddrs[id])
	}
	dst = appendStrField(append(dst, "},"...), "brokerName", b.BrokerName)
	dst = appendStrField(append(dst, ','), "cluster", b.Cluster)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (b BrokerData) MarshalJSON() ([]byte, error) { return b.AppendJSON(nil), nil }

// MasterAddr returns the address of brokerId 0, or "".
func (b *BrokerData) MasterAddr() string { return b.BrokerAddrs[MasterID] }

// TopicRouteData is the body of a GET_ROUTEINFO_BY_TOPIC response.
type TopicRouteData struct {
	OrderTopicConf    string              `json:"orderTopicConf,omitempty"`
	QueueDatas        []QueueData         `json:"queueDatas"`
	BrokerDatas       []BrokerData        `json:"brokerDatas"`
	FilterServerTable map[string][]string `json:"filterServerTable"`
}

// AppendJSON appends the compact JSON form, keys in fastjson (sorted)
// order: brokerDatas, filterServerTable, orderTopicConf (only when set),
// queueDatas.
func (r *TopicRouteData) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"brokerDatas":[`...)
	for i := range r.BrokerDatas {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = r.BrokerDatas[i].AppendJSON(dst)
	}
	dst = append(dst, `],"filterServerTable":`...)
	dst = appendStringListMap(dst, r.FilterServerTable)
	if r.OrderTopicConf != "" {
		dst = appendStrField(append(dst, ','), "orderTopicConf", r.OrderTopicConf)
	}
	dst = append(dst, `,"queueDatas":[`...)
	for i := range r.QueueDatas {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = r.QueueDatas[i].AppendJSON(dst)
	}
	return append(dst, "]}"...)
}

// MarshalJSON implements json.Marshaler.
func (r TopicRouteData) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// DecodeTopicRouteData parses a route body written by mqd, a Java namesrv
// (quoted or unquoted integer keys) or encoding/json.
func DecodeTopicRouteData(body []byte) (*TopicRouteData, error) {
	r := &TopicRouteData{}
	if err := DecodeJSON(body, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ClusterInfo is the body of a GET_BROKER_CLUSTER_INFO response.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// AppendJSON appends the compact JSON form with sorted keys.
func (c *ClusterInfo) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"brokerAddrTable":{`...)
	names := make([]string, 0, len(c.BrokerAddrTable))
	for n := range c.BrokerAddrTable {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		bd := c.BrokerAddrTable[n]
		dst = bd.AppendJSON(appendKey(dst, n))
	}
	dst = append(dst, `},"clusterAddrTable":`...)
	dst = appendStringListMap(dst, c.ClusterAddrTable)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (c ClusterInfo) MarshalJSON() ([]byte, error) { return c.AppendJSON(nil), nil }

// DecodeClusterInfo parses a ClusterInfo body (quoted or unquoted keys).
func DecodeClusterInfo(body []byte) (*ClusterInfo, error) {
	c := &ClusterInfo{}
	if err := DecodeJSON(body, c); err != nil {
		return nil, err
	}
	return c, nil
}

// appendStringListMap writes map[string][]string with sorted keys; nil
// maps become {} and nil lists [].
func appendStringListMap(dst []byte, m map[string][]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendStringList(appendKey(dst, k), m[k])
	}
	return append(dst, '}')
}

func appendStringList(dst []byte, l []string) []byte {
	dst = append(dst, '[')
	for i, s := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}
