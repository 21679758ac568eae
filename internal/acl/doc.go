// Package acl is RocketMQ's plain ACL (the 4.9.7 acl module's
// PlainAccessValidator and PlainPermissionManager): accounts
// with secret keys, white-listed client addresses, an admin flag and
// per-topic and per-group permissions, read from plain_acl.yml
// (FORMAT.md), and the check every request passes before its handler runs.
//
// The package is pure: it knows requests only through internal/protocol,
// and the transport is the caller's (internal/broker, internal/namesrv).
//
//   - config.go parses the YAML file into an immutable Table;
//   - addr.go matches client addresses against Java's address patterns;
//   - sign.go computes and verifies the HmacSHA1 request signature;
//   - resources.go names the topics and groups each request code needs;
//   - validator.go applies Java's validation order and builds the
//     AclException remark the client sees;
//   - gate.go turns a refusal into the response and a rate-limited log
//     line, for the servers' request guard;
//   - watch.go reloads the file when its modification time or size
//     changes, keeping the last good table when a new one is invalid.
package acl
