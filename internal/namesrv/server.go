package namesrv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Defaults (facts §17.2, §17.6).
const (
	DefaultAddr         = ":9876"
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
	s.remote = remoting.NewServer(remoting.ServerConfig{
		Addr: cfg.Addr, Listener: cfg.Listener, Logger: cfg.Logger,
	})
	s.registerHandlers()
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
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.scanExpired(now)
		}
	}
}

// scanExpired removes brokers not refreshed within BrokerExpiry, then
// closes their connections (which may remove further brokers registered
// through the same connection, via onConnClosed).
func (s *Server) scanExpired(now time.Time) {
	for _, g := range s.routes.expire(now, s.cfg.BrokerExpiry) {
		s.log.Warn("namesrv: broker expired", "broker_addr", g.addr,
			"last_update", g.last, "expiry", s.cfg.BrokerExpiry)
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
