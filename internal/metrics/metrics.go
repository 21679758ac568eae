// Package metrics exports a broker's figures to Prometheus. Everything is
// read at scrape time from counters the broker and the engine keep anyway
// (atomics, copy-on-write maps), so serving metrics adds nothing to the
// send path. Names follow apache/rocketmq-exporter where it has one
// (rocketmq_producer_*, rocketmq_consumer_*, rocketmq_group_diff,
// rocketmq_brokeruntime_*); figures it lacks are mqd_*. Every series
// carries the cluster and broker labels.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqd/mqd/internal/broker"
	"github.com/mqd/mqd/internal/stat"
	"golang.org/x/sys/unix"
)

type desc = *prometheus.Desc

// collector is a prometheus.Collector over one broker.
type collector struct {
	b                                     *broker.Broker
	putMsgs, putBytes, getMsgs, getBytes  desc
	groupDiff                             desc
	sendLatency, flushLatency             desc
	roundBytes, rounds, roundWaiters      desc
	dispatchBehind, diskRatio, commitLogB desc
	connections, parked                   desc
	haSlaves, haSlaveLag, haSlaveAge      desc
	haAckLatency, haMasterLag, haMasterUp desc
}

// Handler serves b's metrics in the Prometheus text format, with the Go
// runtime's and the process's collectors.
func Handler(b *broker.Broker) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(b), prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func newCollector(b *broker.Broker) *collector {
	cluster, name := b.Name()
	constant := prometheus.Labels{"cluster": cluster, "broker": name}
	d := func(n, help string, labels ...string) desc { return prometheus.NewDesc(n, help, labels, constant) }
	return &collector{b: b,
		putMsgs:        d("rocketmq_producer_message_total", "Messages stored, by topic.", "topic"),
		putBytes:       d("rocketmq_producer_put_size_bytes_total", "Message bytes stored, by topic.", "topic"),
		getMsgs:        d("rocketmq_consumer_message_total", "Messages pulled, by consumer group and topic.", "group", "topic"),
		getBytes:       d("rocketmq_consumer_get_size_bytes_total", "Message bytes pulled, by consumer group and topic.", "group", "topic"),
		groupDiff:      d("rocketmq_group_diff", "Consumer lag: queue max offset minus the group's committed offset.", "group", "topic", "queueid"),
		sendLatency:    d("mqd_send_latency_seconds", "Time from a decoded send request to its response (put and, under SYNC_FLUSH, the fsync wait)."),
		flushLatency:   d("mqd_flush_latency_seconds", "Duration of the commit log's write+fdatasync rounds."),
		roundBytes:     d("mqd_group_commit_bytes_total", "Bytes made durable by fdatasync rounds (divide by mqd_group_commit_rounds_total for the round size)."),
		rounds:         d("mqd_group_commit_rounds_total", "fdatasync rounds of the commit log."),
		roundWaiters:   d("mqd_group_commit_waiters_total", "Appends released by fdatasync rounds (sends sharing one fsync)."),
		dispatchBehind: d("rocketmq_brokeruntime_dispatch_behind_bytes", "Commit-log bytes not yet dispatched to consume queues and the index."),
		diskRatio:      d("rocketmq_brokeruntime_commitlog_disk_ratio", "Used fraction of the file system holding the store."),
		commitLogB:     d("mqd_commitlog_bytes", "Commit-log bytes retained (max offset minus min offset)."),
		connections:    d("mqd_connections", "Open client connections."),
		parked:         d("mqd_parked_pulls", "Long polls waiting for messages."),
		// replication (rocketmq-exporter has none): a master's view per
		// slave, a slave's view of its master
		haSlaves:     d("mqd_ha_connected_slaves", "Slaves connected to this master."),
		haSlaveLag:   d("mqd_ha_slave_lag_bytes", "Commit-log bytes written on this master that the slave has not acknowledged.", "slave"),
		haSlaveAge:   d("mqd_ha_slave_report_age_seconds", "Time since the slave last acknowledged an offset.", "slave"),
		haAckLatency: d("mqd_ha_slave_ack_latency_seconds", "SYNC_MASTER: a wait for a slave's acknowledgement (the deferred sends of one flush round share one)."),
		haMasterLag:  d("mqd_ha_master_lag_bytes", "Slave: bytes the master had written at its last message that this slave has not stored."),
		haMasterUp:   d("mqd_ha_master_connected", "Slave: 1 while the replication link to the master is up."),
	}
}

