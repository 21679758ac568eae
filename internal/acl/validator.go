package acl

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/mqd/mqd/internal/protocol"
)

// ExceptionClass prefixes every denial remark, as the Java broker's
// RemotingHelper.exceptionSimpleDesc prints an AclException.
const ExceptionClass = "org.apache.rocketmq.acl.common.AclException"

// Where a 4.9.7 broker throws each denial; the remark ends with this
// stack frame, so mqd's remarks read exactly like the Java broker's.
const (
	frameParse     = "org.apache.rocketmq.acl.plain.PlainAccessValidator.parse(PlainAccessValidator.java:134)"
	frameNoKey     = "org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:663)"
	frameNoAccount = "org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:667)"
	frameSignature = "org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:683)"
	frameAdmin     = "org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:580)"
	frameDefault   = "org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:605)"
	frameListed    = "org.apache.rocketmq.acl.plain.PlainPermissionManager.checkPerm(PlainPermissionManager.java:610)"
)

// Denied is a refused request. The broker answers it with SYSTEM_ERROR
// (code 1) and Remark() (Java's PlainAccessValidator).
type Denied struct {
	Msg   string // the AclException message, e.g. "No accessKey is configured"
	frame string
}

func (d *Denied) Error() string { return "acl: " + d.Msg }

// Remark is the response remark a 4.9.7 broker sends for this denial.
func (d *Denied) Remark() string { return ExceptionClass + ": " + d.Msg + ", " + d.frame }

func deny(frame, format string, args ...any) *Denied {
	return &Denied{Msg: fmt.Sprintf(format, args...), frame: frame}
}

// Validator checks requests against the current Table; the table can be
// swapped at any time (hot reload) without stopping requests.
type Validator struct {
	table atomic.Pointer[Table]
}

// NewValidator returns a validator using t.
func NewValidator(t *Table) *Validator {
	v := &Validator{}
	v.table.Store(t)
	return v
}

// Table is the table in use.
func (v *Validator) Table() *Table { return v.table.Load() }

// SetTable replaces the table; requests checked afterwards use it.
func (v *Validator) SetTable(t *Table) { v.table.Store(t) }

// Check applies the 4.9.7 validation order (Java's PlainPermissionManager.validate) to req from the
// client address client (invalid if unknown: then no white list matches).
// It returns nil or a *Denied.
func (v *Validator) Check(req *protocol.Command, client netip.Addr) error {
	need, err := Needs(req)
	if err != nil {
		return deny(frameParse, "%s", err.Error())
	}
	t := v.table.Load()
	if client.IsValid() {
		for _, p := range t.GlobalWhite {
			if p.Match(client) {
				return nil
			}
		}
	}
	ak, ok := req.ExtFields[FieldAccessKey]
	if !ok {
		return deny(frameNoKey, "No accessKey is configured")
	}
	acct := t.Accounts[ak]
	if acct == nil {
		return deny(frameNoAccount, "No acl config for %s", ak)
	}
	if client.IsValid() && acct.White.Match(client) {
		return nil
	}
	if !signatureMatches(acct.SecretKey, req.ExtFields[FieldSignature], req.ExtFields, req.Body) {
		return deny(frameSignature, "Check signature failed for accessKey=%s", ak)
	}
	for _, n := range need {
		if n.Resource == TraceTopic && n.Perm == Pub {
			return nil
		}
	}
	return acct.permits(req.Code, need)
}

// permits is PlainPermissionManager.checkPerm.
func (a *Account) permits(code int16, need []Need) error {
	if AdminOnly(code) && !a.Admin {
		return deny(frameAdmin, "Need admin permission for request code=%d, but accessKey=%s is not", code, a.AccessKey)
	}
	if len(need) == 0 || (a.Admin && len(a.Perms) == 0) {
		return nil
	}
	for _, n := range need {
		owned, listed := a.Perms[n.Resource]
		frame := frameListed
		if !listed {
			owned, frame = a.DefaultTopicPerm, frameDefault
			if n.IsGroup() {
				owned = a.DefaultGroupPerm
			}
		}
		if !owned.Allows(n.Perm) {
			if n.IsGroup() {
				return deny(frame, "No default permission for group:%s", n.Resource[len(RetryPrefix):])
			}
			return deny(frame, "No default permission for topic:%s", n.Resource)
		}
	}
	return nil
}

// CheckFound checks a request whose resource is known only after the
// broker read it (VIEW_MESSAGE_BY_ID: the topic of the record at an
// offset) against need. The request has passed Check (its signature
// included); white-listed clients and admin accounts without permission
// lists pass as in Check. It returns nil or a *Denied.
func (v *Validator) CheckFound(req *protocol.Command, client netip.Addr, need Need) error {
	t := v.table.Load()
	if client.IsValid() {
		for _, p := range t.GlobalWhite {
			if p.Match(client) {
				return nil
			}
		}
	}
	ak := req.ExtFields[FieldAccessKey]
	acct := t.Accounts[ak]
	if acct == nil { // removed by a reload since Check
		return deny(frameNoAccount, "No acl config for %s", ak)
	}
	if client.IsValid() && acct.White.Match(client) {
		return nil
	}
	return acct.permits(req.Code, []Need{need})
}
