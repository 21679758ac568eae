package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Client registry (Java's ClientManageProcessor and HeartbeatData and BrokerHousekeepingService): HEART_BEAT registers a
// connection under its producer and consumer groups together with the
// consumer subscriptions; UNREGISTER_CLIENT, a closed connection or 120 s
// without a heartbeat remove it. Consumers of a group are told about
// membership changes with NOTIFY_CONSUMER_IDS_CHANGED so they rebalance at
// once. Entries are keyed by connection, as Java keys them by channel.

// initClients creates the client-side managers: offsets (loaded from
// config/consumerOffset.json), consumers, producers, locks and the
// long-polling hold.
func (b *Broker) initClients(configDir string) error {
	var err error
	if b.offsets, err = newOffsetManager(filepath.Join(configDir, consumerOffsetFileName)); err != nil {
		return err
	}
	b.consumers = newConsumerManager()
	b.producers = newProducerManager(b.cfg.MaxProducerGroups, b.cfg.MaxProducerGroupsPerConnection)
	b.locks = newLockManager(b.cfg.LockMaxLiveTime)
	b.pulls = newPullHold(b.log, func(conn *remoting.Conn, req *protocol.Command) {
		if resp := b.aclRecheck(conn, req); resp != nil {
			conn.Reply(resp)
			return
		}
		b.servePull(conn, req, false)
	})
	return nil
}

func (b *Broker) registerClients() {
	b.server.Handle(protocol.HeartBeat, b.handleHeartbeat)
	b.server.Handle(protocol.UnregisterClient, b.handleUnregisterClient)
	b.server.Handle(protocol.GetConsumerListByGroup, b.handleGetConsumerList)
	b.server.Handle(protocol.GetConsumerConnectionList, b.handleGetConsumerConnectionList)
	b.server.OnClose(b.clientClosed)
}

// ClientInfo describes one registered client connection.
type ClientInfo struct {
	Conn       *remoting.Conn
	ClientID   string
	Language   string
	Version    int16
	LastUpdate time.Time
}

// ConsumerGroupInfo is a snapshot of one consumer group.
type ConsumerGroupInfo struct {
	ConsumeType      string
	MessageModel     string
	ConsumeFromWhere string
	Clients          []ClientInfo                         // sorted by client id
	Subscriptions    map[string]protocol.SubscriptionData // by topic, codes recomputed
}

// ConsumerManager tracks consumer groups: their connections and
// subscriptions. Safe for concurrent use.
type ConsumerManager struct {
	mu     sync.RWMutex
	groups map[string]*consumerGroup
}

type consumerGroup struct {
	consumeType, messageModel, consumeFromWhere string
	clients                                     map[*remoting.Conn]*ClientInfo
	subs                                        map[string]*subscription
}

func newConsumerManager() *ConsumerManager {
	return &ConsumerManager{groups: map[string]*consumerGroup{}}
}

// register records a heartbeat of one consumer group. It reports whether
// the channel set or the subscriptions changed (then the group's
// connections are returned for NOTIFY_CONSUMER_IDS_CHANGED).
func (m *ConsumerManager) register(ci ClientInfo, data *protocol.ConsumerData) (bool, []*remoting.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[data.GroupName]
	if g == nil {
		g = &consumerGroup{clients: map[*remoting.Conn]*ClientInfo{}, subs: map[string]*subscription{}}
		m.groups[data.GroupName] = g
	}
	g.consumeType, g.messageModel, g.consumeFromWhere = data.ConsumeType, data.MessageModel, data.ConsumeFromWhere
	changed := g.updateClient(ci)
	if g.updateSubscriptions(data.SubscriptionDataSet) {
		changed = true
	}
	if !changed {
		return false, nil
	}
	return true, g.conns()
}

// updateClient adds or refreshes a connection; true when it is new.
func (g *consumerGroup) updateClient(ci ClientInfo) bool {
	old := g.clients[ci.Conn]
	if old == nil {
		c := ci
		g.clients[ci.Conn] = &c
		return true
	}
	*old = ci // a changed client id on the same connection replaces it (Java logs it)
	return false
}

// updateSubscriptions applies Java's rules: a new topic is added, an
// existing one replaced only by a greater subVersion, a topic missing from
// the heartbeat removed. Replacing does not count as a change.
func (g *consumerGroup) updateSubscriptions(list []protocol.SubscriptionData) bool {
	changed := false
	seen := make(map[string]bool, len(list))
	for _, sd := range list {
		seen[sd.Topic] = true
		old := g.subs[sd.Topic]
		switch {
		case old == nil:
			g.subs[sd.Topic] = newSubscription(sd)
			changed = true
		case sd.SubVersion > old.data.SubVersion:
			g.subs[sd.Topic] = newSubscription(sd)
		}
	}
	for topic := range g.subs {
		if !seen[topic] {
			delete(g.subs, topic)
			changed = true
		}
	}
	return changed
}

func (g *consumerGroup) conns() []*remoting.Conn {
	out := make([]*remoting.Conn, 0, len(g.clients))
	for c := range g.clients {
		out = append(out, c)
	}
	return out
}

// unregister removes conn from group; it returns the remaining
// connections and whether conn was registered.
func (m *ConsumerManager) unregister(group string, conn *remoting.Conn) ([]*remoting.Conn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeLocked(group, conn)
}

func (m *ConsumerManager) removeLocked(group string, conn *remoting.Conn) ([]*remoting.Conn, bool) {
	g := m.groups[group]
	if g == nil || g.clients[conn] == nil {
		return nil, false
	}
	delete(g.clients, conn)
	if len(g.clients) == 0 {
		delete(m.groups, group) // a group without a channel is forgotten
		return nil, true
	}
	return g.conns(), true
}

// removeConn drops conn from every group; it returns, per group that still
// has members, the remaining connections.
func (m *ConsumerManager) removeConn(conn *remoting.Conn) map[string][]*remoting.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]*remoting.Conn{}
	for name, g := range m.groups {
		if g.clients[conn] == nil {
			continue
		}
		if rest, _ := m.removeLocked(name, conn); len(rest) > 0 {
			out[name] = rest
		}
	}
	return out
}