func (c *collector) Describe(ch chan<- desc) {
	for _, d := range []desc{c.putMsgs, c.putBytes, c.getMsgs, c.getBytes, c.groupDiff, c.sendLatency, c.flushLatency,
		c.roundBytes, c.rounds, c.roundWaiters, c.dispatchBehind, c.diskRatio, c.commitLogB, c.connections, c.parked,
		c.haSlaves, c.haSlaveLag, c.haSlaveAge, c.haAckLatency, c.haMasterLag, c.haMasterUp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.b.Stats()
	for topic, t := range st.Topics() {
		counter(c.putMsgs, t.PutMsgs.Load(), topic)
		counter(c.putBytes, t.PutBytes.Load(), topic)
	}
	for k, g := range st.Groups() {
		counter(c.getMsgs, g.GetMsgs.Load(), k.Group, k.Topic)
		counter(c.getBytes, g.GetBytes.Load(), k.Group, k.Topic)
	}
	c.b.EachConsumerLag(func(group, topic string, q int32, lag int64) {
		gauge(c.groupDiff, float64(lag), group, topic, strconv.Itoa(int(q)))
	})
	ch <- histogram(c.sendLatency, &st.SendLatency)
	s := c.b.Store()
	fs := s.FlushStats()
	ch <- histogram(c.flushLatency, fs.SyncLatency)
	n, bytes := fs.RoundBytes.Load()
	_, waiters := fs.RoundWaiters.Load()
	counter(c.rounds, n)
	counter(c.roundBytes, bytes)
	counter(c.roundWaiters, waiters)
	gauge(c.dispatchBehind, float64(s.DispatchLag()))
	gauge(c.commitLogB, float64(s.MaxPhysOffset()-s.MinPhysOffset()))
	if r, ok := diskRatio(s.Dir()); ok {
		gauge(c.diskRatio, r)
	}
	gauge(c.connections, float64(c.b.Connections()))
	gauge(c.parked, float64(c.b.ParkedPulls()))
	c.collectHA(gauge, ch)
}

// collectHA exports replication: a master's slaves, a slave's link.
func (c *collector) collectHA(gauge func(desc, float64, ...string), ch chan<- prometheus.Metric) {
	st := c.b.HAStatus()
	switch st.Role {
	case broker.RoleSlave:
		up := 0.0
		if st.Connected {
			up = 1
		}
		gauge(c.haMasterUp, up)
		gauge(c.haMasterLag, float64(st.Lag))
	default:
		gauge(c.haSlaves, float64(st.Slaves))
		for _, s := range c.b.HASlaves() {
			gauge(c.haSlaveLag, float64(s.Lag), s.Addr)
			gauge(c.haSlaveAge, s.ReportAge.Seconds(), s.Addr)
		}
		ch <- histogram(c.haAckLatency, &c.b.Stats().ReplicaAckLatency)
	}
}

// histogram converts a stat.Histogram to a Prometheus histogram.
func histogram(d desc, h *stat.Histogram) prometheus.Metric {
	s := h.Snapshot()
	buckets := make(map[float64]uint64, len(stat.Bounds))
	for i, b := range stat.Bounds {
		buckets[b.Seconds()] = s.Cumulative[i]
	}
	return prometheus.MustNewConstHistogram(d, s.Count, s.Sum.Seconds(), buckets)
}

func diskRatio(dir string) (float64, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Blocks == 0 {
		return 0, false
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks), true
}
