package engine

// DeleteTopic removes every consume queue of topic and its files
// (DELETE_TOPIC_IN_BROKER). The topic's records stay in the commit log and
// the index until retention removes them. The in-memory next logical
// offset of each of its queues is not reset (a topic's handle, Store.Topic,
// stays valid for the store's life): a topic re-created before the next
// restart continues from those offsets (its queues then start there),
// after a restart it starts at 0 as in Java.
func (s *Store) DeleteTopic(topic string) error {
	return s.cq.DeleteTopic(topic)
}
