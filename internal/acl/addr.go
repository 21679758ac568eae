package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// AddrPattern is one white-list address pattern of plain_acl.yml, with the
// meaning Java's RemoteAddressStrategyFactory gives it:
//
//	""                      matches nothing
//	*  *.*.*.*  *:*:*:*:*:*:*:*   matches everything
//	192.168.1.{1,2,3}       the listed last parts (IPv6: 2001:db8::{1,2})
//	10.0.0.1,10.0.0.2       the listed full addresses
//	10.10.103.*  192.168.1.1-10  10.*.*.*   a range in the first wildcard
//	                        or range part; the parts before it must
//	                        match, the parts after it are not looked at
//	2001:db8:0:0:0:0:0:1-ff an IPv6 range in the last group ('*' may
//	                        only be last, '-' only in the last group or
//	                        the one before a final '*')
//	10.0.0.1  ::1           one address
type AddrPattern struct {
	text  string
	kind  patternKind
	set   []netip.Addr // kindSet, kindOne
	head  []uint16     // kindRange4 (octets), kindRange6 (groups): parts that must be equal
	lo    int          // kindRange*: range of the part after head
	hi    int
	isSix bool
}

type patternKind byte

const (
	kindNone patternKind = iota
	kindAll
	kindSet
	kindRange
)

// String is the pattern as written.
func (p *AddrPattern) String() string { return p.text }

// ParseAddrPattern compiles one pattern; an invalid one is an error, as
// Java's AclException at load.
func ParseAddrPattern(s string) (*AddrPattern, error) {
	p := &AddrPattern{text: s}
	t := strings.TrimSpace(s)
	var err error
	switch {
	case t == "":
		p.kind = kindNone
	case t == "*" || t == "*.*.*.*" || t == "*:*:*:*:*:*:*:*":
		p.kind = kindAll
	case strings.HasSuffix(t, "}"):
		err = p.parseBraces(t)
	case strings.Contains(t, ","):
		err = p.parseList(splitNonEmpty(t, ","))
	case strings.ContainsAny(t, "*-"):
		p.kind = kindRange
		if strings.Contains(t, ":") {
			err = p.parseRange6(t)
		} else {
			err = p.parseRange4(t)
		}
	default:
		err = p.parseList([]string{t})
	}
	if err != nil {
		return nil, fmt.Errorf("address pattern %q: %w", s, err)
	}
	return p, nil
}

// parseBraces handles "prefix{a,b,c}": the last part lists alternatives.
func (p *AddrPattern) parseBraces(t string) error {
	sep := "."
	if strings.Contains(t, ":") {
		sep = ":"
	}
	parts := splitNonEmpty(t, sep)
	if sep == "." && len(parts) < 4 {
		return fmt.Errorf("an IPv4 pattern needs four parts")
	}
	last := parts[len(parts)-1]
	if !strings.HasPrefix(last, "{") {
		return fmt.Errorf("braces must hold the whole last part")
	}
	prefix := t[:strings.Index(t, "{")]
	var full []string
	for _, alt := range splitNonEmpty(last[1:len(last)-1], ",") {
		full = append(full, prefix+strings.TrimSpace(alt))
	}
	return p.parseList(full)
}

func (p *AddrPattern) parseList(addrs []string) error {
	p.kind = kindSet
	for _, a := range addrs {
		ip, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil || ip.Zone() != "" {
			return fmt.Errorf("%q is not an IPv4 or IPv6 address", a)
		}
		p.set = append(p.set, ip.Unmap())
	}
	if len(p.set) == 0 {
		return fmt.Errorf("no address listed")
	}
	return nil
}

// parseRange4 handles a '*' or 'a-b' in one of the last three octets.
func (p *AddrPattern) parseRange4(t string) error {
	parts := splitNonEmpty(t, ".")
	if len(parts) != 4 {
		return fmt.Errorf("an IPv4 pattern needs four parts")
	}
	for i := 1; i < 4; i++ {
		v := strings.TrimSpace(parts[i])
		lo, hi, ok, err := partRange(v, 10, 255)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for _, h := range parts[:i] {
			n, err := strconv.ParseUint(strings.TrimSpace(h), 10, 8)
			if err != nil {
				return fmt.Errorf("part %q is not 0-255", h)
			}
			p.head = append(p.head, uint16(n))
		}
		p.lo, p.hi = lo, hi
		return nil
	}
	return fmt.Errorf("no '*' or range after the first part")
}