// expire drops entries not refreshed since deadline. It returns their
// connections and, per group that still has members, the remaining ones.
func (m *ConsumerManager) expire(deadline time.Time) ([]*remoting.Conn, map[string][]*remoting.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var expired []*remoting.Conn
	notify := map[string][]*remoting.Conn{}
	for name, g := range m.groups {
		for conn, ci := range g.clients {
			if !ci.LastUpdate.Before(deadline) {
				continue
			}
			expired = append(expired, conn)
			rest, _ := m.removeLocked(name, conn)
			notify[name] = rest
		}
		if len(notify[name]) == 0 {
			delete(notify, name)
		}
	}
	return expired, notify
}

// subscription returns the group's subscription of topic. groupOK is
// false when the group has no live member.
func (m *ConsumerManager) subscription(group, topic string) (sub *subscription, model string, groupOK bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.groups[group]
	if g == nil {
		return nil, "", false
	}
	return g.subs[topic], g.messageModel, true
}

// ClientIDs returns the client ids of the group's connections, sorted.
func (m *ConsumerManager) ClientIDs(group string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.groups[group]
	if g == nil {
		return nil
	}
	ids := make([]string, 0, len(g.clients))
	for _, ci := range g.clients {
		ids = append(ids, ci.ClientID)
	}
	sort.Strings(ids)
	return ids
}

