// Command mqadmin is RocketMQ's operator tool for mqd (and Java brokers):
// the commands of Java's mqadmin with the same names and flags (-n
// nameserver, -c cluster, -b broker, -t topic, -g group). It only parses
// flags; internal/admin does the work.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqd/mqd/internal/admin"
	"github.com/mqd/mqd/internal/protocol"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mqadmin:", err)
		os.Exit(1)
	}
}

// run executes one mqadmin command line.
func run(args []string, out, errOut io.Writer) error {
	root := newRoot(out, errOut)
	root.SetArgs(args)
	return root.Execute()
}

// newRoot builds the command tree; commands print to out.
func newRoot(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{Use: "mqadmin", Short: "RocketMQ operator commands for mqd",
		SilenceUsage: true, SilenceErrors: true}
	root.SetOut(out)
	root.SetErr(errOut)
	var ns string
	root.PersistentFlags().StringVarP(&ns, "namesrvAddr", "n", os.Getenv("NAMESRV_ADDR"), "nameserver address list, host:port;host:port")
	withAdmin := func(f func(a *admin.Admin) error) func(*cobra.Command, []string) error {
		return func(*cobra.Command, []string) error {
			a := admin.New(splitAddrs(ns), out)
			defer a.Close()
			return f(a)
		}
	}
	for _, add := range []func(*cobra.Command, adminRunner){topicCommands, clusterCommands, groupCommands, messageCommands, consumeCommands} {
		add(root, withAdmin)
	}
	return root
}

type adminRunner func(func(a *admin.Admin) error) func(*cobra.Command, []string) error

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// command builds a cobra command; flags are added by the caller.
func command(root *cobra.Command, use, short string, run func(*cobra.Command, []string) error) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, RunE: run, Args: cobra.NoArgs}
	root.AddCommand(c)
	return c
}

func topicCommands(root *cobra.Command, with adminRunner) {
	var b, c, t string
	var o admin.TopicOptions
	cmd := command(root, "updateTopic", "Update or create topic", with(func(a *admin.Admin) error {
		o.Topic = t
		return a.UpdateTopic(b, c, o)
	}))
	brokerClusterFlags(cmd, &b, &c)
	cmd.Flags().StringVarP(&t, "topic", "t", "", "topic name")
	cmd.Flags().Int32VarP(&o.ReadQueueNums, "readQueueNums", "r", 8, "read queue number")
	cmd.Flags().Int32VarP(&o.WriteQueueNums, "writeQueueNums", "w", 8, "write queue number")
	cmd.Flags().Int32VarP(&o.Perm, "perm", "p", 6, "topic permission: 2 W, 4 R, 6 RW")
	cmd.Flags().BoolVarP(&o.Order, "order", "o", false, "ordered topic")

	var dc, dt string
	cmd = command(root, "deleteTopic", "Delete topic from broker and NameServer", with(func(a *admin.Admin) error { return a.DeleteTopic(dc, dt) }))
	cmd.Flags().StringVarP(&dc, "clusterName", "c", "", "delete topic from which cluster")
	cmd.Flags().StringVarP(&dt, "topic", "t", "", "topic name")

	var withCluster bool
	cmd = command(root, "topicList", "Fetch all topic list from name server", with(func(a *admin.Admin) error { return a.TopicList(withCluster) }))
	cmd.Flags().BoolVarP(&withCluster, "clusterModel", "c", false, "print cluster and consumer groups")

	var rt string
	cmd = command(root, "topicRoute", "Examine topic route info", with(func(a *admin.Admin) error { return a.TopicRoute(rt) }))
	cmd.Flags().StringVarP(&rt, "topic", "t", "", "topic name")

	var st string
	cmd = command(root, "topicStatus", "Examine topic status info", with(func(a *admin.Admin) error { return a.TopicStatus(st) }))
	cmd.Flags().StringVarP(&st, "topic", "t", "", "topic name")

	var ct string
	cmd = command(root, "topicClusterList", "Get cluster info for topic", with(func(a *admin.Admin) error { return a.TopicClusterList(ct) }))
	cmd.Flags().StringVarP(&ct, "topic", "t", "", "topic name")

	var pb, pc, pt string
	var perm int32
	cmd = command(root, "updateTopicPerm", "Update topic perm", with(func(a *admin.Admin) error { return a.UpdateTopicPerm(pb, pc, pt, perm) }))
	brokerClusterFlags(cmd, &pb, &pc)
	cmd.Flags().StringVarP(&pt, "topic", "t", "", "topic name")
	cmd.Flags().Int32VarP(&perm, "perm", "p", 0, "permission: 2 W, 4 R, 6 RW")
}

