package namesrv

// The nameserver's configuration over the wire, as Java's
// DefaultRequestProcessor serves it:
//
//   - GET_NAMESRV_CONFIG (319) answers the running configuration as
//     .properties text (Configuration.getAllConfigsFormatString).
//   - UPDATE_NAMESRV_CONFIG (318) takes a .properties body
//     (MixAll.string2Properties) and applies it. As in Java, the paths
//     (kvConfigPath, configStorePath) are refused with NO_PERMISSION
//     "Can not update config path"; mqd refuses aclFile the same way and
//     listenPort too (the port is the one the process was started with).
//     Unlike Java, which ignores unknown keys silently, an unknown key or
//     a bad value refuses the whole update with SYSTEM_ERROR naming it, so
//     mqadmin never reports success for a change that was not made.
//
// Every updatable key takes effect at once (the handlers read the live
// configuration, s.live) and is persisted: Java's Configuration.persist
// writes the configuration to configStorePath (~/namesrv/namesrv.properties)
// but never reads it back; mqd merges the updated keys into
// Config.ConfigStorePath, and New applies that file over the configuration
// it is given, so an update survives a restart.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// maxConfigBody bounds an UPDATE_NAMESRV_CONFIG body.
const maxConfigBody = 64 << 10

// updatable are the keys UPDATE_NAMESRV_CONFIG applies, each with how it
// is set on a Config (an error for a bad value).
var updatable = map[string]func(c *Config, v string) error{
	"orderMessageEnable": func(c *Config, v string) (err error) {
		c.OrderMessageEnable, err = strconv.ParseBool(v)
		return err
	},
	"brokerExpiryMillis": func(c *Config, v string) error { return setMillis(&c.BrokerExpiry, v) },
	"scanIntervalMillis": func(c *Config, v string) error { return setMillis(&c.ScanInterval, v) },
	"maxKVEntries":       func(c *Config, v string) error { return setPositive(&c.MaxKVEntries, v) },
	"maxKVEntryBytes":    func(c *Config, v string) error { return setPositive(&c.MaxKVEntryBytes, v) },
	"maxQueueNums":       func(c *Config, v string) error { return setPositive(&c.MaxQueueNums, v) },
	"maxRegisterTopics":  func(c *Config, v string) error { return setPositive(&c.MaxRegisterTopics, v) },
}

// fixedKeys are refused over the wire (NO_PERMISSION, as Java refuses the
// paths).
var fixedKeys = []string{"kvConfigPath", "configStorePath", "aclFile", "listenPort"}

func setPositive(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > math.MaxInt32 {
		return fmt.Errorf("%q is not an integer in 1..%d", v, math.MaxInt32)
	}
	*dst = n
	return nil
}

func setMillis(dst *time.Duration, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > 30*86400*1000 {
		return fmt.Errorf("%q is not a number of milliseconds in 1..%d", v, 30*86400*1000)
	}
	*dst = time.Duration(n) * time.Millisecond
	return nil
}

// applyConfig applies props to c; it names the first bad key.
func applyConfig(props map[string]string, c *Config) error {
	for _, k := range slices.Sorted(maps.Keys(props)) {
		set, ok := updatable[k]
		if !ok {
			return fmt.Errorf("unknown or not updatable config key %s (updatable: %s)",
				k, strings.Join(slices.Sorted(maps.Keys(updatable)), ", "))
		}
		if err := set(c, props[k]); err != nil {
			return fmt.Errorf("config %s: %w", k, err)
		}
	}
	return nil
}

// parseProps reads MixAll.properties2String output: key=value lines,
// '#' comments.
func parseProps(body string) map[string]string {
	props := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return props
}

// loadStoredConfig applies the keys stored by earlier updates to cfg.
func loadStoredConfig(cfg *Config) error {
	if cfg.ConfigStorePath == "" {
		return nil
	}
	data, err := os.ReadFile(cfg.ConfigStorePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	if err := applyConfig(parseProps(string(data)), cfg); err != nil {
		return fmt.Errorf("namesrv: %s: %w", cfg.ConfigStorePath, err)
	}
	return nil
}

// conf is the live configuration.
func (s *Server) conf() *Config { return s.live.Load() }

func (s *Server) handleGetConfig(_ context.Context, _ *remoting.Conn, req *protocol.Command) *protocol.Command {
	c := s.conf()
	port := ""
	if a, ok := s.remote.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	props := map[string]string{
		"listenPort":         port,
		"kvConfigPath":       c.KVConfigPath,
		"configStorePath":    c.ConfigStorePath,
		"orderMessageEnable": strconv.FormatBool(c.OrderMessageEnable),
		"brokerExpiryMillis": strconv.FormatInt(c.BrokerExpiry.Milliseconds(), 10),
		"scanIntervalMillis": strconv.FormatInt(c.ScanInterval.Milliseconds(), 10),
		"maxKVEntries":       strconv.Itoa(c.MaxKVEntries),
		"maxKVEntryBytes":    strconv.Itoa(c.MaxKVEntryBytes),
		"maxQueueNums":       strconv.Itoa(c.MaxQueueNums),
		"maxRegisterTopics":  strconv.Itoa(c.MaxRegisterTopics),
		"aclFile":            c.ACLFile,
	}
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		sb.WriteString(k + "=" + props[k] + "\n")
	}
	resp := success(req)
	resp.Body = []byte(sb.String())
	return resp
}

func (s *Server) handleUpdateConfig(_ context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
	if len(req.Body) > maxConfigBody {
		return protocol.NewResponse(req, protocol.ResponseSystemError,
			fmt.Sprintf("config body of %d bytes exceeds %d", len(req.Body), maxConfigBody))
	}
	props := parseProps(string(req.Body))
	if len(props) == 0 { // Java: no body, nothing to do
		return success(req)
	}
	for _, k := range fixedKeys {
		if _, ok := props[k]; ok {
			s.log.Warn("namesrv: config update refused", "key", k, "remote", c.RemoteAddrString())
			return protocol.NewResponse(req, protocol.ResponseNoPermission, "Can not update config path")
		}
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	next := *s.conf()
	if err := applyConfig(props, &next); err != nil {
		s.log.Warn("namesrv: config update refused", "err", err, "remote", c.RemoteAddrString())
		return protocol.NewResponse(req, protocol.ResponseSystemError, err.Error())
	}
	if err := s.persistConfig(props); err != nil {
		s.log.Error("namesrv: persist config", "path", next.ConfigStorePath, "err", err)
		return protocol.NewResponse(req, protocol.ResponseSystemError, "persist config: "+err.Error())
	}
	s.live.Store(&next)
	s.log.Info("namesrv: config updated", "keys", props, "remote", c.RemoteAddrString())
	return success(req)
}

// persistConfig merges props into ConfigStorePath (temp file, fsync,
// rename). Without a path the update lives until the process exits.
func (s *Server) persistConfig(props map[string]string) error {
	path := s.cfg.ConfigStorePath
	if path == "" {
		return nil
	}
	all := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		all = parseProps(string(data))
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	maps.Copy(all, props)
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(all)) {
		sb.WriteString(k + "=" + all[k] + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	_, err = f.WriteString(sb.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
