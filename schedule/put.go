package schedule

import (
	"fmt"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// put stores batch without waiting for the flush (package doc,
// Durability): one batch put, or one message at a time when the batch put
// is refused as illegal (a batch must fit in one commit-log segment). Only
// PUT_OK counts.
func (s *Service) put(batch []*message.Message) error {
	if len(batch) > 1 {
		res := s.store.PutMessagesWait(batch, false)
		if res.Status == engine.PutOK {
			return nil
		}
		if res.Status != engine.MessageIllegal {
			return fmt.Errorf("batch of %d: %v (%v)", len(batch), res.Status, res.Err)
		}
	}
	for i, m := range batch {
		res := s.store.PutMessageWait(m, false)
		if res.Status == engine.PutOK {
			continue
		}
		if res.Status == engine.MessageIllegal || res.Status == engine.PropertiesSizeExceeded {
			// Cannot happen for a record that was storable with more
			// properties; logged and dropped rather than blocking the level.
			s.cfg.Logger.Error("schedule: delivered copy refused by the store; dropped",
				"topic", m.Topic, "queue", m.QueueID, "err", res.Err)
			continue
		}
		return fmt.Errorf("message %d of %d: %v (%v)", i, len(batch), res.Status, res.Err)
	}
	return nil
}
