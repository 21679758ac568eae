package engine

// QueueTopics lists the topics that have consume queues, sorted
// (CLEAN_UNUSED_TOPIC compares them with the topic configuration).
func (s *Store) QueueTopics() []string { return s.cq.Topics() }

// CleanExpiredConsumeQueues removes consume-queue files whose entries all
// point below the commit log's first byte (CLEAN_EXPIRED_CONSUMEQUEUE;
// retention does the same on its own schedule). It returns the number of
// files removed.
func (s *Store) CleanExpiredConsumeQueues() (int, error) { return s.cq.DeleteBelow(s.cl.MinOffset()) }
