package admin

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
)

// uniqueKey is a message's UNIQ_KEY as Java's MessageClientIDSetter lays
// it out: IPv4 (loopback), pid, 4 random bytes (Java: a class-loader
// hash), ms in the month and a counter, 32 upper-case hex digits. Java's
// sendMessage prints it as the MsgId; queryMsgByUniqueKey finds it.
func uniqueKey() string {
	var b [16]byte
	copy(b[:4], []byte{127, 0, 0, 1})
	binary.BigEndian.PutUint16(b[4:], uint16(os.Getpid()))
	rand.Read(b[6:10])
	now := time.Now()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	binary.BigEndian.PutUint32(b[10:], uint32(now.Sub(month).Milliseconds()))
	binary.BigEndian.PutUint16(b[14:], uint16(uniqCounter.Add(1)))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

var uniqCounter atomic.Uint32

// SendOptions are sendMessage's options.
type SendOptions struct {
	Topic, Body, Keys, Tags string
	BrokerName              string // -b: only this broker
	QueueID                 int32  // -i: only this queue (with -b); -1 = any
}

// SendMessage sends one message and prints where it was stored.
func (a *Admin) SendMessage(o SendOptions) error {
	if o.Topic == "" || o.Body == "" {
		return errors.New("-t topic and -p body are required")
	}
	r, err := a.Route(o.Topic)
	if err != nil {
		return err
	}
	var t *target
	var queues int32
	for _, q := range r.QueueDatas {
		if (o.BrokerName == "" || q.BrokerName == o.BrokerName) && q.Perm&protocol.PermWrite != 0 && q.WriteQueueNums > 0 {
			for _, bd := range r.BrokerDatas {
				if bd.BrokerName == q.BrokerName && bd.MasterAddr() != "" {
					t, queues = &target{name: bd.BrokerName, addr: bd.MasterAddr()}, q.WriteQueueNums
				}
			}
		}
		if t != nil {
			break
		}
	}
	if t == nil {
		return fmt.Errorf("topic %q: no writable queue on %s", o.Topic, orAny(o.BrokerName))
	}
	qid := o.QueueID
	if qid < 0 {
		qid = int32(nowMillis() % int64(queues))
	} else if qid >= queues {
		return fmt.Errorf("-i %d: topic %q has %d write queues on %s", qid, o.Topic, queues, t.name)
	}
	uniq := uniqueKey()
	props := map[string]string{message.PropUniqKey: uniq}
	if o.Keys != "" {
		props[message.PropKeys] = o.Keys
	}
	if o.Tags != "" {
		props[message.PropTags] = o.Tags
	}
	req := protocol.NewRequest(protocol.SendMessage, &protocol.SendMessageRequestHeader{ProducerGroup: "SELF_TEST_P_GROUP",
		Topic: o.Topic, DefaultTopic: "TBW102", DefaultTopicQueueNums: 4, QueueID: qid,
		BornTimestamp: nowMillis(), Properties: message.EncodeProperties(props)})
	req.Body = []byte(o.Body)
	if _, err := a.call(t.addr, req); err != nil {
		return err
	}
	a.printf("%-32s  %-4s  %-20s    %s\n", "#Broker Name", "#QID", "#Send Result", "#MsgId")
	a.printf("%-32s  %-4d  %-20s    %s\n", t.name, qid, "SEND_OK", uniq)
	return nil
}

func orAny(s string) string {
	if s == "" {
		return "any broker"
	}
	return s
}

// QueryMsgByKey lists the messages of topic indexed under key.
func (a *Admin) QueryMsgByKey(topic, key string, begin, end int64) error {
	if topic == "" || key == "" {
		return errors.New("-t topic and -k key are required")
	}
	if end == 0 {
		end = math.MaxInt64
	}
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	a.printf("%-50s %4s %40s\n", "#Message ID", "#QID", "#Offset")
	for _, t := range ts {
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.QueryMessage, &protocol.QueryMessageRequestHeader{
			Topic: topic, Key: key, MaxNum: 64, BeginTimestamp: begin, EndTimestamp: end}), protocol.ResponseQueryNotFound)
		if err != nil {
			return err
		}
		err = eachRecord(resp.Body, t.addr, func(v *message.View) {
			a.printf("%-50s %4d %40d\n", message.OffsetMsgID(v.StoreHost(), v.PhysOffset), v.QueueID, v.QueueOffset)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// QueryMsgByID prints the message stored under an offsetMsgId.
func (a *Admin) QueryMsgByID(id string) error {
	host, phys, err := message.ParseOffsetMsgID(id)
	if err != nil {
		return fmt.Errorf("-i %q: not a message id: %w", id, err)
	}
	resp, err := a.call(host.String(), protocol.NewRequest(protocol.ViewMessageByID, &protocol.ViewMessageRequestHeader{Offset: phys}))
	if err != nil {
		return err
	}
	v, err := message.Parse(resp.Body)
	if err != nil {
		return fmt.Errorf("message %s: %w", id, err)
	}
	a.printMessage(id, &v)
	return nil
}

// QueryMsgByOffset prints the message at a queue offset.
func (a *Admin) QueryMsgByOffset(topic, brokerName string, queueID int32, offset int64) error {
	ts, err := a.topicMasters(topic)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.name != brokerName {
			continue
		}
		resp, err := a.call(t.addr, protocol.NewRequest(protocol.PullMessage, &protocol.PullMessageRequestHeader{
			ConsumerGroup: "TOOLS_CONSUMER", Topic: topic, QueueID: queueID, QueueOffset: offset, MaxMsgNums: 1,
			SysFlag: protocol.PullFlagSubscription, ExpressionType: protocol.ExpressionTypeTag, Subscription: "*"}))
		if err != nil {
			return err
		}
		v, err := message.Parse(resp.Body)
		if err != nil {
			return fmt.Errorf("no message at %s:%d offset %d: %w", brokerName, queueID, offset, err)
		}
		a.printMessage(message.OffsetMsgID(v.StoreHost(), v.PhysOffset), &v)
		return nil
	}
	return fmt.Errorf("broker %q does not serve topic %q", brokerName, topic)
}

func (a *Admin) printMessage(id string, v *message.View) {
	p := func(k, val string) { a.printf("%-20s %s\n", k+":", val) }
	p("OffsetID", id)
	p("Topic", string(v.Topic))
	tags, _ := v.Property(message.PropTags)
	keys, _ := v.Property(message.PropKeys)
	p("Tags", "["+tags+"]")
	p("Keys", "["+keys+"]")
	p("Queue ID", strconv.Itoa(int(v.QueueID)))
	p("Queue Offset", strconv.FormatInt(v.QueueOffset, 10))
	p("CommitLog Offset", strconv.FormatInt(v.PhysOffset, 10))
	p("Reconsume Times", strconv.Itoa(int(v.ReconsumeTimes)))
	p("Born Timestamp", formatMillis(v.BornTimestamp))
	p("Store Timestamp", formatMillis(v.StoreTimestamp))
	p("Born Host", v.BornHost().String())
	p("Store Host", v.StoreHost().String())
	p("System Flag", strconv.Itoa(int(v.SysFlag)))
	p("Properties", v.PropertiesString())
	p("Message Body", string(v.Body))
}

// eachRecord calls fn for every stored record of a pull or query answer
// from addr.
func eachRecord(body []byte, addr string, fn func(*message.View)) error {
	for len(body) > 0 {
		v, err := message.Parse(body)
		if err != nil {
			return fmt.Errorf("answer from %s: %w", addr, err)
		}
		fn(&v)
		body = body[len(v.Raw):]
	}
	return nil
}
