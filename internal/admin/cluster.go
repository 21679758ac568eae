package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mqd/mqd/internal/protocol"
)

// runtimeInfo is GET_BROKER_RUNTIME_INFO.
func (a *Admin) runtimeInfo(addr string) (map[string]string, error) {
	resp, err := a.call(addr, protocol.NewRequest(protocol.GetBrokerRuntimeInfo, nil))
	if err != nil {
		return nil, err
	}
	var kv protocol.KVTable
	if err := json.Unmarshal(resp.Body, &kv); err != nil {
		return nil, fmt.Errorf("runtime info from %s: %w", addr, err)
	}
	return kv.Table, nil
}

// ClusterList prints every broker of every cluster (or of one) with its
// traffic figures; more adds the store's disk ratio and uptime.
func (a *Admin) ClusterList(cluster string, more bool) error {
	ci, err := a.ClusterInfo()
	if err != nil {
		return err
	}
	if more {
		a.printf("%-16s  %-32s %14s %14s %14s %14s\n", "#Cluster Name", "#Broker Name", "#InTotalYest", "#OutTotalYest", "#InTotalToday", "#OutTotalToday")
	} else {
		a.printf("%-16s  %-22s  %-4s  %-22s %-16s %11s %11s %8s %6s\n", "#Cluster Name", "#Broker Name", "#BID", "#Addr",
			"#Version", "#InTPS", "#OutTPS", "#Hour", "#SPACE")
	}
	for _, cn := range sortedKeys(ci.ClusterAddrTable) {
		if cluster != "" && cn != cluster {
			continue
		}
		names := slices.Sorted(slices.Values(ci.ClusterAddrTable[cn]))
		for _, bn := range names {
			bd := ci.BrokerAddrTable[bn]
			ids := make([]int64, 0, len(bd.BrokerAddrs))
			for id := range bd.BrokerAddrs {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				addr := bd.BrokerAddrs[id]
				kv, err := a.runtimeInfo(addr)
				if err != nil {
					a.printf("%-16s  %-22s  %-4d  %-22s unreachable: %v\n", cn, bn, id, addr, err)
					continue
				}
				if more {
					n := func(k string) int64 { v, _ := strconv.ParseInt(kv[k], 10, 64); return v }
					a.printf("%-16s  %-32s %14d %14d %14d %14d\n", cn, bn,
						n("msgPutTotalTodayMorning")-n("msgPutTotalYesterdayMorning"),
						n("msgGetTotalTodayMorning")-n("msgGetTotalYesterdayMorning"),
						n("msgPutTotalTodayNow")-n("msgPutTotalTodayMorning"),
						n("msgGetTotalTodayNow")-n("msgGetTotalTodayMorning"))
					continue
				}
				ratio, _ := strconv.ParseFloat(kv["commitLogDiskRatio"], 64)
				a.printf("%-16s  %-22s  %-4d  %-22s %-16s %11s %11s %8s %6.4f\n", cn, bn, id, addr, kv["brokerVersionDesc"],
					firstField(kv["putTps"]), firstField(kv["getTransferedTps"]), hoursSince(kv["earliestMessageTimeStamp"]), ratio)
			}
		}
	}
	return nil
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "0"
}

// hoursSince is the age of the oldest message in hours (Java's #Hour).
func hoursSince(ms string) string {
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || v <= 0 {
		return "0.00"
	}
	return fmt.Sprintf("%.2f", float64(nowMillis()-v)/3600000)
}

// BrokerStatus prints a broker's runtime info, key by key.
func (a *Admin) BrokerStatus(brokerAddr, cluster string) error {
	ts, err := a.masters(brokerAddr, cluster)
	if err != nil {
		return err
	}
	for _, t := range ts {
		kv, err := a.runtimeInfo(t.addr)
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(kv) {
			if len(ts) > 1 {
				a.printf("%-24s %-32s: %s\n", t.addr, k, kv[k])
			} else {
				a.printf("%-32s: %s\n", k, kv[k])
			}
		}
	}
	return nil
}

// GetBrokerConfig prints each broker's configuration.
func (a *Admin) GetBrokerConfig(brokerAddr, cluster string) error {
	ts, err := a.masters(brokerAddr, cluster)
	if err != nil {
		return err
	}
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.GetBrokerConfig, nil))
		if err != nil {
			return err
		}
		a.printf("============%s============\n", t.addr)
		for _, line := range strings.Split(strings.TrimSpace(string(resp.Body)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				a.printf("%-50s=  %s\n", k, v)
			}
		}
	}
	return nil
}

