package namesrv

import (
	"context"

	"github.com/mqd/mqd/internal/acl"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// initACL, when Config.ACLFile is set, loads it and guards the admin-only
// requests (acl.AdminOnly: broker registration and unregistration, KV
// config writes, topic deletion, broker write-permission changes, namesrv
// config updates) with the plain ACL check: they need a signed request
// from an admin account or a white-listed address. A Java 4.9 broker
// registers unsigned, so its address must be white-listed
// (globalWhiteRemoteAddresses or its account's whiteRemoteAddress); a
// Java 5.3+ broker and mqd's sign with innerClientAuthenticationCredentials.
// Every other request is served as without ACL, like the Java nameserver,
// which has none: clients read routes unsigned.
func (s *Server) initACL() error {
	if s.cfg.ACLFile == "" {
		return nil
	}
	w, err := acl.NewWatcher(s.cfg.ACLFile, s.log)
	if err != nil {
		return err
	}
	s.acl = w
	gate := acl.NewGate(w.Validator(), s.log, acl.AdminOnly)
	s.remote.SetGuard(func(_ context.Context, conn *remoting.Conn, req *protocol.Command) *protocol.Command {
		return gate.Check(req, conn.RemoteAddrString())
	})
	return nil
}

// startACLReload polls the ACL file until stop closes. The goroutine only
// reads the file, so Shutdown does not wait for it.
func (s *Server) startACLReload(stop <-chan struct{}) {
	if s.acl != nil {
		go s.acl.Run(stop, s.cfg.ACLReloadInterval)
	}
}