// Group returns a snapshot of a consumer group.
func (m *ConsumerManager) Group(group string) (ConsumerGroupInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	g := m.groups[group]
	if g == nil {
		return ConsumerGroupInfo{}, false
	}
	info := ConsumerGroupInfo{ConsumeType: g.consumeType, MessageModel: g.messageModel,
		ConsumeFromWhere: g.consumeFromWhere, Subscriptions: make(map[string]protocol.SubscriptionData, len(g.subs))}
	for _, ci := range g.clients {
		info.Clients = append(info.Clients, *ci)
	}
	sort.Slice(info.Clients, func(i, j int) bool { return info.Clients[i].ClientID < info.Clients[j].ClientID })
	for t, s := range g.subs {
		info.Subscriptions[t] = s.data
	}
	return info, true
}

// Groups returns the names of the groups with live members, sorted.
func (m *ConsumerManager) Groups() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.groups))
}

// GroupsByTopic returns the groups subscribed to topic, sorted.
func (m *ConsumerManager) GroupsByTopic(topic string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for name, g := range m.groups {
		if g.subs[topic] != nil {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// ProducerManager tracks producer groups' connections (transaction
// check-backs go to one of them). Safe for concurrent use. Any client
// names producer groups freely and they live until they expire (120 s),
// so the table is bounded: at most maxGroups groups, and at most perConn
// registrations of one connection (limits.go).
type ProducerManager struct {
	mu        sync.RWMutex
	groups    map[string]map[*remoting.Conn]*ClientInfo
	perConn   map[*remoting.Conn]int    // registrations of each connection
	byClient  map[string]*remoting.Conn // client id → its latest connection (Java's clientChannelTable; reply.go)
	clientOf  map[*remoting.Conn]string // the client id a connection last registered with: byClient stays one entry per connection
	maxGroups int
	maxPer    int
}

// Errors of register beyond the caps.
var (
	errProducerGroups        = errors.New("maxProducerGroups")
	errProducerGroupsPerConn = errors.New("maxProducerGroupsPerConnection")
)

func newProducerManager(maxGroups, perConn int) *ProducerManager {
	return &ProducerManager{groups: map[string]map[*remoting.Conn]*ClientInfo{},
		perConn: map[*remoting.Conn]int{}, byClient: map[string]*remoting.Conn{},
		clientOf: map[*remoting.Conn]string{}, maxGroups: maxGroups, maxPer: perConn}
}

// setLimits sets maxProducerGroups and maxProducerGroupsPerConnection for
// the next registrations (UPDATE_BROKER_CONFIG); registered ones stay.
func (m *ProducerManager) setLimits(maxGroups, perConn int) {
	m.mu.Lock()
	m.maxGroups, m.maxPer = maxGroups, perConn
	m.mu.Unlock()
}

// register adds or refreshes ci in group; a new registration beyond the
// caps is refused with errProducerGroups or errProducerGroupsPerConn
// (refreshing an existing one always works).
func (m *ProducerManager) register(group string, ci ClientInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[group]
	if old := g[ci.Conn]; old != nil {
		*old = ci
		m.setClientLocked(ci)
		return nil
	}
	switch {
	case g == nil && len(m.groups) >= m.maxGroups:
		return errProducerGroups
	case m.perConn[ci.Conn] >= m.maxPer:
		return errProducerGroupsPerConn
	}
	if g == nil {
		g = map[*remoting.Conn]*ClientInfo{}
		m.groups[group] = g
	}
	c := ci
	g[ci.Conn] = &c
	m.perConn[ci.Conn]++
	m.setClientLocked(ci)
	return nil
}

// setClientLocked records ci's client id as its connection's, replacing
// the id the connection used before.
func (m *ProducerManager) setClientLocked(ci ClientInfo) {
	if old, ok := m.clientOf[ci.Conn]; ok && old != ci.ClientID && m.byClient[old] == ci.Conn {
		delete(m.byClient, old)
	}
	m.clientOf[ci.Conn] = ci.ClientID
	m.byClient[ci.ClientID] = ci.Conn
}

func (m *ProducerManager) unregister(group string, conn *remoting.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(group, conn)
}

func (m *ProducerManager) removeLocked(group string, conn *remoting.Conn) {
	g := m.groups[group]
	if g[conn] != nil {
		if m.perConn[conn]--; m.perConn[conn] <= 0 {
			delete(m.perConn, conn)
			if id := m.clientOf[conn]; m.byClient[id] == conn {
				delete(m.byClient, id)
			}
			delete(m.clientOf, conn)
		}
	}
	delete(g, conn)
	if len(g) == 0 {
		delete(m.groups, group)
	}
}

func (m *ProducerManager) removeConn(conn *remoting.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, g := range m.groups {
		if g[conn] != nil {
			m.removeLocked(name, conn)
		}
	}
	if id, ok := m.clientOf[conn]; ok { // learned from a request only (reply.go)
		if m.byClient[id] == conn {
			delete(m.byClient, id)
		}
		delete(m.clientOf, conn)
	}
}

// expire drops entries not refreshed since deadline and returns their
// connections.
func (m *ProducerManager) expire(deadline time.Time) []*remoting.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*remoting.Conn
	for name, g := range m.groups {
		for conn, ci := range g {
			if ci.LastUpdate.Before(deadline) {
				out = append(out, conn)
				m.removeLocked(name, conn)
			}
		}
	}
	return out
}

// Clients returns the group's connections, sorted by client id.
func (m *ProducerManager) Clients(group string) []ClientInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]ClientInfo, 0, len(m.groups[group]))
	for _, ci := range m.groups[group] {
		out = append(out, *ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// AvailableConn returns one open connection of the group (nil if none),
// e.g. for CHECK_TRANSACTION_STATE.
func (m *ProducerManager) AvailableConn(group string) *remoting.Conn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for conn := range m.groups[group] {
		if !conn.Closed() {
			return conn
		}
	}
	return nil
}

// FindConn returns the open connection of the producer client clientID
// (nil if none): Java's ProducerManager.findChannel, used to push replies.
// The table holds one entry per registered connection, so it is bounded
// like the registrations.
func (m *ProducerManager) FindConn(clientID string) *remoting.Conn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c := m.byClient[clientID]; c != nil && !c.Closed() {
		return c
	}
	return nil
}

