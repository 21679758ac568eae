package acl

import (
	"net/netip"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// FuzzCheck feeds client-controlled parts of a request (code, ext fields,
// body) to the validator: it must answer, never panic.
func FuzzCheck(f *testing.F) {
	f.Add(int16(34), "AccessKey", "RocketMQ", "Signature", "x", `{"consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"t"}]}]}`)
	f.Add(int16(310), "b", "%RETRY%g", "a", "g", "")
	f.Add(int16(10), "topic", "RMQ_SYS_TRACE_TOPIC", "AccessKey", "pubonly1", "body")
	f.Add(int16(11), "topic", "", "consumerGroup", "", "")
	v := NewValidator(mustParseF(f, javaExample))
	f.Fuzz(func(t *testing.T, code int16, k1, v1, k2, v2, body string) {
		req := &protocol.Command{Code: code, ExtFields: map[string]string{k1: v1, k2: v2}, Body: []byte(body)}
		for _, client := range []netip.Addr{{}, outside, netip.MustParseAddr("192.168.1.1")} {
			err := v.Check(req, client)
			if d, ok := err.(*Denied); err != nil && (!ok || d.Remark() == "") {
				t.Fatalf("refusal without a remark: %v", err)
			}
		}
	})
}

// FuzzAddrPattern: an operator's pattern is parsed or refused, and a
// parsed one matches any address without panicking.
func FuzzAddrPattern(f *testing.F) {
	for _, s := range []string{"10.10.103.*", "192.168.1.1-10", "2001:db8::{1,2}", "1050::5:600:300c:1-200", "2001:db8:0:0:0:0:10-20:*", "1.2.3.{4,5}", "*"} {
		f.Add(s)
	}
	addrs := []netip.Addr{netip.MustParseAddr("10.10.103.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::")}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseAddrPattern(s)
		if err != nil {
			return
		}
		for _, a := range addrs {
			p.Match(a)
		}
	})
}

// FuzzParse: any file content is a table or an error.
func FuzzParse(f *testing.F) {
	f.Add(javaExample)
	f.Add("accounts: [{accessKey: abcdefg, secretKey: 1234567, topicPerms: [a=PUB]}]")
	f.Fuzz(func(t *testing.T, doc string) {
		Parse([]byte(doc))
	})
}

func mustParseF(f *testing.F, s string) *Table {
	tab, err := Parse([]byte(s))
	if err != nil {
		f.Fatal(err)
	}
	return tab
}