func brokerClusterFlags(cmd *cobra.Command, b, c *string) {
	cmd.Flags().StringVarP(b, "brokerAddr", "b", "", "broker address host:port")
	cmd.Flags().StringVarP(c, "clusterName", "c", "", "cluster name (every master of it)")
}

func clusterCommands(root *cobra.Command, with adminRunner) {
	var lc string
	var more bool
	cmd := command(root, "clusterList", "List cluster infos", with(func(a *admin.Admin) error { return a.ClusterList(lc, more) }))
	cmd.Flags().StringVarP(&lc, "clusterName", "c", "", "only this cluster")
	cmd.Flags().BoolVarP(&more, "moreStats", "m", false, "print more stats")

	var sb, sc string
	cmd = command(root, "brokerStatus", "Fetch broker runtime status data", with(func(a *admin.Admin) error { return a.BrokerStatus(sb, sc) }))
	brokerClusterFlags(cmd, &sb, &sc)

	var gb, gc string
	cmd = command(root, "getBrokerConfig", "Get broker config by cluster or special broker", with(func(a *admin.Admin) error { return a.GetBrokerConfig(gb, gc) }))
	brokerClusterFlags(cmd, &gb, &gc)

	var ub, uc, k, v string
	cmd = command(root, "updateBrokerConfig", "Update broker's config", with(func(a *admin.Admin) error { return a.UpdateBrokerConfig(ub, uc, k, v) }))
	brokerClusterFlags(cmd, &ub, &uc)
	cmd.Flags().StringVarP(&k, "key", "k", "", "config key")
	cmd.Flags().StringVarP(&v, "value", "v", "", "config value")

	var sat string
	var active bool
	cmd = command(root, "statsAll", "Topic and consumer tps stats", with(func(a *admin.Admin) error { return a.StatsAll(sat, active) }))
	cmd.Flags().StringVarP(&sat, "topic", "t", "", "only this topic")
	cmd.Flags().BoolVarP(&active, "activeTopic", "a", false, "only topics with messages in the last 24 hours")

	command(root, "getNamesrvConfig", "Get configs of name server", with(func(a *admin.Admin) error { return a.GetNamesrvConfig() }))
	var nk, nv string
	cmd = command(root, "updateNamesrvConfig", "Update configs of name server", with(func(a *admin.Admin) error { return a.UpdateNamesrvConfig(nk, nv) }))
	cmd.Flags().StringVarP(&nk, "key", "k", "", "config key")
	cmd.Flags().StringVarP(&nv, "value", "v", "", "config value")

	var eb, ec string
	cmd = command(root, "cleanExpiredCQ", "Clean expired ConsumeQueue on broker", with(func(a *admin.Admin) error { return a.CleanExpiredCQ(eb, ec) }))
	brokerClusterFlags(cmd, &eb, &ec)
	var ub2, uc2 string
	cmd = command(root, "cleanUnusedTopic", "Clean unused topic on broker", with(func(a *admin.Admin) error { return a.CleanUnusedTopic(ub2, uc2) }))
	brokerClusterFlags(cmd, &ub2, &uc2)

	var wb string
	cmd = command(root, "wipeWritePerm", "Wipe write perm of broker in all name server", with(func(a *admin.Admin) error { return a.WipeWritePerm(wb) }))
	cmd.Flags().StringVarP(&wb, "brokerName", "b", "", "broker name")
	var ab string
	cmd = command(root, "addWritePerm", "Add write perm of broker in all name server", with(func(a *admin.Admin) error { return a.AddWritePerm(ab) }))
	cmd.Flags().StringVarP(&ab, "brokerName", "b", "", "broker name")

	var ns, key, val string
	cmd = command(root, "updateKvConfig", "Create or update KV config", with(func(a *admin.Admin) error { return a.UpdateKvConfig(ns, key, val) }))
	cmd.Flags().StringVarP(&ns, "namespace", "s", "", "namespace")
	cmd.Flags().StringVarP(&key, "key", "k", "", "key")
	cmd.Flags().StringVarP(&val, "value", "v", "", "value")
	var dns, dkey string
	cmd = command(root, "deleteKvConfig", "Delete KV config", with(func(a *admin.Admin) error { return a.DeleteKvConfig(dns, dkey) }))
	cmd.Flags().StringVarP(&dns, "namespace", "s", "", "namespace")
	cmd.Flags().StringVarP(&dkey, "key", "k", "", "key")
}

