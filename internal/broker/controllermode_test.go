package broker

import (
	"testing"
	"time"
)

func TestControllerModeKeys(t *testing.T) {
	cfg := NewConfig()
	if !cfg.Controller.AllAck || cfg.Controller.MinInSync != 2 {
		t.Fatalf("defaults: allAckInSyncStateSet %v, minInSyncReplicas %d", cfg.Controller.AllAck, cfg.Controller.MinInSync)
	}
	ignored, err := ApplyProperties(map[string]string{
		"enableControllerMode": "true", "controllerAddr": "127.0.0.1:9878;127.0.0.1:9879",
		"brokerHeartbeatInterval": "500", "controllerHeartBeatTimeoutMills": "4000", "controllerLeaseMills": "2500",
		"haMaxTimeSlaveNotCatchup": "8000", "brokerElectionPriority": "3",
		"allAckInSyncStateSet": "false", "minInSyncReplicas": "1",
	}, &cfg)
	if err != nil || len(ignored) != 0 {
		t.Fatal(err, ignored)
	}
	c := cfg.Controller
	if !c.Enable || len(c.Addrs) != 2 || c.HeartbeatInterval != 500*time.Millisecond || c.HeartbeatTimeout != 4*time.Second ||
		c.Lease != 2500*time.Millisecond || c.InSyncLag != 8*time.Second || c.Priority != 3 || c.AllAck || c.MinInSync != 1 {
		t.Fatalf("%+v", c)
	}
	for k, v := range map[string]string{"enableControllerMode": "yes", "brokerElectionPriority": "99999999999", "controllerHeartBeatTimeoutMills": "x",
		"minInSyncReplicas": "0", "allAckInSyncStateSet": "maybe"} {
		if _, err := ApplyProperties(map[string]string{k: v}, &cfg); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}
