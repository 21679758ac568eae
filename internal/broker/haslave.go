package broker

// A slave copies its master's metadata periodically, as SlaveSynchronize
// does (Java's HAService and SlaveSynchronize): every SyncInterval (10 s, first run 3 s
// after start) it asks the master for its topic table (21), consumer
// offsets (43), delay offsets (45) and subscription groups (201). A request
// the master does not answer with SUCCESS is skipped; the others still run.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

const slaveSyncTimeout = 3 * time.Second

func (b *Broker) slaveSyncLoop(stop <-chan struct{}) {
	first := min(3*time.Second, b.cfg.HA.SyncInterval)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if addr := b.masterAddr(); addr != "" {
			b.syncFromMaster(addr)
		}
		t.Reset(b.cfg.HA.SyncInterval)
	}
}

// syncFromMaster runs one round of the four requests against addr.
func (b *Broker) syncFromMaster(addr string) {
	for _, step := range []struct {
		code  int16
		apply func([]byte) error
	}{
		{protocol.GetAllTopicConfig, b.applyMasterTopics},
		{protocol.GetAllConsumerOffset, b.applyMasterOffsets},
		{protocol.GetAllDelayOffset, b.applyMasterDelayOffsets},
		{protocol.GetAllSubscriptionGroupConfig, b.applyMasterGroups},
	} {
		body, err := b.askMaster(addr, step.code)
		if err == nil {
			err = step.apply(body)
		}
		if err != nil {
			b.log.Debug("slave sync: skipped", "master", addr, "code", protocol.RequestCodeName(step.code), "err", err)
		}
	}
}

func (b *Broker) askMaster(addr string, code int16) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), slaveSyncTimeout)
	defer cancel()
	resp, err := b.namesrv.Invoke(ctx, addr, b.signOuter(protocol.NewRequest(code, nil))) // acl.go
	if err != nil {
		return nil, err
	}
	if resp.Code != protocol.ResponseSuccess {
		return nil, fmt.Errorf("code %s: %s", protocol.ResponseCodeName(resp.Code), resp.Remark)
	}
	return resp.Body, nil
}

// applyMasterTopics makes the slave's topic table the master's (replaced
// when it differs: changed topics put, missing ones deleted).
func (b *Broker) applyMasterTopics(body []byte) error {
	var w protocol.TopicConfigSerializeWrapper
	if err := protocol.DecodeJSON(body, &w); err != nil {
		return err
	}
	for name, tc := range w.TopicConfigTable {
		if tc.TopicName == "" {
			tc.TopicName = name
		}
		if cur, ok := b.topics.Get(name); !ok || cur != tc {
			if err := b.topics.Put(tc); err != nil {
				return err
			}
		}
	}
	for _, name := range b.topics.Names() {
		if _, ok := w.TopicConfigTable[name]; !ok {
			if _, err := b.topics.Delete(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyMasterGroups makes the slave's subscription groups the master's.
func (b *Broker) applyMasterGroups(body []byte) error {
	var w protocol.SubscriptionGroupWrapper
	if err := protocol.DecodeJSON(body, &w); err != nil {
		return err
	}
	for name, g := range w.SubscriptionGroupTable {
		if g.GroupName == "" {
			g.GroupName = name
		}
		if cur, ok := b.groups.Lookup(name); !ok || !sameGroup(cur, g) {
			if err := b.groups.Put(g); err != nil {
				return err
			}
		}
	}
	for _, name := range b.groups.Names() {
		if _, ok := w.SubscriptionGroupTable[name]; !ok {
			if err := b.groups.Delete(name); err != nil {
				return err
			}
		}
	}
	return nil
}

func sameGroup(a, b protocol.SubscriptionGroupConfig) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// applyMasterOffsets merges the master's committed offsets (putAll).
func (b *Broker) applyMasterOffsets(body []byte) error {
	var f offsetFile
	if err := protocol.DecodeJSON(body, &f); err != nil {
		return err
	}
	for key, queues := range f.OffsetTable {
		topic, group, ok := splitOffsetKey(key)
		if !ok {
			continue
		}
		for q, off := range queues {
			b.offsets.Commit(group, topic, q, off)
		}
	}
	return nil
}

// splitOffsetKey splits "topic@group" at its last '@' (group names may
// not hold '@'; %RETRY% topics may).
func splitOffsetKey(key string) (topic, group string, ok bool) {
	for i := len(key) - 1; i > 0; i-- {
		if key[i] == '@' {
			return key[:i], key[i+1:], i+1 < len(key)
		}
	}
	return "", "", false
}

// applyMasterDelayOffsets writes the master's delay offsets to
// config/delayOffset.json, as SlaveSynchronize does.
func (b *Broker) applyMasterDelayOffsets(body []byte) error {
	body = protocol.QuoteIntegerKeys(body)
	if !json.Valid(body) {
		return fmt.Errorf("delay offsets: not JSON")
	}
	return saveJSON(filepath.Join(b.cfg.Store.Dir, "config", "delayOffset.json"), json.RawMessage(body))
}