func groupCommands(root *cobra.Command, with adminRunner) {
	var b, c string
	g := protocol.NewSubscriptionGroupConfig("")
	cmd := command(root, "updateSubGroup", "Update or create subscription group", with(func(a *admin.Admin) error { return a.UpdateSubGroup(b, c, g) }))
	brokerClusterFlags(cmd, &b, &c)
	f := cmd.Flags()
	f.StringVarP(&g.GroupName, "groupName", "g", "", "consumer group name")
	f.BoolVarP(&g.ConsumeEnable, "consumeEnable", "s", true, "consume enable")
	f.BoolVarP(&g.ConsumeFromMinEnable, "consumeFromMinEnable", "m", true, "from min offset")
	f.BoolVarP(&g.ConsumeBroadcastEnable, "consumeBroadcastEnable", "d", true, "broadcast")
	f.Int32VarP(&g.RetryQueueNums, "retryQueueNums", "q", 1, "retry queue number")
	f.Int32VarP(&g.RetryMaxTimes, "retryMaxTimes", "r", 16, "retry max times")
	f.Int64VarP(&g.BrokerID, "brokerId", "i", 0, "consumer from which broker id")
	f.Int64VarP(&g.WhichBrokerWhenConsumeSlowly, "whichBrokerWhenConsumeSlowly", "w", 1, "which broker id when consume slowly")
	f.BoolVarP(&g.NotifyConsumerIdsChangedEnable, "notifyConsumerIdsChanged", "a", true, "notify consumer ids changed")

	var db, dc, dg string
	cmd = command(root, "deleteSubGroup", "Delete subscription group from broker", with(func(a *admin.Admin) error { return a.DeleteSubGroup(db, dc, dg) }))
	brokerClusterFlags(cmd, &db, &dc)
	cmd.Flags().StringVarP(&dg, "groupName", "g", "", "subscription group name")

	var pg, pt string
	cmd = command(root, "consumerProgress", "Query consumer's progress, speed", with(func(a *admin.Admin) error { return a.ConsumerProgress(pg, pt) }))
	cmd.Flags().StringVarP(&pg, "groupName", "g", "", "consumer group name")
	cmd.Flags().StringVarP(&pt, "topicName", "t", "", "only this topic")

	var cg string
	cmd = command(root, "consumerConnection", "Query consumer's socket connection, client version and subscription", with(func(a *admin.Admin) error { return a.ConsumerConnection(cg) }))
	cmd.Flags().StringVarP(&cg, "consumerGroup", "g", "", "consumer group name")

	var prg, prt string
	cmd = command(root, "producerConnection", "Query producer's socket connection and client version", with(func(a *admin.Admin) error { return a.ProducerConnection(prg, prt) }))
	cmd.Flags().StringVarP(&prg, "producerGroup", "g", "", "producer group name")
	cmd.Flags().StringVarP(&prt, "topic", "t", "", "topic name")

	var rg, rtp, rs string
	var force bool
	cmd = command(root, "resetOffsetByTime", "Reset consumer offset by timestamp", with(func(a *admin.Admin) error {
		ts, err := admin.ParseTimestamp(rs)
		if err != nil {
			return err
		}
		return a.ResetOffsetByTime(rg, rtp, ts, force)
	}))
	cmd.Flags().StringVarP(&rg, "group", "g", "", "consumer group name")
	cmd.Flags().StringVarP(&rtp, "topic", "t", "", "topic name")
	cmd.Flags().StringVarP(&rs, "timestamp", "s", "", "now, milliseconds, or yyyy-MM-dd#HH:mm:ss:SSS")
	cmd.Flags().BoolVarP(&force, "force", "f", true, "move forward too (not only back)")

	var src, dst, ctp string
	var offline bool
	cmd = command(root, "cloneGroupOffset", "Clone offset from other group", with(func(a *admin.Admin) error { return a.CloneGroupOffset(src, dst, ctp, offline) }))
	cmd.Flags().StringVarP(&src, "srcGroup", "s", "", "source group")
	cmd.Flags().StringVarP(&dst, "destGroup", "d", "", "destination group")
	cmd.Flags().StringVarP(&ctp, "topic", "t", "", "topic")
	cmd.Flags().BoolVarP(&offline, "offline", "o", false, "the source group is offline")

	var bb string
	var order bool
	cmd = command(root, "brokerConsumeStats", "Fetch broker consume stats data", with(func(a *admin.Admin) error { return a.BrokerConsumeStats(bb, order) }))
	cmd.Flags().StringVarP(&bb, "brokerAddr", "b", "", "broker address")
	cmd.Flags().BoolVarP(&order, "order", "o", false, "only ordered topics")

	var sg, stp string
	cmd = command(root, "consumerStatus", "Query consumer's internal data structure", with(func(a *admin.Admin) error { return a.ConsumerStatus(sg, stp) }))
	cmd.Flags().StringVarP(&sg, "consumerGroup", "g", "", "consumer group name")
	cmd.Flags().StringVarP(&stp, "topic", "t", "", "topic name")
}

