package acl

import (
	"github.com/mqd/mqd/internal/protocol"
)

// RetryPrefix starts every retry topic; a resource with it is a group
// (checked against groupPerms and defaultGroupPerm).
const RetryPrefix = "%RETRY%"

// TraceTopic is the default message-trace topic; publishing to it is
// always allowed (PlainPermissionManager.validate).
const TraceTopic = "RMQ_SYS_TRACE_TOPIC"

// Need is one resource a request touches and the permission it needs.
type Need struct {
	Resource string // topic name, or %RETRY%<group> for a group
	Perm     Perm
}

// IsGroup reports whether the resource names a group.
func (n Need) IsGroup() bool { return isRetry(n.Resource) }

func isRetry(s string) bool { return len(s) >= len(RetryPrefix) && s[:len(RetryPrefix)] == RetryPrefix }

// adminCodes need an admin account. The first five are Java's
// Permission.ADMIN_CODE; mqd adds the other requests that change or
// destroy broker or nameserver state (SECURITY.md lists them).
var adminCodes = map[int16]bool{
	protocol.UpdateAndCreateTopic:             true,
	protocol.UpdateBrokerConfig:               true,
	protocol.DeleteTopicInBroker:              true,
	protocol.UpdateAndCreateSubscriptionGroup: true,
	protocol.DeleteSubscriptionGroup:          true,
	// mqd additions: offsets, files, ACL edits, nameserver writes.
	protocol.TriggerDeleteFiles:           true,
	protocol.ResetConsumerOffsetInBroker:  true,
	protocol.InvokeBrokerToResetOffset:    true,
	protocol.CloneGroupOffset:             true,
	protocol.CleanExpiredConsumeQueue:     true,
	protocol.CleanUnusedTopic:             true,
	protocol.DeleteExpiredCommitLog:       true,
	protocol.UpdateAndCreateACLConfig:     true,
	protocol.DeleteACLConfig:              true,
	protocol.UpdateGlobalWhiteAddrsConfig: true,
	protocol.PutKVConfig:                  true,
	protocol.DeleteKVConfig:               true,
	protocol.WipeWritePermOfBroker:        true,
	protocol.AddWritePermOfBroker:         true,
	protocol.DeleteTopicInNamesrv:         true,
	protocol.UpdateNamesrvConfig:          true,
	// A registration rewrites the routes every client reads: a nameserver
	// with an ACL takes it only from an admin account (a Java 5.3+ broker's
	// innerClientAuthenticationCredentials, mqd's broker.conf key of the
	// same name) or a white-listed address (a Java 4.9 broker signs
	// nothing).
	protocol.RegisterBroker:   true,
	protocol.UnregisterBroker: true,
}

// AdminOnly reports whether code needs an admin account.
func AdminOnly(code int16) bool { return adminCodes[code] }

// AdminCodes lists the admin-only request codes (for documentation and
// the nameserver, which checks only these).
func AdminCodes() []int16 {
	out := make([]int16, 0, len(adminCodes))
	for c := range adminCodes {
		out = append(out, c)
	}
	return out
}

// Needs returns the resources req touches (PlainAccessValidator.parse,
// Java's PlainAccessValidator.parse). Differences from 4.9.7, each closing a way around the
// check: SEND_BATCH_MESSAGE and the reply sends are checked like
// SEND_MESSAGE_V2 (as 5.x does for batches); a send names its topic and
// group with whichever field names the send handler will read; a code-10
// send to a retry topic needs SUB on the producer group's retry topic, as
// V2 does (4.9.7 reads a field code 10 does not carry and checks nothing);
// and a send to another group's retry topic also needs SUB on that group
// (4.9.7 checks only the producer group, so SUB on one's own group let a
// client feed any group's retry queue); CONSUMER_SEND_MSG_BACK needs SUB on
// originTopic, which the broker then requires the copied record to be of
// (4.9.7 copies a record of any topic into one's own retry topic).
func Needs(req *protocol.Command) ([]Need, error) {
	ext := req.Fields() // a typed send (no AccessKey) comes back as a map
	if ext == nil {
		// Java returns before looking at the body: such a request has no
		// AccessKey and passes only from a white-listed address.
		return nil, nil
	}
	var n needs
	switch req.Code {
	case protocol.SendMessage, protocol.SendMessageV2, protocol.SendBatchMessage,
		protocol.SendReplyMessage, protocol.SendReplyMessageV2:
		topicKey, groupKey := "topic", "producerGroup"
		if protocol.IsSendV2Header(ext) {
			topicKey, groupKey = "b", "a"
		}
		topic, ok := ext[topicKey]
		if ok && isRetry(topic) {
			n.group(ext, groupKey)
			if g, has := ext[groupKey]; !has || RetryPrefix+g != topic {
				// the message lands in the retry topic it names: a client
				// may only feed the retry topic of a group it may consume
				n.add(topic, Sub)
			}
		} else if ok {
			n.add(topic, Pub)
		}
	case protocol.ConsumerSendMsgBack:
		n.group(ext, "group")
		// the record copied into the group's retry topic is read back by
		// the group: the broker checks it is of originTopic (sendback.go)
		n.topic(ext, "originTopic")
	case protocol.PullMessage:
		n.topic(ext, "topic")
		n.group(ext, "consumerGroup")
	case protocol.QueryMessage:
		n.topic(ext, "topic")
	case protocol.HeartBeat:
		hb, err := protocol.DecodeHeartbeatData(req.Body)
		if err != nil {
			return nil, err
		}
		for _, c := range hb.ConsumerDataSet {
			n.add(RetryPrefix+c.GroupName, Sub)
			for _, s := range c.SubscriptionDataSet {
				n.add(s.Topic, Sub)
			}
		}
	case protocol.LockBatchMQ, protocol.UnlockBatchMQ:
		// mqd's addition: 4.9.7 checks nothing, so any account could hold
		// the queue locks of another group's orderly consumers
		body, err := protocol.DecodeLockBatchRequestBody(req.Body)
		if err != nil {
			return nil, err
		}
		n.add(RetryPrefix+body.ConsumerGroup, Sub)
		last := ""
		for _, mq := range body.MQSet {
			if mq.Topic != last { // queues come grouped by topic
				n.add(mq.Topic, Sub)
				last = mq.Topic
			}
		}
	case protocol.UnregisterClient, protocol.GetConsumerListByGroup:
		n.group(ext, "consumerGroup")
	case protocol.UpdateConsumerOffset:
		n.group(ext, "consumerGroup")
		n.topic(ext, "topic")
	}
	return n, nil
}

type needs []Need

func (n *needs) add(resource string, p Perm) { *n = append(*n, Need{resource, p}) }

// topic adds SUB on the topic in ext[key], if the field is present.
func (n *needs) topic(ext map[string]string, key string) {
	if v, ok := ext[key]; ok {
		n.add(v, Sub)
	}
}

// group adds SUB on the retry topic of the group in ext[key], if present.
func (n *needs) group(ext map[string]string, key string) {
	if v, ok := ext[key]; ok {
		n.add(RetryPrefix+v, Sub)
	}
}
