package message

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func sampleMessage() *Message {
	return &Message{
		Topic:          "TopicTest",
		QueueID:        3,
		Flag:           7,
		SysFlag:        0,
		BornTimestamp:  1700000000123,
		BornHost:       netip.MustParseAddrPort("10.0.0.2:54321"),
		StoreHost:      netip.MustParseAddrPort("10.0.0.1:10911"),
		ReconsumeTimes: 2,
		Body:           []byte("hello"),
		Properties:     EncodeProperties(map[string]string{"TAGS": "TagA", "KEYS": "k1 k2", "UNIQ_KEY": "ABC"}),
	}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	m := sampleMessage()
	buf := make([]byte, m.Size())
	m.Encode(buf, BodyCRC(m.Body), 42, 4096, 1700000000999)
	if len(buf) != 91+5+len(m.Topic)+len(m.Properties) {
		t.Fatalf("size %d", len(buf))
	}
	v, err := Parse(append(buf, 0xFF, 0xFF)) // trailing bytes are not part of the record
	if err != nil {
		t.Fatal(err)
	}
	if v.QueueID != 3 || v.Flag != 7 || v.QueueOffset != 42 || v.PhysOffset != 4096 ||
		v.BornTimestamp != 1700000000123 || v.StoreTimestamp != 1700000000999 || v.ReconsumeTimes != 2 {
		t.Fatalf("fields: %+v", v)
	}
	if !bytes.Equal(v.Body, m.Body) || v.TopicString() != m.Topic || v.PropertiesString() != m.Properties {
		t.Fatal("variable fields")
	}
	if v.BornHost() != m.BornHost || v.StoreHost() != m.StoreHost {
		t.Fatalf("hosts %v %v", v.BornHost(), v.StoreHost())
	}
	if !v.CheckBodyCRC() || v.BodyCRC != 907060870 { // Java's UtilAll.crc32: "hello" → 907060870
		t.Fatalf("crc %d", v.BodyCRC)
	}
	if tag, _ := v.Property("TAGS"); tag != "TagA" {
		t.Fatal(tag)
	}
	if len(v.Raw) != len(buf) {
		t.Fatal("raw")
	}
}

func TestIPv6Hosts(t *testing.T) {
	m := sampleMessage()
	m.BornHost = netip.MustParseAddrPort("[::1]:9")
	buf := make([]byte, m.Size())
	m.Encode(buf, 0, 0, 0, 0)
	v, err := Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	if v.SysFlag&FlagBornHostV6 == 0 || v.SysFlag&FlagStoreHostV6 != 0 || v.BornHost() != m.BornHost {
		t.Fatalf("%#x %v", v.SysFlag, v.BornHost())
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	m := sampleMessage()
	good := make([]byte, m.Size())
	m.Encode(good, 0, 0, 0, 0)
	for i := 0; i < len(good); i++ { // every truncation
		if _, err := Parse(good[:i]); err == nil {
			t.Fatalf("truncated to %d parsed", i)
		}
	}
	bad := bytes.Clone(good)
	bad[84+3]++ // body length one larger than the fields allow
	if _, err := Parse(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatal(err)
	}
	if _, err := Parse(make([]byte, 200)); err == nil {
		t.Fatal("zeros parsed")
	}
}

func FuzzParse(f *testing.F) {
	m := sampleMessage()
	good := make([]byte, m.Size())
	m.Encode(good, 0, 0, 0, 0)
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if err == nil && len(v.Raw) > len(b) {
			t.Fatal("raw beyond input")
		}
	})
}

func TestOffsetMsgID(t *testing.T) {
	id := OffsetMsgID(netip.MustParseAddrPort("10.0.0.1:10911"), 123456)
	if id != "0A00000100002A9F000000000001E240" { // Java's MessageDecoder.createMessageId
		t.Fatal(id)
	}
	h, off, err := ParseOffsetMsgID(id)
	if err != nil || off != 123456 || h.String() != "10.0.0.1:10911" {
		t.Fatal(h, off, err)
	}
	if _, _, err := ParseOffsetMsgID("zz"); err == nil {
		t.Fatal("bad id parsed")
	}
}

func TestProperties(t *testing.T) {
	goStyle := "TAGS\x01a\x02KEYS\x01x y\x02"
	if v, ok := LookupProperty(goStyle, "KEYS"); !ok || v != "x y" {
		t.Fatal(v)
	}
	m := ParseProperties(goStyle + "\x01bad\x02k\x01\x02")
	if len(m) != 2 || m["TAGS"] != "a" {
		t.Fatal(m)
	}
	if s := AppendProperty(goStyle, "CLUSTER", "c"); s != goStyle+"CLUSTER\x01c" {
		t.Fatalf("%q", s)
	}
	if s := AppendProperty("A\x01b", "C", "d"); s != "A\x01b\x02C\x01d" {
		t.Fatalf("%q", s)
	}
}
