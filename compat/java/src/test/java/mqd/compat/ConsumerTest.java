package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.MessageSelector;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.common.protocol.heartbeat.MessageModel;
import org.junit.jupiter.api.Test;

/** Push (concurrent, orderly, clustering, broadcasting) and lite-pull consumers, tag and SQL92 filters. */
class ConsumerTest extends CompatBase {

    /** Queues of topic a push consumer currently holds (not counting its %RETRY% queue). */
    private static int held(DefaultMQPushConsumer c, String topic) {
        return (int) c.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().keySet()
                .stream().filter(mq -> mq.getTopic().equals(topic)).count();
    }

    @Test
    void orderlyPerQueue() throws Exception {
        String topic = unique("order");
        DefaultMQProducer p = producer(unique("pg"));
        createTopic(p, topic, 4);
        int orders = 6;
        int steps = 15;
        // orderId -> queueId chosen by the selector
        Map<Integer, Integer> queueOf = new HashMap<>();
        for (int s = 0; s < steps; s++) {
            for (int o = 0; o < orders; o++) {
                Message m = new Message(topic, "o", bytes(o + ":" + s));
                SendResult r = p.send(m, (mqs, msg, arg) -> mqs.get((Integer) arg % mqs.size()), o);
                Integer prev = queueOf.putIfAbsent(o, r.getMessageQueue().getQueueId());
                assertEquals(prev == null ? r.getMessageQueue().getQueueId() : prev,
                        r.getMessageQueue().getQueueId(), "selector sent order " + o + " to two queues");
            }
        }
        Map<Integer, List<Integer>> seen = new ConcurrentHashMap<>();
        ConcurrentLinkedQueue<String> bad = new ConcurrentLinkedQueue<>();
        DefaultMQPushConsumer c = pushConsumer(unique("cg"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                String[] f = body(m).split(":");
                int o = Integer.parseInt(f[0]);
                if (m.getQueueId() != queueOf.get(o)) {
                    bad.add("order " + o + " read from queue " + m.getQueueId());
                }
                seen.computeIfAbsent(o, k -> java.util.Collections.synchronizedList(new ArrayList<>()))
                        .add(Integer.parseInt(f[1]));
            }
            return ConsumeOrderlyStatus.SUCCESS;
        });
        c.start();
        waitFor(15_000, () -> seen.values().stream().mapToInt(List::size).sum() >= orders * steps);
        assertTrue(bad.isEmpty(), bad.toString());
        for (int o = 0; o < orders; o++) {
            List<Integer> want = new ArrayList<>();
            for (int s = 0; s < steps; s++) {
                want.add(s);
            }
            assertEquals(want, seen.get(o), "steps of order " + o);
        }
    }

    @Test
    void clusteringSharesQueues() throws Exception {
        String topic = unique("cluster");
        String group = unique("cg");
        DefaultMQProducer p = producer(unique("pg"));
        createTopic(p, topic, 4);
        Collector a = new Collector();
        Collector b = new Collector();
        DefaultMQPushConsumer ca = startedPush(group, topic, "*", a);
        DefaultMQPushConsumer cb = startedPush(group, topic, "*", b);
        assertTrue(waitFor(15_000, () -> held(ca, topic) == 2 && held(cb, topic) == 2),
                "rebalance did not split 4 queues 2/2: " + held(ca, topic) + "/" + held(cb, topic));
        int n = 40;
        for (int i = 0; i < n; i++) {
            p.send(new Message(topic, bytes("m" + i)));
        }
        waitFor(15_000, () -> a.got.size() + b.got.size() >= n);
        Set<String> all = new TreeSet<>(a.bodies());
        all.addAll(b.bodies());
        assertEquals(n, all.size(), "union of both consumers");
        assertTrue(!a.got.isEmpty() && !b.got.isEmpty(), "one consumer got nothing");
        Set<Integer> qa = new HashSet<>();
        a.got.forEach(m -> qa.add(m.getQueueId()));
        b.got.forEach(m -> assertTrue(!qa.contains(m.getQueueId()), "queue " + m.getQueueId() + " read by both"));
    }

    @Test
    void broadcastingDeliversToEach() throws Exception {
        String topic = unique("bcast");
        String group = unique("cg");
        DefaultMQProducer p = producer(unique("pg"));
        createTopic(p, topic, 4);
        Collector a = new Collector();
        Collector b = new Collector();
        DefaultMQPushConsumer[] cs = new DefaultMQPushConsumer[2];
        Collector[] cols = {a, b};
        for (int i = 0; i < 2; i++) {
            cs[i] = pushConsumer(group);
            cs[i].setMessageModel(MessageModel.BROADCASTING);
            cs[i].subscribe(topic, "*");
            cs[i].registerMessageListener(cols[i]);
            cs[i].start();
        }
        assertTrue(waitFor(15_000, () -> held(cs[0], topic) == 4 && held(cs[1], topic) == 4), "broadcast consumers do not hold all queues");
        int n = 20;
        for (int i = 0; i < n; i++) {
            p.send(new Message(topic, bytes("m" + i)));
        }
        a.await(n, 15_000);
        b.await(n, 15_000);
        assertEquals(n, a.bodies().size());
        assertEquals(n, b.bodies().size());
    }

    @Test
    void litePullAssign() throws Exception {
        String topic = unique("lpa");
        DefaultMQProducer p = producer(unique("pg"));
        createTopic(p, topic, 4);
        int n = 24;
        for (int i = 0; i < n; i++) {
            p.send(new Message(topic, bytes("m" + i)));
        }
        DefaultLitePullConsumer c = litePull(unique("cg"));
        c.setAutoCommit(false);
        c.start();
        Collection<MessageQueue> mqs = c.fetchMessageQueues(topic);
        assertEquals(4, mqs.size());
        c.assign(mqs);
        for (MessageQueue mq : mqs) {
            c.seek(mq, 0);
        }
        Set<String> got = pollAll(c, n, 10_000);
        assertEquals(n, got.size());
        c.commitSync();
        // Seek back on one queue: it is read again from offset 0.
        MessageQueue q = mqs.iterator().next();
        c.seek(q, 0);
        List<MessageExt> again = c.poll(3000);
        assertTrue(!again.isEmpty() && again.get(0).getQueueOffset() == 0, "seek to 0 did not re-read");
    }

    @Test
    void litePullSubscribe() throws Exception {
        String topic = unique("lps");
        String group = unique("cg");
        DefaultMQProducer p = producer(unique("pg"));
        createTopic(p, topic, 4);
        int n = 24;
        for (int i = 0; i < n; i++) {
            p.send(new Message(topic, bytes("m" + i)));
        }
        DefaultLitePullConsumer c = litePull(group);
        c.subscribe(topic, "*");
        c.start();
        assertEquals(n, pollAll(c, n, 15_000).size());
        // The committed offsets reach the broker: a second consumer of the group starts at the end.
        c.commitSync();
        Thread.sleep(1500); // persistConsumerOffsetInterval
        c.shutdown();
        p.send(new Message(topic, bytes("after")));
        DefaultLitePullConsumer c2 = litePull(group);
        c2.subscribe(topic, "*");
        c2.start();
        Set<String> rest = pollAll(c2, 1, 15_000);
        assertEquals(Set.of("after"), rest, "second consumer re-read committed messages");
    }

    /** Polls until n distinct bodies or the timeout; returns them. */
    private static Set<String> pollAll(DefaultLitePullConsumer c, int n, long timeoutMs) {
        Set<String> got = new TreeSet<>();
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (got.size() < n && System.currentTimeMillis() < deadline) {
            for (MessageExt m : c.poll(500)) {
                got.add(body(m));
            }
        }
        // give duplicates or extras a moment to show up
        for (MessageExt m : c.poll(300)) {
            got.add(body(m));
        }
        return got;
    }

    @Test
    void tagSubscription() throws Exception {
        String topic = unique("tags");
        DefaultMQProducer p = producer(unique("pg"));
        for (String tag : List.of("TagA", "TagB", "TagC", "TagA", "TagB", "TagC")) {
            p.send(new Message(topic, tag, bytes(tag)));
        }
        p.send(new Message(topic, bytes("untagged")));
        p.send(new Message(topic, "end", bytes("end")));
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "TagA || TagC || end", col);
        col.await(5, 15_000);
        Thread.sleep(300);
        List<String> tags = new ArrayList<>();
        col.got.forEach(m -> tags.add(m.getTags()));
        java.util.Collections.sort(tags);
        assertEquals(List.of("TagA", "TagA", "TagC", "TagC", "end"), tags);
    }

    /** A SQL92 subscription receives exactly the messages whose properties and tag match. */
    @Test
    void sql92Subscription() throws Exception {
        String topic = unique("sql");
        DefaultMQProducer p = producer(unique("pg"));
        for (int i = 0; i < 10; i++) {
            Message m = new Message(topic, i % 2 == 0 ? "even" : "odd", bytes("m" + i));
            m.putUserProperty("a", Integer.toString(i));
            p.send(m);
        }
        p.send(new Message(topic, "odd", bytes("no property"))); // a is NULL: a > 5 is not TRUE
        Collector col = new Collector();
        DefaultMQPushConsumer c = pushConsumer(unique("cg"));
        c.subscribe(topic, MessageSelector.bySql("a > 5 AND TAGS = 'odd'"));
        c.registerMessageListener(col);
        c.start(); // CHECK_CLIENT_CONFIG (46) accepted the expression
        col.await(2, 10_000);
        Thread.sleep(500);
        assertEquals(Set.of("m7", "m9"), col.bodies());
        assertEquals(2, col.got.size(), "duplicates");
    }

    /**
     * A SQL92 expression that does not compile: the broker refuses it at
     * CHECK_CLIENT_CONFIG with SUBSCRIPTION_PARSE_FAILED (23), and the Java
     * consumer's start fails with the broker's code and remark
     * (MQClientInstance.checkClientInBroker passes an MQClientException on).
     */
    @Test
    void sql92MalformedRejected() throws Exception {
        // The client checks only subscriptions whose topic has a route.
        String topic = unique("sql");
        producer(unique("pg")).send(new Message(topic, bytes("x")));
        DefaultMQPushConsumer c = pushConsumer(unique("cg"));
        c.subscribe(topic, MessageSelector.bySql("a > AND ("));
        c.registerMessageListener(new Collector());
        MQClientException e = assertThrows(MQClientException.class, c::start);
        assertEquals(ResponseCode.SUBSCRIPTION_PARSE_FAILED, e.getResponseCode(), e.getMessage());
        assertTrue(String.valueOf(e.getErrorMessage()).startsWith("Invalid MessageSelector. "),
                e.getErrorMessage());
    }
}
