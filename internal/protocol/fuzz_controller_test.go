package protocol

import (
	"testing"
)

// FuzzControllerBodies feeds arbitrary bytes to every controller-mode body
// decoder (BROKER_HEARTBEAT 904, CONTROLLER_* 1001-1005 and the answers a
// broker decodes): no panic, allocation bounded by the input size, and a
// body that decodes satisfies the documented bounds.
func FuzzControllerBodies(f *testing.F) {
	f.Add([]byte(`{"clusterName":"c","brokerName":"b","brokerAddr":"127.0.0.1:10911","haAddr":"127.0.0.1:10912","brokerId":1,"epoch":2,"maxOffset":100,"timeoutMillis":10000}`))
	f.Add([]byte(`{"clusterName":"c","brokerName":"b","masterBrokerId":1,"masterEpoch":1,"syncStateSetEpoch":1,"syncStateSet":[1,2]}`))
	f.Add([]byte(`{"clusterName":"c","brokerName":"b","brokerId":2,"masterBrokerId":1,"masterAddr":"h:1","masterHaAddr":"h:2","masterEpoch":3,"syncStateSet":[1],"replicas":[{"brokerId":1,"brokerAddr":"h:1"}]}`))
	f.Add([]byte(`{"controllerLeaderId":"n0","controllerLeaderAddress":"127.0.0.1:9878","isLeader":true}`))
	f.Add([]byte(`{"syncStateSet":[-1,0,9223372036854775807]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAllocBound(t, "controller bodies", len(data), func() {
			if hb, err := DecodeBrokerHeartbeat(data); err == nil {
				if hb.BrokerID < 0 || hb.MaxOffset < 0 || len(hb.BrokerName) > MaxControllerName || hb.BrokerAddr == "" {
					t.Fatalf("heartbeat out of bounds decoded: %+v", hb)
				}
			}
			if a, err := DecodeAlterSyncStateSet(data); err == nil {
				if len(a.SyncStateSet) == 0 || len(a.SyncStateSet) > MaxSyncStateSet || a.MasterID <= 0 {
					t.Fatalf("in-sync report out of bounds decoded: %+v", a)
				}
			}
			DecodeElectMaster(data)
			if info, err := DecodeReplicaSetInfo(data); err == nil && len(info.Replicas) > MaxReplicasPerName {
				t.Fatalf("replica set out of bounds decoded: %d replicas", len(info.Replicas))
			}
			DecodeControllerMetadata(data)
		})
	})
}

func TestControllerBodyLimits(t *testing.T) {
	long := make([]byte, MaxControllerBody+1)
	for i := range long {
		long[i] = ' '
	}
	if _, err := DecodeBrokerHeartbeat(long); err == nil {
		t.Fatal("oversized body decoded")
	}
	bad := []string{
		`{"clusterName":"","brokerName":"b","brokerAddr":"h:1"}`,
		`{"clusterName":"c","brokerName":"a/b","brokerAddr":"h:1"}`,
		`{"clusterName":"c","brokerName":"b","brokerAddr":"nohostport"}`,
		`{"clusterName":"c","brokerName":"b","brokerAddr":"h:1","brokerId":-1}`,
		`{"clusterName":"c","brokerName":"b","brokerAddr":"h:1","timeoutMillis":99999999}`,
	}
	for _, b := range bad {
		if _, err := DecodeBrokerHeartbeat([]byte(b)); err == nil {
			t.Errorf("accepted %s", b)
		}
	}
	if _, err := DecodeAlterSyncStateSet([]byte(`{"clusterName":"c","brokerName":"b","masterBrokerId":1,"syncStateSet":[]}`)); err == nil {
		t.Error("empty in-sync set accepted")
	}
}