// UpdateBrokerConfig sets key=value on a broker or every master of a
// cluster.
func (a *Admin) UpdateBrokerConfig(brokerAddr, cluster, key, value string) error {
	if key == "" || strings.ContainsAny(key+value, "\n=") {
		return fmt.Errorf("-k %q -v %q: a key is required; neither may contain '=' or a newline", key, value)
	}
	ts, err := a.masters(brokerAddr, cluster)
	if err != nil {
		return err
	}
	for _, t := range ts {
		req := protocol.NewRequest(protocol.UpdateBrokerConfig, nil)
		req.Body = []byte(key + "=" + value + "\n")
		resp, err := a.call(t.addr, req)
		if err != nil {
			return err
		}
		a.printf("update broker config success, %s (%s)\n", t.addr, resp.Remark)
	}
	return nil
}

// WipeWritePerm removes write permission from brokerName's topics on
// every nameserver.
func (a *Admin) WipeWritePerm(brokerName string) error {
	if brokerName == "" {
		return errors.New("-b broker name is required")
	}
	return a.eachNamesrv(func() *protocol.Command {
		return protocol.NewRequest(protocol.WipeWritePermOfBroker, &protocol.BrokerNameHeader{BrokerName: brokerName})
	}, func(ns string, resp *protocol.Command) {
		a.printf("wipe write perm of broker[%s] in name server[%s] OK, %s\n", brokerName, ns, resp.Ext("wipeTopicCount"))
	})
}

// AddWritePerm gives brokerName's topics write permission back.
func (a *Admin) AddWritePerm(brokerName string) error {
	if brokerName == "" {
		return errors.New("-b broker name is required")
	}
	return a.eachNamesrv(func() *protocol.Command {
		return protocol.NewRequest(protocol.AddWritePermOfBroker, &protocol.BrokerNameHeader{BrokerName: brokerName})
	}, func(ns string, resp *protocol.Command) {
		a.printf("add write perm of broker[%s] in name server[%s] OK, %s\n", brokerName, ns, resp.Ext("addTopicCount"))
	})
}

// UpdateKvConfig puts a KV config entry on every nameserver.
func (a *Admin) UpdateKvConfig(namespace, key, value string) error {
	if namespace == "" || key == "" {
		return errors.New("-s namespace and -k key are required")
	}
	err := a.eachNamesrv(func() *protocol.Command {
		return protocol.NewRequest(protocol.PutKVConfig, &protocol.KVConfigHeader{Namespace: namespace, Key: key, Value: value})
	}, nil)
	if err == nil {
		a.printf("update kv config in namespace success.\n")
	}
	return err
}

// DeleteKvConfig deletes a KV config entry from every nameserver.
func (a *Admin) DeleteKvConfig(namespace, key string) error {
	if namespace == "" || key == "" {
		return errors.New("-s namespace and -k key are required")
	}
	err := a.eachNamesrv(func() *protocol.Command {
		return protocol.NewRequest(protocol.DeleteKVConfig, &protocol.KVConfigHeader{Namespace: namespace, Key: key})
	}, nil)
	if err == nil {
		a.printf("delete kv config from namespace success.\n")
	}
	return err
}

type statsWindow struct {
	Sum int64   `json:"sum"`
	TPS float64 `json:"tps"`
}

type brokerStatsData struct {
	StatsMinute, StatsHour, StatsDay statsWindow
}

// viewStats is VIEW_BROKER_STATS_DATA; ok is false when the broker has no
// such figure (nothing counted yet).
func (a *Admin) viewStats(addr, name, key string) (brokerStatsData, bool) {
	var d brokerStatsData
	resp, err := a.call(addr, protocol.NewRequest(protocol.ViewBrokerStatsData,
		&protocol.ViewBrokerStatsDataRequestHeader{StatsName: name, StatsKey: key}))
	if err != nil || json.Unmarshal(resp.Body, &d) != nil {
		return d, false
	}
	return d, true
}

// sum24h is the day's sum, or the hour's or minute's while the broker is
// younger than that (Java's StatsAllSubCommand.compute24HourSum).
func (d brokerStatsData) sum24h() int64 {
	for _, s := range []int64{d.StatsDay.Sum, d.StatsHour.Sum, d.StatsMinute.Sum} {
		if s != 0 {
			return s
		}
	}
	return 0
}

