package acl

import (
	"net/netip"
	"testing"
)

func TestAddrPatterns(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"", nil, []string{"127.0.0.1", "::1"}},
		{"*", []string{"1.2.3.4", "::1"}, nil},
		{"*.*.*.*", []string{"1.2.3.4"}, nil},
		{"*:*:*:*:*:*:*:*", []string{"1.2.3.4", "2001:db8::1"}, nil},
		{"192.168.1.1", []string{"192.168.1.1"}, []string{"192.168.1.2", "::ffff:192.168.1.2"}},
		{"192.168.1.{1,2, 3}", []string{"192.168.1.1", "192.168.1.3"}, []string{"192.168.1.4", "192.168.2.1"}},
		{"10.0.0.1,10.0.0.9", []string{"10.0.0.9"}, []string{"10.0.0.2"}},
		{"10.10.103.*", []string{"10.10.103.0", "10.10.103.255"}, []string{"10.10.104.1", "11.10.103.1"}},
		{"192.168.1.1-10", []string{"192.168.1.1", "192.168.1.10"}, []string{"192.168.1.0", "192.168.1.11", "192.168.2.5"}},
		{"10.*.*.*", []string{"10.200.3.4"}, []string{"11.0.0.0"}},
		{"10.*.5.6", []string{"10.1.9.9"}, []string{"9.1.5.6"}}, // Java looks at the first wildcard only
		{"192.168.3-5.*", []string{"192.168.4.77"}, []string{"192.168.6.1"}},
		{"127.0.0.1", []string{"::ffff:127.0.0.1"}, nil},
		{"::1", []string{"::1", "0:0:0:0:0:0:0:1"}, []string{"::2", "127.0.0.1"}},
		{"2001:db8::{1,2}", []string{"2001:db8::2"}, []string{"2001:db8::3"}},
		{"2001:db8::1,2001:db8::5", []string{"2001:db8::5"}, []string{"2001:db8::4"}},
		{"2001:db8:0:0:0:0:0:1-ff", []string{"2001:db8::1", "2001:db8::ff"}, []string{"2001:db8::100", "2001:db9::1"}},
		{"1050::5:600:300c:1-200", []string{"1050::5:600:300c:200"}, []string{"1050::5:600:300c:201"}},
		{"2001:db8:0:0:0:0:10-20:*", []string{"2001:db8::15:abcd"}, []string{"2001:db8::21:0"}},
		{"2001:db8:0:0:0:0:0:*", []string{"2001:db8::ffff"}, []string{"2001:db8::1:0"}},
		// Java's expansion of a trailing "::" before '*' compares three
		// groups and ranges over the fourth.
		{"2001:db8::*", []string{"2001:db8:0:1234::1"}, []string{"2001:db8:1::1"}},
	}
	for _, c := range cases {
		p, err := ParseAddrPattern(c.pattern)
		if err != nil {
			t.Errorf("%q: %v", c.pattern, err)
			continue
		}
		for _, a := range c.match {
			if !p.Match(netip.MustParseAddr(a)) {
				t.Errorf("%q should match %s", c.pattern, a)
			}
		}
		for _, a := range c.miss {
			if p.Match(netip.MustParseAddr(a)) {
				t.Errorf("%q should not match %s", c.pattern, a)
			}
		}
	}
}

func TestAddrPatternsInvalid(t *testing.T) {
	for _, s := range []string{
		"192.168.1", "192.168.1.300", "abc", "1.2.3.{4", "1.2.{3,4}", "1.2.3.{x,4}",
		"10.0.0.5-1", "10.0.0.-5", "10.0.0.1-300", "*.1.2.3", "10.0.0.1,bad",
		"2001:db8:*:1", "2001:db8::1-2:3", "2001:db8:0:0:0:0:0:1-fffff", "1.2.3.4.5-6",
	} {
		if p, err := ParseAddrPattern(s); err == nil {
			t.Errorf("%q accepted as %+v", s, p)
		}
	}
}

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:1234": "127.0.0.1", "[::1]:80": "::1", "[::ffff:10.0.0.1]:5": "10.0.0.1", "10.1.1.1": "10.1.1.1",
	} {
		a, ok := ClientAddr(in)
		if !ok || a.String() != want {
			t.Errorf("%s: %v %v", in, a, ok)
		}
	}
	if _, ok := ClientAddr("pipe"); ok {
		t.Error("pipe parsed")
	}
}