// learn records conn as client id's connection unless it already is
// (learnRequester, reply.go).
func (m *ProducerManager) learn(id string, conn *remoting.Conn) {
	m.mu.RLock()
	known := m.clientOf[conn] == id && m.byClient[id] == conn
	m.mu.RUnlock()
	if known {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !conn.Closed() { // a closed connection's entries are already gone
		// id may alias a recycled request's properties (protocol.Command.Recycle).
		m.setClientLocked(ClientInfo{Conn: conn, ClientID: strings.Clone(id)})
	}
}

// Groups returns the producer group names, sorted.
func (m *ProducerManager) Groups() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.groups))
}

// handleHeartbeat is HEART_BEAT (34).
func (b *Broker) handleHeartbeat(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	hb, err := protocol.DecodeHeartbeatData(req.Body)
	if err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, "bad heartbeat body: "+err.Error())
	}
	if err := checkHeartbeatGroups(hb); err != nil { // before anything is registered or created (limits.go)
		return b.refuse(req, "groupName", protocol.ResponseSystemError, err.Error())
	}
	ci := ClientInfo{Conn: conn, ClientID: hb.ClientID, Language: req.Language, Version: req.Version,
		LastUpdate: time.Now()}
	for i := range hb.ConsumerDataSet {
		b.heartbeatConsumer(ci, &hb.ConsumerDataSet[i])
	}
	var refused error
	for _, p := range hb.ProducerDataSet {
		if p.GroupName != "" {
			if err := b.producers.register(p.GroupName, ci); err != nil && refused == nil {
				refused = fmt.Errorf("producer group %s not registered: %w", clip(p.GroupName), err)
			}
		}
	}
	if conn.Closed() {
		// The close hook may have run before this registration: undo it so
		// a dead connection is never listed (closeWith marks the
		// connection closed before running the hook).
		b.clientClosed(conn)
	}
	if refused != nil { // the rest of the heartbeat is registered
		return b.refuse(req, errors.Unwrap(refused).Error(), protocol.ResponseSystemError, fmt.Sprintf(
			"%v (maxProducerGroups %d, maxProducerGroupsPerConnection %d)", refused,
			b.conf().MaxProducerGroups, b.conf().MaxProducerGroupsPerConnection))
	}
	return protocol.NewResponse(req, protocol.ResponseSuccess, "")
}

