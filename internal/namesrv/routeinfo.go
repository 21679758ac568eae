package namesrv

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// brokerLive is one registered broker address (brokerLiveTable value).
type brokerLive struct {
	lastUpdate   time.Time
	dataVersion  protocol.DataVersion
	haServerAddr string
	conn         *remoting.Conn // nil only in unit tests
}

// brokerEntry is one brokerName (brokerAddrTable value).
type brokerEntry struct {
	cluster string
	addrs   map[int64]string // brokerId → ip:port
}

// routeInfo is Java's RouteInfoManager. mu guards every table.
type routeInfo struct {
	mu            sync.RWMutex
	clusterAddrs  map[string]map[string]struct{}           // cluster → brokerNames
	brokerAddrs   map[string]*brokerEntry                  // brokerName → entry
	topicQueues   map[string]map[string]protocol.QueueData // topic → brokerName → queues
	brokerLive    map[string]*brokerLive                   // brokerAddr → liveness
	filterServers map[string][]string                      // brokerAddr → filter servers
}

func newRouteInfo() *routeInfo {
	return &routeInfo{
		clusterAddrs:  map[string]map[string]struct{}{},
		brokerAddrs:   map[string]*brokerEntry{},
		topicQueues:   map[string]map[string]protocol.QueueData{},
		brokerLive:    map[string]*brokerLive{},
		filterServers: map[string][]string{},
	}
}

// registration is one REGISTER_BROKER request, decoded.
type registration struct {
	cluster, name, addr, haServerAddr string
	id                                int64
	version                           protocol.DataVersion
	topics                            map[string]protocol.TopicConfig
	filterServers                     []string // empty clears the entry
	conn                              *remoting.Conn
}

// registerResult is what REGISTER_BROKER answers, plus facts for logs and
// tests.
type registerResult struct {
	masterAddr, masterHAAddr string // for slaves once the master is live
	newAddr                  bool   // the address was not live before
	topicsApplied            bool   // the topic table was (re)applied
	dropped                  bool   // the connection closed; nothing kept
	// refused is set when the brokerId is held by another live address
	// with a higher stateVersion (Java 5 RouteInfoManager): nothing of the
	// registration was applied.
	refused *refusal
}

// refusal describes a registration refused for its stateVersion.
type refusal struct {
	holder             string // the address holding the brokerId
	holderState, state int64  // the holder's and the refused stateVersion
}

// register applies a registration at time now.
func (r *routeInfo) register(reg registration, now time.Time) registerResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	var res registerResult
	// A handler may finish after its connection closed and onConnClosed
	// already ran; keeping the entry would leave a ghost until expiry.
	// Closed() turns true before the close hooks run, and they take this
	// lock, so either we see it here or the hook removes us afterwards.
	if reg.conn != nil && reg.conn.Closed() {
		res.dropped = true
		return res
	}
	if ref := r.staleLocked(reg); ref != nil {
		res.refused = ref
		return res
	}
	names := r.clusterAddrs[reg.cluster]
	if names == nil {
		names = map[string]struct{}{}
		r.clusterAddrs[reg.cluster] = names
	}
	names[reg.name] = struct{}{}

	first := false
	be := r.brokerAddrs[reg.name]
	if be == nil {
		first = true
		be = &brokerEntry{cluster: reg.cluster, addrs: map[int64]string{}}
		r.brokerAddrs[reg.name] = be
	}
	// Slave → master switch: one address has one id per brokerName.
	for id, addr := range be.addrs {
		if addr == reg.addr && id != reg.id {
			delete(be.addrs, id)
		}
	}
	if _, had := be.addrs[reg.id]; !had {
		first = true
	}
	be.addrs[reg.id] = reg.addr

	if reg.id == protocol.MasterID && (first || r.versionChangedLocked(reg.addr, reg.version)) {
		for name, tc := range reg.topics {
			if tc.TopicName == "" {
				tc.TopicName = name
			}
			r.upsertQueueDataLocked(reg.name, tc)
		}
		res.topicsApplied = true
	}

	prev := r.brokerLive[reg.addr]
	res.newAddr = prev == nil
	r.brokerLive[reg.addr] = &brokerLive{
		lastUpdate: now, dataVersion: reg.version,
		haServerAddr: reg.haServerAddr, conn: reg.conn,
	}
	if len(reg.filterServers) == 0 {
		delete(r.filterServers, reg.addr)
	} else {
		r.filterServers[reg.addr] = slices.Clone(reg.filterServers)
	}
	if reg.id != protocol.MasterID {
		if m, ok := be.addrs[protocol.MasterID]; ok {
			if ml := r.brokerLive[m]; ml != nil {
				res.masterAddr, res.masterHAAddr = m, ml.haServerAddr
			}
		}
	}
	return res
}

