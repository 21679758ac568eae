package acl

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// Gate is the per-request check a server runs before its handlers: it
// answers a refused request as the Java broker does and logs refusals,
// at most one line per second so a client retrying a refused request
// cannot flood the log.
type Gate struct {
	v    *Validator
	log  *slog.Logger
	only func(code int16) bool

	lastLog    atomic.Int64 // unix nanos of the last refusal logged
	suppressed atomic.Int64 // refusals not logged since then
}

// NewGate checks every request with v, or only those for which only
// reports true when only is not nil (the nameserver checks admin-only
// codes).
func NewGate(v *Validator, log *slog.Logger, only func(code int16) bool) *Gate {
	if log == nil {
		log = slog.Default()
	}
	return &Gate{v: v, log: log, only: only}
}

// Check returns nil when req from remote ("ip:port") may run, else the
// response to send: SYSTEM_ERROR with the AclException remark (Java's PlainAccessValidator).
func (g *Gate) Check(req *protocol.Command, remote string) *protocol.Command {
	if g.only != nil && !g.only(req.Code) {
		return nil
	}
	client, _ := ClientAddr(remote)
	return g.answer(req, remote, g.v.Check(req, client))
}

// answer is nil for a nil err, else the refusal (logged, rate-bounded).
func (g *Gate) answer(req *protocol.Command, remote string, err error) *protocol.Command {
	if err == nil {
		return nil
	}
	g.logRefusal(req, remote, err)
	remark := err.Error()
	if d, ok := err.(*Denied); ok {
		remark = d.Remark()
	}
	return protocol.NewResponse(req, protocol.ResponseSystemError, remark)
}

func (g *Gate) logRefusal(req *protocol.Command, remote string, err error) {
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if now-last < int64(time.Second) || !g.lastLog.CompareAndSwap(last, now) {
		g.suppressed.Add(1)
		return
	}
	g.log.Warn("acl: request refused", "code", req.Code, "remote", remote, "err", err,
		"refusedUnlogged", g.suppressed.Swap(0))
}

// CheckFound is Validator.CheckFound answered as Check answers: nil, or
// the SYSTEM_ERROR response with the AclException remark.
func (g *Gate) CheckFound(req *protocol.Command, remote string, need Need) *protocol.Command {
	client, _ := ClientAddr(remote)
	return g.answer(req, remote, g.v.CheckFound(req, client, need))
}