// StatsAll prints, per topic and consumer group, the lag, the put and get
// rates of the last minute and the messages of the last 24 hours; active
// skips topics without traffic today.
func (a *Admin) StatsAll(onlyTopic string, active bool) error {
	topics := []string{onlyTopic}
	if onlyTopic == "" {
		var err error
		if topics, err = a.allTopics(); err != nil {
			return err
		}
	}
	a.printf("%-64s  %-64s %12s %11s %11s %14s %14s\n", "#Topic", "#Consumer Group", "#Accumulation", "#InTPS", "#OutTPS",
		"#InMsg24Hour", "#OutMsg24Hour")
	for _, topic := range topics {
		if strings.HasPrefix(topic, "%RETRY%") || strings.HasPrefix(topic, "%DLQ%") {
			continue
		}
		ts, err := a.topicMasters(topic)
		if err != nil {
			continue // no route: a system topic
		}
		var inTPS float64
		var in24 int64
		for _, t := range ts {
			if d, ok := a.viewStats(t.addr, protocol.StatsTopicPutNums, topic); ok {
				inTPS += d.StatsMinute.TPS
				in24 += d.sum24h()
			}
		}
		groups := a.consumedBy(ts, topic)
		if len(groups) == 0 {
			if !active || in24 > 0 {
				a.printf("%-64s  %-64s %12d %11.2f %11.2f %14d %14d\n", topic, "", 0, inTPS, 0.0, in24, 0)
			}
			continue
		}
		for _, g := range groups {
			var outTPS float64
			var out24, diff int64
			for _, t := range ts {
				if d, ok := a.viewStats(t.addr, protocol.StatsGroupGetNums, topic+"@"+g); ok {
					outTPS += d.StatsMinute.TPS
					out24 += d.sum24h()
				}
			}
			if cs, err := a.consumeStats(g, topic); err == nil {
				for _, w := range cs.OffsetTable {
					diff += w.BrokerOffset - w.ConsumerOffset
				}
			}
			if !active || in24 > 0 || out24 > 0 {
				a.printf("%-64s  %-64s %12d %11.2f %11.2f %14d %14d\n", topic, g, diff, inTPS, outTPS, in24, out24)
			}
		}
	}
	return nil
}

// clean sends a cleaner request (306, 316) to a broker or every master of
// a cluster and prints Java's success line with the broker's remark.
func (a *Admin) clean(brokerAddr, cluster string, code int16) error {
	ts, err := a.masters(brokerAddr, cluster)
	if err != nil {
		return err
	}
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(code, nil))
		if err != nil {
			return err
		}
		a.printf("%s: success (%s)\n", t.addr, resp.Remark)
	}
	return nil
}

// CleanExpiredCQ removes consume-queue files that only point at deleted
// commit-log data.
func (a *Admin) CleanExpiredCQ(brokerAddr, cluster string) error {
	return a.clean(brokerAddr, cluster, protocol.CleanExpiredConsumeQueue)
}

// CleanUnusedTopic removes consume queues of topics no longer configured.
func (a *Admin) CleanUnusedTopic(brokerAddr, cluster string) error {
	return a.clean(brokerAddr, cluster, protocol.CleanUnusedTopic)
}

// GetNamesrvConfig prints each nameserver's configuration.
func (a *Admin) GetNamesrvConfig() error {
	return a.eachNamesrv(func() *protocol.Command { return protocol.NewRequest(protocol.GetNamesrvConfig, nil) },
		func(ns string, resp *protocol.Command) {
			a.printf("============%s============\n", ns)
			for _, line := range strings.Split(strings.TrimSpace(string(resp.Body)), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					a.printf("%-50s=  %s\n", k, v)
				}
			}
		})
}

// UpdateNamesrvConfig sends key=value to every nameserver
// (UPDATE_NAMESRV_CONFIG), as Java's UpdateNamesrvConfigCommand.
func (a *Admin) UpdateNamesrvConfig(key, value string) error {
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if key == "" {
		return errors.New("-k key and -v value are required")
	}
	err := a.eachNamesrv(func() *protocol.Command {
		req := protocol.NewRequest(protocol.UpdateNamesrvConfig, nil)
		req.Body = []byte(key + "=" + value + "\n")
		return req
	}, nil)
	if err == nil {
		a.printf("update name server config success!%v\n%s : %s\n", a.Namesrv, key, value)
	}
	return err
}
