package namesrv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Defaults (Java's BrokerHousekeepingService and NettyServerConfig).
const (
	DefaultAddr         = ":9876"
	DefaultMaxQueueNums = 1 << 16
	DefaultBrokerExpiry = 120 * time.Second
	DefaultScanInterval = 10 * time.Second
)

// Config configures a nameserver. Zero values take the defaults.
type Config struct {
	// Addr is the listen address (default ":9876"); ignored when Listener
	// is set.
	Addr string
	// Listener, if set, is served instead of listening on Addr.
	Listener net.Listener
	// BrokerExpiry removes a broker not refreshed (REGISTER_BROKER or an
	// unchanged QUERY_DATA_VERSION) for this long (default 120 s).
	BrokerExpiry time.Duration
	// ScanInterval is the period of the expiry scan (default 10 s).
	ScanInterval time.Duration
	// OrderMessageEnable adds orderTopicConf (KV namespace
	// ORDER_TOPIC_CONFIG, keyed by topic) to route answers.
	OrderMessageEnable bool
	// KVConfigPath, if set, is the JSON file the KV config table is loaded
	// from by New and written to on every change.
	KVConfigPath string
	// ConfigStorePath, if set, is the .properties file UPDATE_NAMESRV_CONFIG
	// merges its keys into and New applies over this Config
	// (config_admin.go).
	ConfigStorePath string
	// ACLFile, if set, is a plain_acl.yml whose admin accounts alone may
	// send the admin-only requests (acl.go); ACLReloadInterval is how
	// often it is checked for changes (default 5 s).
	ACLFile           string
	ACLReloadInterval time.Duration
	// MaxKVEntries caps the KV table (all namespaces; default 4096) and
	// MaxKVEntryBytes one namespace+key+value (default 4 KiB; an
	// ORDER_TOPIC_CONFIG value is "brokerName:queues;..."): a PUT_KV_CONFIG
	// beyond either is refused, so clients cannot grow the table and its
	// file beyond 16 MiB.
	MaxKVEntries    int
	MaxKVEntryBytes int
	// MaxQueueNums caps the read and write queue numbers a registration
	// may advertise in routes (default 65536).
	MaxQueueNums int
	// MaxRegisterTopics caps the topic entries one REGISTER_BROKER may
	// carry (default protocol.DefaultMaxRegisterTopics, 200000); the
	// compressed body may inflate to 256 bytes per allowed topic. Beyond
	// either, the registration is refused and the broker's last one kept.
	MaxRegisterTopics int
	// Logger receives registration and removal events (default
	// slog.Default()).
	Logger *slog.Logger
}

// Server is a running (or startable) nameserver.
type Server struct {
	cfg    Config
	log    *slog.Logger
	remote *remoting.Server
	routes *routeInfo
	kv     *kvStore
	acl    *acl.Watcher // acl.go; nil without ACLFile
	// live is the configuration handlers read; UPDATE_NAMESRV_CONFIG
	// replaces it under cfgMu (config_admin.go).
	live  atomic.Pointer[Config]
	cfgMu sync.Mutex

	mu       sync.Mutex // guards started, stopped, the channels below
	started  bool
	stopped  bool
	stopScan chan struct{}
	scanDone chan struct{}
}

// New builds a nameserver, loading the KV config file when one is set.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.BrokerExpiry <= 0 {
		cfg.BrokerExpiry = DefaultBrokerExpiry
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxKVEntries <= 0 {
		cfg.MaxKVEntries = DefaultMaxKVEntries
	}
	if cfg.MaxKVEntryBytes <= 0 {
		cfg.MaxKVEntryBytes = DefaultMaxKVEntryBytes
	}
	if cfg.MaxQueueNums <= 0 {
		cfg.MaxQueueNums = DefaultMaxQueueNums
	}
	if cfg.MaxRegisterTopics <= 0 {
		cfg.MaxRegisterTopics = protocol.DefaultMaxRegisterTopics
	}
	if err := loadStoredConfig(&cfg); err != nil { // config_admin.go
		return nil, err
	}
	kv, err := loadKV(cfg.KVConfigPath)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "namesrv"),
		routes: newRouteInfo(),
		kv:     kv,
	}
	s.live.Store(&cfg)
	s.remote = remoting.NewServer(remoting.ServerConfig{
		Addr: cfg.Addr, Listener: cfg.Listener, Logger: cfg.Logger,
	})
	s.registerHandlers()
	if err := s.initACL(); err != nil { // acl.go
		return nil, err
	}
	s.remote.OnClose(s.onConnClosed)
	return s, nil
}

// Start listens and starts the expiry scan.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return errors.New("namesrv: already started or shut down")
	}
	if err := s.remote.Start(); err != nil {
		return err
	}
	s.started = true
	s.stopScan, s.scanDone = make(chan struct{}), make(chan struct{})
	go s.scanLoop(s.stopScan, s.scanDone)
	s.startACLReload(s.stopScan) // acl.go
	s.log.Info("namesrv: listening", "addr", s.Addr())
	return nil
}

// Addr is the listening address ("" before Start).
func (s *Server) Addr() string {
	a := s.remote.Addr()
	if a == nil {
		return ""
	}
	return a.String()
}

// Shutdown stops the expiry scan and shuts the remoting server down (see
// remoting.Server.Shutdown). It may be called once; later calls return
// nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	started, stop, done := s.started, s.stopScan, s.scanDone
	s.mu.Unlock()
	if started {
		close(stop)
		<-done
	}
	return s.remote.Shutdown(ctx)
}

// TopicRoute returns what GET_ROUTEINFO_BY_TOPIC would answer for topic
// (without orderTopicConf), false for TOPIC_NOT_EXIST.
func (s *Server) TopicRoute(topic string) (*protocol.TopicRouteData, bool) {
	return s.routes.route(topic)
}

// ClusterInfo returns a copy of the cluster and broker tables.
func (s *Server) ClusterInfo() *protocol.ClusterInfo { return s.routes.clusterInfo() }

// scanLoop removes expired brokers every ScanInterval until stop closes.
func (s *Server) scanLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := s.conf().ScanInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.scanExpired(now)
			if d := s.conf().ScanInterval; d != every { // updated (config_admin.go)
				every = d
				t.Reset(d)
			}
		}
	}
}

// scanExpired removes brokers not refreshed within BrokerExpiry, then
// closes their connections (which may remove further brokers registered
// through the same connection, via onConnClosed).
func (s *Server) scanExpired(now time.Time) {
	expiry := s.conf().BrokerExpiry
	for _, g := range s.routes.expire(now, expiry) {
		s.log.Warn("namesrv: broker expired", "broker_addr", g.addr,
			"last_update", g.last, "expiry", expiry)
		if g.conn != nil {
			g.conn.Close()
		}
	}
}

// onConnClosed removes the brokers registered through c.
func (s *Server) onConnClosed(c *remoting.Conn) {
	for _, addr := range s.routes.removeByConn(c) {
		s.log.Info("namesrv: broker connection closed, broker removed",
			"broker_addr", addr, "remote", c.RemoteAddrString())
	}
}