// heartbeatConsumer registers one consumer group of a heartbeat: group
// config (auto-created), retry topic, channel and subscriptions.
func (b *Broker) heartbeatConsumer(ci ClientInfo, data *protocol.ConsumerData) {
	group := data.GroupName
	if group == "" {
		return
	}
	cfg, ok, err := b.groups.Get(group)
	if err != nil {
		b.limits.hit(b, "autoCreateSubscriptionGroupMaxCount", "heartbeat group "+group+" not created: "+err.Error(), nil)
	}
	if !ok {
		// Not registered either (Java registers it): its pulls are refused
		// anyway, and the consumer table would otherwise grow with every
		// made-up group name a connection sends, past the group cap.
		// Rate-bounded: one heartbeat may carry thousands of groups.
		b.limits.hit(b, "unknownHeartbeatGroup", "heartbeat from an unknown subscription group "+group+
			" (autoCreateSubscriptionGroup="+strconv.FormatBool(b.conf().AutoCreateSubscriptionGroup)+"), client "+clip(ci.ClientID), nil)
		return
	}
	b.createRetryTopic(group, cfg.RetryQueueNums)
	changed, conns := b.consumers.register(ci, data)
	if changed && cfg.NotifyConsumerIdsChangedEnable {
		b.notifyConsumerIdsChanged(group, conns)
	}
}

// createRetryTopic creates %RETRY%<group> (perm RW) when missing; the
// topic manager re-registers with the nameservers.
func (b *Broker) createRetryTopic(group string, queues int32) {
	topic := RetryGroupPrefix + group
	if ValidTopic(topic) != nil {
		b.log.Warn("broker: consumer group name not usable in a retry topic", "group", group)
		return
	}
	if _, ok := b.topics.Get(topic); ok {
		return
	}
	if _, err := b.topics.CreateIfMissing(topic, queues, protocol.PermRead|protocol.PermWrite); err != nil {
		b.limits.hit(b, "autoCreateTopicMaxCount", "retry topic "+topic+" not created: "+err.Error(), nil)
	}
}

// notifyConsumerIdsChanged sends NOTIFY_CONSUMER_IDS_CHANGED (40, oneway)
// to every given connection of group, when the broker allows it.
func (b *Broker) notifyConsumerIdsChanged(group string, conns []*remoting.Conn) {
	if !b.conf().NotifyConsumerIdsChanged {
		return
	}
	for _, c := range conns {
		cmd := protocol.NewRequest(protocol.NotifyConsumerIdsChanged, &protocol.ConsumerGroupHeader{ConsumerGroup: group})
		if err := c.InvokeOneway(cmd); err != nil {
			b.log.Debug("broker: notify consumer ids changed failed", "group", group, "remote", c.RemoteAddrString(), "err", err)
		}
	}
}

// handleUnregisterClient is UNREGISTER_CLIENT (35): removes this
// connection from the named groups.
func (b *Broker) handleUnregisterClient(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.UnregisterClientRequestHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	}
	if h.ProducerGroup != "" {
		b.producers.unregister(h.ProducerGroup, conn)
	}
	if h.ConsumerGroup != "" {
		notify := true
		if cfg, ok := b.groups.Lookup(h.ConsumerGroup); ok {
			notify = cfg.NotifyConsumerIdsChangedEnable
		}
		if rest, ok := b.consumers.unregister(h.ConsumerGroup, conn); ok && notify {
			b.notifyConsumerIdsChanged(h.ConsumerGroup, rest)
		}
	}
	return protocol.NewResponse(req, protocol.ResponseSuccess, "")
}