// parseRange6 follows Java's IPv6 range rules, including how it expands
// the groups before the range (AclUtils.v6ipProcess/expandIP): the
// compared prefix is what Java compares.
func (p *AddrPattern) parseRange6(t string) error {
	p.isSix = true
	star, minus := strings.IndexByte(t, '*'), strings.IndexByte(t, '-')
	lastColon := strings.LastIndexByte(t, ':')
	if star >= 0 && star != len(t)-1 {
		return fmt.Errorf("'*' must end the pattern")
	}
	var sub string
	part := 7
	switch {
	case star >= 0 && minus >= 0:
		prev := strings.LastIndexByte(t[:lastColon], ':')
		if prev < 0 || minus <= prev {
			return fmt.Errorf("a range must be in the group before the final '*'")
		}
		sub, part = t[:prev], 6
	case minus >= 0 && minus <= lastColon:
		return fmt.Errorf("a range must be in the last group")
	default:
		sub = t[:lastColon]
	}
	groups := splitNonEmpty(t, ":")
	found := false
	for i := 1; i < len(groups) && !found; i++ {
		lo, hi, ok, err := partRange(strings.TrimSpace(groups[i]), 16, 0xffff)
		if err != nil {
			return err
		}
		found, p.lo, p.hi = ok, lo, hi
	}
	if !found {
		return fmt.Errorf("no '*' or range after the first group")
	}
	for _, g := range strings.Split(expandIPv6(sub, part), ":") {
		n, err := strconv.ParseUint(g, 16, 16)
		if err != nil {
			return fmt.Errorf("group %q is not hexadecimal", g)
		}
		p.head = append(p.head, uint16(n))
	}
	if len(p.head) >= 8 {
		return fmt.Errorf("too many groups before the range")
	}
	return nil
}

// partRange reads "*" (0..max) or "a-b" in the given base; ok is false
// for a plain number.
func partRange(v string, base, max int) (lo, hi int, ok bool, err error) {
	if v == "*" {
		return 0, max, true, nil
	}
	i := strings.IndexByte(v, '-')
	if i < 0 {
		return 0, 0, false, nil
	}
	a, err1 := strconv.ParseUint(v[:i], base, 32)
	b, err2 := strconv.ParseUint(v[i+1:], base, 32)
	if i == 0 || err1 != nil || err2 != nil || int(a) > max || int(b) > max || a > b {
		return 0, 0, false, fmt.Errorf("bad range %q", v)
	}
	return int(a), int(b), true, nil
}

// expandIPv6 is Java's AclUtils.expandIP: "::" is widened so that the
// text has part groups, then every group is padded to four digits.
func expandIPv6(s string, part int) string {
	s = strings.ToUpper(s)
	if pad := part - strings.Count(s, ":"); pad > 0 {
		s = strings.Replace(s, "::", strings.Repeat(":", pad+1), -1)
	}
	groups := strings.Split(s, ":")
	for i, g := range groups {
		if len(g) < 4 {
			groups[i] = strings.Repeat("0", 4-len(g)) + g
		}
	}
	return strings.Join(groups, ":")
}

// Match reports whether the client address a matches.
func (p *AddrPattern) Match(a netip.Addr) bool {
	a = a.Unmap()
	switch p.kind {
	case kindAll:
		return true
	case kindSet:
		for _, x := range p.set {
			if x == a {
				return true
			}
		}
	case kindRange:
		return p.matchRange(a)
	}
	return false
}

func (p *AddrPattern) matchRange(a netip.Addr) bool {
	var parts []uint16
	if a.Is4() && !p.isSix {
		for _, b := range a.As4() {
			parts = append(parts, uint16(b))
		}
	} else if a.Is6() && p.isSix {
		b := a.As16()
		for i := 0; i < 16; i += 2 {
			parts = append(parts, uint16(b[i])<<8|uint16(b[i+1]))
		}
	} else {
		return false
	}
	for i, h := range p.head {
		if parts[i] != h {
			return false
		}
	}
	v := int(parts[len(p.head)])
	return v >= p.lo && v <= p.hi
}

// splitNonEmpty splits s on sep and drops empty pieces (commons-lang
// StringUtils.split).
func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, x := range strings.Split(s, sep) {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// ClientAddr turns a connection's remote address ("ip:port", "[v6]:port")
// into the address patterns are matched against.
func ClientAddr(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}