func messageCommands(root *cobra.Command, with adminRunner) {
	var o admin.SendOptions
	cmd := command(root, "sendMessage", "Send a message", with(func(a *admin.Admin) error { return a.SendMessage(o) }))
	f := cmd.Flags()
	f.StringVarP(&o.Topic, "topic", "t", "", "topic name")
	f.StringVarP(&o.Body, "body", "p", "", "UTF-8 string body")
	f.StringVarP(&o.Keys, "key", "k", "", "message keys")
	f.StringVarP(&o.Tags, "tags", "c", "", "message tags")
	f.StringVarP(&o.BrokerName, "broker", "b", "", "send to this broker")
	f.Int32VarP(&o.QueueID, "qid", "i", -1, "send to this queue")

	var kt, key string
	var begin, end int64
	cmd = command(root, "queryMsgByKey", "Query message by key", with(func(a *admin.Admin) error { return a.QueryMsgByKey(kt, key, begin, end) }))
	cmd.Flags().StringVarP(&kt, "topic", "t", "", "topic name")
	cmd.Flags().StringVarP(&key, "msgKey", "k", "", "message key")
	cmd.Flags().Int64VarP(&begin, "beginTimestamp", "b", 0, "begin timestamp (ms)")
	cmd.Flags().Int64VarP(&end, "endTimestamp", "e", 0, "end timestamp (ms; 0 = now)")

	var id string
	cmd = command(root, "queryMsgById", "Query message by offset message id", with(func(a *admin.Admin) error { return a.QueryMsgByID(id) }))
	cmd.Flags().StringVarP(&id, "msgId", "i", "", "offset message id")

	var ot, ob string
	var oq int32
	var off int64
	cmd = command(root, "queryMsgByOffset", "Query message by queue offset", with(func(a *admin.Admin) error { return a.QueryMsgByOffset(ot, ob, oq, off) }))
	cmd.Flags().StringVarP(&ot, "topic", "t", "", "topic name")
	cmd.Flags().StringVarP(&ob, "brokerName", "b", "", "broker name")
	cmd.Flags().Int32VarP(&oq, "queueId", "i", 0, "queue id")
	cmd.Flags().Int64VarP(&off, "offset", "o", 0, "queue offset")
}

