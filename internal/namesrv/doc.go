// Package namesrv is mqd's nameserver: the route registry RocketMQ 4.x
// brokers register with and clients (Go v2.1.2, Java 4.x) resolve topics
// through, speaking the remoting protocol on port 9876 (Java's namesrv DefaultRequestProcessor and namesrv RouteInfoManager).
//
// A nameserver holds no state of its own apart from what brokers register
// (and the optional KV config file): several run side by side, each broker
// registers with every one of them, and a client may ask any.
//
// # State
//
// routeInfo (routeinfo.go) is Java's RouteInfoManager: the
// cluster → brokerNames, brokerName → addresses by brokerId, topic →
// brokerName → QueueData, and brokerAddr → liveness (last registration,
// topic-config DataVersion, HA address, the registering connection)
// tables, all guarded by one sync.RWMutex. Route, cluster and topic-list
// queries take the read lock and copy what they return; registration,
// removal, topic deletion and permission changes take the write lock. No
// I/O happens under that lock: connections of expired brokers are closed
// after it is released.
//
// kvStore (kvconfig.go) is the namespace → key → value config table
// (ORDER_TOPIC_CONFIG etc.) behind its own sync.RWMutex. When
// Config.KVConfigPath is set, every change is written to that file (temp
// file + fsync + rename) while the KV lock is held, so the file always
// matches some state the table was in. The two locks are never held
// together.
//
// # Goroutines
//
//   - remoting.Server's accept loop and, per connection, its read loop and
//     writer (see internal/remoting). Request handlers (handlers.go) run on
//     the per-request goroutines remoting starts; they own nothing and
//     share routeInfo and kvStore through the locks above.
//   - remoting's close path runs onConnClosed when a connection ends: every
//     broker whose live entry was registered through that connection is
//     removed.
//   - the scan goroutine (Server.scanLoop), started by Start and stopped by
//     Shutdown, wakes every Config.ScanInterval, removes brokers whose last
//     REGISTER_BROKER / unchanged QUERY_DATA_VERSION is older than
//     Config.BrokerExpiry, then closes their connections. It owns only its
//     ticker.
//
// # Rules (Java 4.9.7 RouteInfoManager / DefaultRequestProcessor, plus Java 5's master epochs)
//
//   - Only a master (brokerId 0) writes topic queue data, and only on its
//     first registration or when its DataVersion changed; topics are
//     upserted, never removed by a registration.
//   - An address registered under a different brokerId of the same
//     brokerName is dropped first (slave → master switch).
//   - Master epochs (Java 5 RouteInfoManager): a registration for a
//     brokerId of its brokerName that another live address holds with a
//     higher topic-config DataVersion.stateVersion is ignored: nothing
//     of it is applied, its address's id stays as it was, the address
//     loses its liveness when it holds no id at all (as Java drops it)
//     and is not refreshed otherwise. The answer is SUCCESS without a
//     master address, as in Java 5, with a remark starting with
//     protocol.RemarkStaleRegistration. Equal or lower replaces the
//     holder. Controller-mode masters register their master epoch there;
//     4.x brokers send none (0), so among them nothing is ever ignored.
//     stateVersions are compared as int64; a value beyond makes the body
//     undecodable. The holder leaving (unregister, expiry, its connection
//     closing) frees the id.
//   - When an address goes (expiry, close, UNREGISTER_BROKER) it leaves its
//     brokerName; a brokerName without addresses leaves its cluster and
//     every topic's queue data; a topic without queue data disappears.
//   - Route bodies are written by protocol.TopicRouteData.AppendJSON:
//     compact, quoted integer keys, which both the Go client's splitter and
//     Java's fastjson accept. queueDatas and brokerDatas are sorted by
//     brokerName so answers are deterministic.
package namesrv