// staleLocked refuses a registration whose brokerId of its brokerName is
// held by another live address that registered a higher stateVersion
// (Java 5 RouteInfoManager.registerBroker: equal or lower is replaced; a
// 4.x broker sends none, 0, so among 4.x brokers nothing is refused).
// stateVersions are compared as plain numbers, whatever their size.
// Unlike Java, nothing is changed before the check: the refused address
// keeps any other id it holds. It loses its liveness only when it holds
// no id anywhere (as Java drops it), so it leaves no entry behind; when
// it still holds one, its liveness is not refreshed and expires with it.
func (r *routeInfo) staleLocked(reg registration) *refusal {
	be := r.brokerAddrs[reg.name]
	if be == nil {
		return nil
	}
	holder, ok := be.addrs[reg.id]
	if !ok || holder == reg.addr {
		return nil
	}
	hl := r.brokerLive[holder]
	if hl == nil || hl.dataVersion.StateVersion <= reg.version.StateVersion {
		return nil
	}
	if !r.holdsAnyIDLocked(reg.addr) {
		delete(r.brokerLive, reg.addr)
		delete(r.filterServers, reg.addr)
	}
	return &refusal{holder: holder, holderState: hl.dataVersion.StateVersion, state: reg.version.StateVersion}
}

// holdsAnyIDLocked reports whether addr is some brokerName's address.
func (r *routeInfo) holdsAnyIDLocked(addr string) bool {
	for _, be := range r.brokerAddrs {
		for _, a := range be.addrs {
			if a == addr {
				return true
			}
		}
	}
	return false
}

func (r *routeInfo) upsertQueueDataLocked(brokerName string, tc protocol.TopicConfig) {
	qd := protocol.QueueData{
		BrokerName: brokerName, ReadQueueNums: tc.ReadQueueNums,
		WriteQueueNums: tc.WriteQueueNums, Perm: tc.Perm, TopicSysFlag: tc.TopicSysFlag,
	}
	m := r.topicQueues[tc.TopicName]
	if m == nil {
		m = map[string]protocol.QueueData{}
		r.topicQueues[tc.TopicName] = m
	}
	m[brokerName] = qd
}

// touch refreshes the liveness of a live broker address without changing
// its topics (a registration whose body could not be decoded); it reports
// whether addr was live.
func (r *routeInfo) touch(addr string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	bl := r.brokerLive[addr]
	if bl != nil {
		bl.lastUpdate = now
	}
	return bl != nil
}

// versionChangedLocked reports whether addr is not live or registered a
// different DataVersion (Java DataVersion.equals: timestamp and counter).
func (r *routeInfo) versionChangedLocked(addr string, v protocol.DataVersion) bool {
	prev := r.brokerLive[addr]
	return prev == nil || prev.dataVersion != v
}

// queryDataVersion answers QUERY_DATA_VERSION: whether v differs from what
// addr registered (refreshing its liveness when it does not) and the
// registered version (nil when addr is not live).
func (r *routeInfo) queryDataVersion(addr string, v protocol.DataVersion, now time.Time) (bool, *protocol.DataVersion) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := r.versionChangedLocked(addr, v)
	bl := r.brokerLive[addr]
	if bl == nil {
		return changed, nil
	}
	if !changed {
		bl.lastUpdate = now
	}
	cur := bl.dataVersion
	return changed, &cur
}

// unregister handles UNREGISTER_BROKER. Unlike Java, the brokerId entry is
// only dropped when it still holds addr, so a late unregister of a
// replaced broker does not remove its successor. It reports whether the
// address was known.
func (r *routeInfo) unregister(cluster, addr, name string, id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, live := r.brokerLive[addr]
	delete(r.brokerLive, addr)
	delete(r.filterServers, addr)
	be := r.brokerAddrs[name]
	if be == nil || be.addrs[id] != addr {
		return live
	}
	delete(be.addrs, id)
	if len(be.addrs) == 0 {
		r.removeBrokerNameLocked(name)
	}
	return true
}

// removeAddrLocked forgets a broker address everywhere (Java's RouteInfoManager
// "broker gone").
func (r *routeInfo) removeAddrLocked(addr string) {
	delete(r.brokerLive, addr)
	delete(r.filterServers, addr)
	for name, be := range r.brokerAddrs {
		for id, a := range be.addrs {
			if a == addr {
				delete(be.addrs, id)
			}
		}
		if len(be.addrs) == 0 {
			r.removeBrokerNameLocked(name)
		}
	}
}

// removeBrokerNameLocked drops a brokerName from brokerAddrTable, from
// every cluster (dropping emptied clusters) and from every topic (dropping
// emptied topics).
func (r *routeInfo) removeBrokerNameLocked(name string) {
	delete(r.brokerAddrs, name)
	for cluster, names := range r.clusterAddrs {
		delete(names, name)
		if len(names) == 0 {
			delete(r.clusterAddrs, cluster)
		}
	}
	for topic, qds := range r.topicQueues {
		delete(qds, name)
		if len(qds) == 0 {
			delete(r.topicQueues, topic)
		}
	}
}