func consumeCommands(root *cobra.Command, with adminRunner) {
	c := admin.ConsumeOptions{QueueID: -1, Offset: -1}
	cmd := command(root, "consumeMessage", "Consume message (print the messages of a topic's queues)", with(func(a *admin.Admin) error { return a.ConsumeMessage(c) }))
	f := cmd.Flags()
	f.StringVarP(&c.Topic, "topic", "t", "", "topic name")
	f.StringVarP(&c.BrokerName, "brokerName", "b", "", "only this broker")
	f.Int32VarP(&c.QueueID, "queueId", "i", -1, "only this queue")
	f.Int64VarP(&c.Offset, "offset", "o", -1, "queue offset to start from (default: the queue's start)")
	f.StringVarP(&c.Group, "consumerGroup", "g", "", "consumer group the pulls name")
	f.Int64VarP(&c.Begin, "beginTimestamp", "s", 0, "earliest store time, ms")
	f.Int64VarP(&c.End, "endTimestamp", "e", 0, "latest store time, ms")
	f.IntVarP(&c.Count, "messageNumber", "c", 128, "print at most this many")

	p := admin.ConsumeOptions{QueueID: -1, Offset: -1}
	var charset string
	cmd = command(root, "printMsg", "Print message detail of a topic", with(func(a *admin.Admin) error { return a.ConsumeMessage(p) }))
	f = cmd.Flags()
	f.StringVarP(&p.Topic, "topic", "t", "", "topic name")
	f.StringVarP(&charset, "charsetName", "c", "UTF-8", "body charset (UTF-8 only)")
	f.StringVarP(&p.SubExpression, "subExpression", "s", "*", "tag expression")
	f.Int64VarP(&p.Begin, "beginTimestamp", "b", 0, "earliest store time, ms")
	f.Int64VarP(&p.End, "endTimestamp", "e", 0, "latest store time, ms")

	q := admin.ConsumeOptions{Offset: -1}
	cmd = command(root, "printMsgByQueue", "Print messages of one queue", with(func(a *admin.Admin) error {
		if q.BrokerName == "" {
			return fmt.Errorf("-a broker name is required")
		}
		return a.ConsumeMessage(q)
	}))
	f = cmd.Flags()
	f.StringVarP(&q.Topic, "topic", "t", "", "topic name")
	f.StringVarP(&q.BrokerName, "brokerName", "a", "", "broker name")
	f.Int32VarP(&q.QueueID, "queueId", "i", 0, "queue id")
	f.StringVarP(&q.SubExpression, "subExpression", "s", "*", "tag expression")
	f.Int64VarP(&q.Begin, "beginTimestamp", "b", 0, "earliest store time, ms")
	f.Int64VarP(&q.End, "endTimestamp", "e", 0, "latest store time, ms")

	var ut, uid string
	cmd = command(root, "queryMsgByUniqueKey", "Query message by unique key (the client-side msgId)", with(func(a *admin.Admin) error { return a.QueryMsgByUniqueKey(ut, uid) }))
	cmd.Flags().StringVarP(&ut, "topic", "t", "", "topic name")
	cmd.Flags().StringVarP(&uid, "msgId", "i", "", "unique key")

	var rt string
	var amount, size int
	cmd = command(root, "checkMsgSendRT", "Check message send response time", with(func(a *admin.Admin) error { return a.CheckMsgSendRT(rt, amount, size) }))
	cmd.Flags().StringVarP(&rt, "topic", "t", "", "topic name")
	cmd.Flags().IntVarP(&amount, "amount", "a", 100, "message amount")
	cmd.Flags().IntVarP(&size, "size", "s", 128, "message size, bytes")

	var rc string
	var rAmount, rSize int
	cmd = command(root, "clusterRT", "List All clusters Message Send RT", with(func(a *admin.Admin) error { return a.ClusterRT(rc, rAmount, rSize) }))
	cmd.Flags().StringVarP(&rc, "cluster", "c", "", "only this cluster")
	cmd.Flags().IntVarP(&rAmount, "amount", "a", 100, "message amount per broker")
	cmd.Flags().IntVarP(&rSize, "size", "s", 128, "message size, bytes")

	var at, ips string
	cmd = command(root, "allocateMQ", "Allocate MQ (averagely) among client ids", with(func(a *admin.Admin) error { return a.AllocateMQ(at, splitList(ips)) }))
	cmd.Flags().StringVarP(&at, "topic", "t", "", "topic name")
	cmd.Flags().StringVarP(&ips, "ipList", "i", "", "client ids, comma separated")
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
