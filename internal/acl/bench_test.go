package acl

import (
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// BenchmarkCheckSignedSend is the per-request cost ACL adds to a typical
// SEND_MESSAGE_V2 with a 1 KiB body.
func BenchmarkCheckSignedSend(b *testing.B) {
	v := NewValidator(mustParseB(b, javaExample))
	ext := map[string]string{"a": "pg", "b": "topicB", "c": "TBW102", "d": "4", "e": "1", "f": "0",
		"g": "1733300000000", "h": "0", "i": "UNIQ_KEY\x01ABCDEF0123456789\x02WAIT\x01true", "j": "0", "k": "false", "m": "false"}
	req := signed(protocol.SendMessageV2, "RocketMQ", "12345678", ext, string(make([]byte, 1024)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Check(req, outside); err != nil {
			b.Fatal(err)
		}
	}
}

func mustParseB(b *testing.B, s string) *Table {
	tab, err := Parse([]byte(s))
	if err != nil {
		b.Fatal(err)
	}
	return tab
}
