package engine

import (
	"testing"

	"github.com/mqd/mqd/flush"
)

// TestCheckpointPolicyExtension: the writer policy round-trips; a slot
// written without it (an older mqd) or with a damaged extension still gives
// the offsets and says the policy is unknown.
func TestCheckpointPolicyExtension(t *testing.T) {
	c := checkpoint{PhysicTimestamp: 1, LogicsTimestamp: 2, IndexTimestamp: 3, PhysicOffset: 4096, DispatchedOffset: 100,
		FlushMode: flush.ModeSync, MaxWrite: 1 << 20, seq: 7}
	b := make([]byte, slotSize)
	c.encode(b)
	if got, ok := decodeSlot(b); !ok || got != c {
		t.Fatalf("round trip: %+v %v", got, ok)
	}

	old := c
	old.FlushMode, old.MaxWrite = flush.ModeUnknown, 0
	clear(b)
	old.encode(b)
	for i := extOffset; i < slotSize; i++ {
		if b[i] != 0 {
			t.Fatalf("a slot without a policy has byte %d set: an older mqd wrote zeros there", i)
		}
	}
	if got, ok := decodeSlot(b); !ok || got != old {
		t.Fatalf("old-format slot: %+v %v", got, ok)
	}

	clear(b)
	c.encode(b)
	b[extOffset+1] = byte(flush.ModeAsync) // extension CRC no longer matches
	got, ok := decodeSlot(b)
	if !ok || got.FlushMode != flush.ModeUnknown || got.PhysicOffset != c.PhysicOffset || got.seq != c.seq {
		t.Fatalf("damaged extension: %+v %v, want the offsets and an unknown policy", got, ok)
	}
}
