package protocol

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzHeartbeat feeds arbitrary bytes to the HEART_BEAT (34) body decoder:
// no panic, allocation bounded by the input size.
func FuzzHeartbeat(f *testing.F) {
	for _, name := range []string{"heartbeat.json", "heartbeat_go.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"consumerDataSet":[{"subscriptionDataSet":[{"codeSet":["97",98,"x",null,1e3]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAllocBound(t, "heartbeat body", len(data), func() { DecodeHeartbeatData(data) })
	})
}

// FuzzClientJSONBodies feeds arbitrary bytes to the other JSON bodies a
// client or admin tool sends: LOCK/UNLOCK_BATCH_MQ (41/42),
// CHECK_CLIENT_CONFIG (46), UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200), the
// nameserver's QUERY_DATA_VERSION (322) and the integer-key rewriting they
// all go through.
func FuzzClientJSONBodies(f *testing.F) {
	f.Add([]byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{"topic":"T","brokerName":"b","queueId":1}]}`))
	f.Add([]byte(`{"clientId":"c","group":"g","subscriptionData":{"topic":"T","subString":"a>1","expressionType":"SQL92"}}`))
	f.Add([]byte(`{"groupName":"g","consumeEnable":true,"retryQueueNums":1,"retryMaxTimes":16,"brokerId":0}`))
	f.Add([]byte(`{"counter":7,"timestamp":1700000000000}`))
	f.Add([]byte(`{0:"a",-1:{1:[2,{3:4}]},"s":"{5:6}"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAllocBound(t, "client JSON bodies", len(data), func() {
			DecodeLockBatchRequestBody(data)
			DecodeCheckClientConfigBody(data)
			var g SubscriptionGroupConfig
			DecodeJSON(data, &g)
			var dv DataVersion
			DecodeJSON(data, &dv)
		})
		// The rewrite adds two quotes per integer key at most.
		if q := QuoteIntegerKeys(data); len(q) > 3*len(data) {
			t.Fatalf("QuoteIntegerKeys grew %d bytes to %d", len(data), len(q))
		}
	})
}
