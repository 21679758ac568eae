package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// ACLConfig enables RocketMQ's plain ACL on the broker (SECURITY.md).
type ACLConfig struct {
	// Enable is broker.conf aclEnable (default false). Read at start, as
	// in Java.
	Enable bool
	// File is broker.conf aclFile (mqd's key; Java has a fixed path).
	// Default: DefaultACLFile.
	File string
	// ReloadInterval is how often the file is checked for changes
	// (default 5 s, as Java's AclFileWatchService).
	ReloadInterval time.Duration
	// Inner is broker.conf innerClientAuthenticationCredentials (Java
	// 5.3's key, JSON {"accessKey":…,"secretKey":…}): when set, the
	// broker signs its own requests to nameservers and to its master
	// (REGISTER_BROKER, UNREGISTER_BROKER, a slave's syncs) as Java's
	// AclClientRPCHook does. A nameserver with --namesrv-acl accepts
	// registrations only from an admin account or a white-listed address.
	Inner Credentials
}

// Credentials is an access key and its secret key.
type Credentials struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

// parseCredentials reads Java's SessionCredentials JSON; empty is none.
func parseCredentials(v string, c *Credentials) error {
	*c = Credentials{}
	if strings.TrimSpace(v) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(v), c); err != nil {
		return fmt.Errorf("innerClientAuthenticationCredentials: %w", err)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return errors.New("innerClientAuthenticationCredentials: accessKey and secretKey are both needed")
	}
	return nil
}

// signOuter signs a request the broker sends to a nameserver or its
// master with the inner-client credentials, if any (Java's
// AclClientRPCHook: AccessKey added, then the signature over the sorted
// ext field values and the body).
func (b *Broker) signOuter(req *protocol.Command) *protocol.Command {
	c := b.cfg.ACL.Inner
	if c.AccessKey == "" {
		return req
	}
	req.SetExt(acl.FieldAccessKey, c.AccessKey)
	req.SetExt(acl.FieldSignature, acl.Sign(c.SecretKey, req.ExtFields, req.Body))
	return req
}

// DefaultACLFile is where the broker looks for plain_acl.yml when aclFile
// is not set: $ROCKETMQ_HOME/conf/plain_acl.yml as the Java broker does
// when ROCKETMQ_HOME is set, else conf/plain_acl.yml beside the store
// directory (~/mqd/conf/plain_acl.yml for the default ~/mqd/store).
func DefaultACLFile(storeDir string) string {
	if home := os.Getenv("ROCKETMQ_HOME"); home != "" {
		return filepath.Join(home, "conf", "plain_acl.yml")
	}
	return filepath.Join(filepath.Dir(filepath.Clean(storeDir)), "conf", "plain_acl.yml")
}

// startACL loads the ACL file, installs the check in front of every
// handler and starts the reload loop. It runs before the server accepts
// connections, so no request escapes the check.
func (b *Broker) startACL() error {
	c := b.cfg.ACL
	if !c.Enable {
		return nil
	}
	path := c.File
	if path == "" {
		path = DefaultACLFile(b.cfg.Store.Dir)
	}
	w, err := acl.NewWatcher(path, b.log)
	if err != nil {
		return err
	}
	gate := acl.NewGate(w.Validator(), b.log, nil)
	b.aclGate = gate
	b.server.SetGuard(func(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
		return gate.Check(req, conn.RemoteAddrString())
	})
	b.goLoop(func(stop <-chan struct{}) { w.Run(stop, c.ReloadInterval) })
	b.log.Info("acl enabled", "file", path)
	return nil
}

// aclFound checks, with ACL on, a request whose topic is known only after
// the record was read (VIEW_MESSAGE_BY_ID): SUB on topic. nil: allowed.
func (b *Broker) aclFound(conn *remoting.Conn, req *protocol.Command, topic string) *protocol.Command {
	if b.aclGate == nil {
		return nil
	}
	return b.aclGate.CheckFound(req, conn.RemoteAddrString(), acl.Need{Resource: topic, Perm: acl.Sub})
}

// aclRecheck checks, with ACL on, a parked pull again before it is
// re-executed: the file may have been reloaded since it was admitted, and
// a pull may stay parked for its whole suspend time. nil: allowed. A
// parked pull has dropped its body, so one that was signed with a body
// (no real client sends one) is refused here.
func (b *Broker) aclRecheck(conn *remoting.Conn, req *protocol.Command) *protocol.Command {
	if b.aclGate == nil {
		return nil
	}
	return b.aclGate.Check(req, conn.RemoteAddrString())
}