// removeByConn removes every broker whose live entry was registered
// through c and returns their addresses.
func (r *routeInfo) removeByConn(c *remoting.Conn) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []string
	for addr, bl := range r.brokerLive {
		if bl.conn == c {
			gone = append(gone, addr)
		}
	}
	for _, addr := range gone {
		r.removeAddrLocked(addr)
	}
	return gone
}

// expiredBroker is a broker removed by expire; its connection is closed
// by the caller, outside the lock.
type expiredBroker struct {
	addr string
	last time.Time
	conn *remoting.Conn
}

// expire removes brokers whose last refresh is older than maxAge at now.
func (r *routeInfo) expire(now time.Time, maxAge time.Duration) []expiredBroker {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []expiredBroker
	for addr, bl := range r.brokerLive {
		if now.Sub(bl.lastUpdate) > maxAge {
			gone = append(gone, expiredBroker{addr: addr, last: bl.lastUpdate, conn: bl.conn})
		}
	}
	for _, g := range gone {
		r.removeAddrLocked(g.addr)
	}
	return gone
}

// route returns the route of topic, or false when no brokerName holding
// it is registered (→ TOPIC_NOT_EXIST).
func (r *routeInfo) route(topic string) (*protocol.TopicRouteData, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	qds := r.topicQueues[topic]
	if len(qds) == 0 {
		return nil, false
	}
	rd := &protocol.TopicRouteData{
		QueueDatas:        make([]protocol.QueueData, 0, len(qds)),
		FilterServerTable: map[string][]string{},
	}
	for _, name := range slices.Sorted(maps.Keys(qds)) {
		rd.QueueDatas = append(rd.QueueDatas, qds[name])
		be := r.brokerAddrs[name]
		if be == nil {
			continue
		}
		rd.BrokerDatas = append(rd.BrokerDatas, protocol.BrokerData{
			Cluster: be.cluster, BrokerName: name, BrokerAddrs: maps.Clone(be.addrs),
		})
		for _, addr := range be.addrs {
			if fs, ok := r.filterServers[addr]; ok {
				rd.FilterServerTable[addr] = slices.Clone(fs)
			}
		}
	}
	if len(rd.BrokerDatas) == 0 {
		return nil, false
	}
	return rd, true
}

// clusterInfo copies the cluster and broker tables (names sorted).
func (r *routeInfo) clusterInfo() *protocol.ClusterInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ci := &protocol.ClusterInfo{
		BrokerAddrTable:  make(map[string]protocol.BrokerData, len(r.brokerAddrs)),
		ClusterAddrTable: make(map[string][]string, len(r.clusterAddrs)),
	}
	for name, be := range r.brokerAddrs {
		ci.BrokerAddrTable[name] = protocol.BrokerData{
			Cluster: be.cluster, BrokerName: name, BrokerAddrs: maps.Clone(be.addrs),
		}
	}
	for cluster, names := range r.clusterAddrs {
		ci.ClusterAddrTable[cluster] = slices.Sorted(maps.Keys(names))
	}
	return ci
}

// topicList returns every topic with queue data, sorted.
func (r *routeInfo) topicList() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.topicQueues))
}

// topicsByCluster returns the topics held by any brokerName of cluster,
// sorted and without duplicates (Java lists a topic once per brokerName).
func (r *routeInfo) topicsByCluster(cluster string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := r.clusterAddrs[cluster]
	out := []string{}
	for topic, qds := range r.topicQueues {
		for name := range qds {
			if _, ok := names[name]; ok {
				out = append(out, topic)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// deleteTopic removes a topic, or only the queue data of cluster's
// brokerNames when cluster is not empty.
func (r *routeInfo) deleteTopic(topic, cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cluster == "" {
		delete(r.topicQueues, topic)
		return
	}
	qds := r.topicQueues[topic]
	if qds == nil {
		return
	}
	for name := range r.clusterAddrs[cluster] {
		delete(qds, name)
	}
	if len(qds) == 0 {
		delete(r.topicQueues, topic)
	}
}

// setWritePerm clears PERM_WRITE (wipe) or sets perm to READ|WRITE (add,
// as Java does) on every topic of brokerName; it returns the topic count.
func (r *routeInfo) setWritePerm(brokerName string, wipe bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, qds := range r.topicQueues {
		qd, ok := qds[brokerName]
		if !ok {
			continue
		}
		if wipe {
			qd.Perm &^= protocol.PermWrite
		} else {
			qd.Perm = protocol.PermRead | protocol.PermWrite
		}
		qds[brokerName] = qd
		n++
	}
	return n
}