// handleGetConsumerList is GET_CONSUMER_LIST_BY_GROUP (38).
func (b *Broker) handleGetConsumerList(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ConsumerGroupHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	}
	ids := b.consumers.ClientIDs(h.ConsumerGroup)
	if len(ids) == 0 {
		return protocol.NewResponse(req, protocol.ResponseSystemError, "no consumer for this group, "+h.ConsumerGroup)
	}
	body, err := (&protocol.GetConsumerListByGroupResponseBody{ConsumerIDList: ids}).Encode()
	return bodyResponse(req, body, err)
}

// consumerConnection is the ConsumerConnection body of code 203.
type consumerConnection struct {
	ConnectionSet     []connectionInfo                     `json:"connectionSet"`
	ConsumeFromWhere  string                               `json:"consumeFromWhere"`
	ConsumeType       string                               `json:"consumeType"`
	MessageModel      string                               `json:"messageModel"`
	SubscriptionTable map[string]protocol.SubscriptionData `json:"subscriptionTable"`
}

type connectionInfo struct {
	ClientAddr string `json:"clientAddr"`
	ClientID   string `json:"clientId"`
	Language   string `json:"language"`
	Version    int16  `json:"version"`
}

// handleGetConsumerConnectionList is GET_CONSUMER_CONNECTION_LIST (203).
func (b *Broker) handleGetConsumerConnectionList(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	var h protocol.ConsumerGroupHeader
	if err := h.Decode(req.ExtFields); err != nil {
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	}
	info, ok := b.consumers.Group(h.ConsumerGroup)
	if !ok || len(info.Clients) == 0 {
		return protocol.NewResponse(req, protocol.ResponseConsumerNotOnline, "the consumer group not online")
	}
	cc := consumerConnection{ConsumeFromWhere: info.ConsumeFromWhere, ConsumeType: info.ConsumeType,
		MessageModel: info.MessageModel, SubscriptionTable: info.Subscriptions}
	for _, ci := range info.Clients {
		cc.ConnectionSet = append(cc.ConnectionSet, connectionInfo{ClientAddr: ci.Conn.RemoteAddrString(),
			ClientID: ci.ClientID, Language: ci.Language, Version: ci.Version})
	}
	body, err := json.Marshal(cc)
	return bodyResponse(req, body, err)
}

// clientClosed is the server's OnClose hook: the connection leaves every
// group and the remaining consumers are notified.
func (b *Broker) clientClosed(conn *remoting.Conn) {
	for group, rest := range b.consumers.removeConn(conn) {
		b.notifyConsumerIdsChanged(group, rest)
	}
	b.producers.removeConn(conn)
}

// housekeepingLoop drops clients not heard from for ChannelExpiredTimeout
// (closing their connections) and expired queue locks, every
// ClientScanInterval.
func (b *Broker) housekeepingLoop(stop <-chan struct{}) {
	t := time.NewTicker(b.cfg.ClientScanInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			b.expireClients(now)
			b.locks.expire(now)
		}
	}
}

func (b *Broker) expireClients(now time.Time) {
	deadline := now.Add(-b.cfg.ChannelExpiredTimeout)
	expired, notify := b.consumers.expire(deadline)
	expired = append(expired, b.producers.expire(deadline)...)
	for group, rest := range notify {
		b.notifyConsumerIdsChanged(group, rest)
	}
	for _, c := range expired {
		b.log.Info("broker: client channel expired, closing it", "remote", c.RemoteAddrString(),
			"timeout", b.cfg.ChannelExpiredTimeout)
		c.Close() // its other registrations go through clientClosed
	}
}
