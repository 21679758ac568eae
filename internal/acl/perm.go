package acl

import "strings"

// Perm is a permission bit set (the Java Permission class).
type Perm byte

// Permission bits.
const (
	Deny Perm = 1      // refuses whatever else is set
	Any  Perm = 1 << 1 // needed: PUB or SUB will do
	Pub  Perm = 1 << 2
	Sub  Perm = 1 << 3
)

// ParsePerm reads a permission string as Java does: DENY, PUB, SUB,
// PUB|SUB or SUB|PUB after trimming; anything else (an empty string
// included) is DENY. ok reports whether s was one of the known strings.
func ParsePerm(s string) (p Perm, ok bool) {
	switch strings.TrimSpace(s) {
	case "PUB":
		return Pub, true
	case "SUB":
		return Sub, true
	case "PUB|SUB", "SUB|PUB":
		return Pub | Sub, true
	case "DENY":
		return Deny, true
	}
	return Deny, false
}

// Allows reports whether an account owning p may do what needed asks
// (Permission.checkPermission).
func (p Perm) Allows(needed Perm) bool {
	if p&Deny != 0 {
		return false
	}
	if needed&Any != 0 {
		return p&(Pub|Sub) != 0
	}
	return needed&p != 0
}

func (p Perm) String() string {
	switch {
	case p&Deny != 0:
		return "DENY"
	case p&(Pub|Sub) == Pub|Sub:
		return "PUB|SUB"
	case p&Pub != 0:
		return "PUB"
	case p&Sub != 0:
		return "SUB"
	case p&Any != 0:
		return "ANY"
	}
	return "NONE"
}
