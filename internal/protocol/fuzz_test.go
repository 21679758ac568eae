package protocol

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the frame + header decoder. It must
// never panic nor allocate more than the input justifies (a frame that
// announces 1 MiB and carries a few bytes must not cost 1 MiB), and whatever it accepts must re-encode to a frame that
// decodes to the same command (decode → encode → decode is stable).
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.frame"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, c := range sampleCommands() {
		for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
			c.SerializeType = st
			if b, err := c.Encode(); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add(jsonFrame(`{"code":1,"extFields":{"a":5,"b":null},"x":[{"y":{}}],"language":3}`, []byte("body")))
	f.Add(binFrame(binHeader(0, 7, []byte{0, 1, 'k', 0, 0, 0, 0})))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxFrame = 1 << 20
		var (
			c1  *Command
			err error
		)
		checkAllocBound(t, "frame", len(data), func() { c1, err = ReadFrame(bytes.NewReader(data), maxFrame) })
		if err != nil {
			return
		}
		frame, err := c1.Encode()
		if err != nil {
			// Only commands too large for the wire may fail to encode.
			if len(data) < maxHeaderLen {
				t.Fatalf("decoded command does not re-encode: %v", err)
			}
			return
		}
		c2, err := ReadFrame(bytes.NewReader(frame), 0)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v\nframe %q", err, frame)
		}
		if !sameCommand(c1, c2) {
			t.Fatalf("unstable round trip\n c1 %+v\n c2 %+v", c1, c2)
		}
		again, err := c2.Encode()
		if err != nil || !bytes.Equal(again, frame) {
			t.Fatalf("encoding not deterministic: %v", err)
		}
	})
}

// FuzzBodies feeds arbitrary bytes to the response-body decoders (what mqd
// reads back from nameservers and brokers); they must never panic. The
// request bodies clients send have their own targets (FuzzHeartbeat,
// FuzzClientJSONBodies, FuzzRegisterBody*).
func FuzzBodies(f *testing.F) {
	for _, name := range []string{"route.json", "cluster_info.json", "heartbeat_go.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5}}`))
	f.Add([]byte(`{"brokerDatas":[{"brokerAddrs":{0:"a:1"}}],"queueDatas":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAllocBound(t, "response bodies", len(data), func() {
			DecodeTopicRouteData(data)
			DecodeClusterInfo(data)
			DecodeLockBatchResponseBody(data)
			DecodeResetOffsetBody(data)
			DecodeConsumeStats(data)
			DecodeTopicStatsTable(data)
		})
	})
}
