package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.Test;

/** Delay levels, retries and the dead-letter queue, transactions. */
class DeliveryTest extends CompatBase {

    /** Delay level 2 is 5 s (messageDelayLevel "1s 5s 10s 30s 1m ..."). */
    @Test
    void delayLevel() throws Exception {
        String topic = unique("delay");
        DefaultMQProducer p = producer(unique("pg"));
        p.send(new Message(topic, bytes("create")));
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "*", col);
        col.await(1, 10_000);
        Message m = new Message(topic, bytes("delayed"));
        m.setDelayTimeLevel(2);
        long sent = System.currentTimeMillis();
        assertEquals(SendStatus.SEND_OK, p.send(m).getSendStatus());
        col.await(2, 10_000);
        long after = System.currentTimeMillis() - sent;
        // The consumer sees the original topic and the level, never SCHEDULE_TOPIC_XXXX.
        MessageExt d = col.got.stream().filter(x -> body(x).equals("delayed")).findFirst().orElseThrow();
        assertEquals(topic, d.getTopic());
        // The Java broker delivers at store time + 5 s on its 100 ms tick; the
        // push consumer's long poll adds little. Not sooner, and not much later.
        assertTrue(after >= 5000 && after <= 6500, "delay level 2 (5 s) delivered after " + after + " ms");
        assertEquals("2", d.getProperty(MessageConst.PROPERTY_DELAY_TIME_LEVEL));
        assertEquals(2, col.got.size(), "delivered once each: " + col.bodies());
    }

    /**
     * RECONSUME_LATER with maxReconsumeTimes 2: delivered three times
     * (reconsumeTimes 0, 1, 2) through %RETRY%group, then stored in
     * %DLQ%group with the original topic, keys and properties.
     */
    @Test
    void retryThenDeadLetter() throws Exception {
        String topic = unique("retry");
        String group = unique("cg");
        DefaultMQProducer p = producer(unique("pg"));
        Message m = new Message(topic, "T", "retry-key", bytes("fail me"));
        m.putUserProperty("p", "v");
        SendResult sr = p.send(m);
        ConcurrentLinkedQueue<Integer> times = new ConcurrentLinkedQueue<>();
        List<Long> at = new java.util.concurrent.CopyOnWriteArrayList<>();
        DefaultMQPushConsumer c = pushConsumer(group);
        c.setMaxReconsumeTimes(2);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt x : msgs) {
                times.add(x.getReconsumeTimes());
                at.add(System.currentTimeMillis());
            }
            ctx.setDelayLevelWhenNextConsume(1); // level 1: 1 s
            return ConsumeConcurrentlyStatus.RECONSUME_LATER;
        });
        c.start();
        assertTrue(waitFor(20_000, () -> times.size() >= 3), "deliveries: " + times);
        Thread.sleep(500);
        assertEquals(List.of(0, 1, 2), new ArrayList<>(times));
        for (int i = 1; i < at.size(); i++) {
            long gap = at.get(i) - at.get(i - 1);
            assertTrue(gap >= 1000 && gap <= 2500, "retry " + i + " at level 1 (1 s) after " + gap + " ms");
        }

        String dlq = MixAll.DLQ_GROUP_TOPIC_PREFIX + group;
        awaitRoute(p, dlq);
        DefaultLitePullConsumer r = litePull(unique("dlqreader"));
        r.start();
        List<MessageQueue> mqs = new ArrayList<>(r.fetchMessageQueues(dlq));
        r.assign(mqs);
        for (MessageQueue mq : mqs) {
            r.seek(mq, 0);
        }
        List<MessageExt> dead = new ArrayList<>();
        waitFor(10_000, () -> {
            dead.addAll(r.poll(300));
            return !dead.isEmpty();
        });
        assertEquals(1, dead.size(), "DLQ holds " + dead.size() + " messages");
        MessageExt x = dead.get(0);
        assertEquals("fail me", body(x));
        assertEquals("retry-key", x.getKeys());
        assertEquals("v", x.getUserProperty("p"));
        assertEquals(topic, x.getProperty(MessageConst.PROPERTY_RETRY_TOPIC));
        assertEquals(sr.getMsgId(), x.getProperty(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX));
    }

    /** A consumer's delayLevelWhenNextConsume 2 (5 s) spaces the redelivery. */
    @Test
    void retryBackoff() throws Exception {
        String topic = unique("backoff");
        DefaultMQProducer p = producer(unique("pg"));
        p.send(new Message(topic, bytes("x")));
        List<Long> at = new java.util.concurrent.CopyOnWriteArrayList<>();
        List<MessageExt> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        DefaultMQPushConsumer c = pushConsumer(unique("cg"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            at.add(System.currentTimeMillis());
            seen.addAll(msgs);
            if (at.size() > 1) {
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            }
            ctx.setDelayLevelWhenNextConsume(2);
            return ConsumeConcurrentlyStatus.RECONSUME_LATER;
        });
        c.start();
        assertTrue(waitFor(15_000, () -> at.size() >= 2), "no redelivery within 15 s");
        long gap = at.get(1) - at.get(0);
        assertTrue(gap >= 5000 && gap <= 6500, "level 2 (5 s) redelivered after " + gap + " ms");
        Thread.sleep(500);
        assertEquals(2, at.size(), "consumed once after the retry");
        // The retry comes back under the original topic, counted once.
        assertEquals(topic, seen.get(1).getTopic());
        assertEquals(1, seen.get(1).getReconsumeTimes());
        assertEquals(seen.get(0).getMsgId(), seen.get(1).getMsgId());
    }

    /**
     * TransactionMQProducer: a committed message is delivered, a rolled-back
     * one never, and an UNKNOW one is decided by the broker's check-back
     * (transactionTimeOut / transactionCheckInterval 1 s in the suite's broker.conf).
     */
    @Test
    void transactionWithCheckBack() throws Exception {
        String topic = unique("tx");
        DefaultMQProducer plain = producer(unique("pg"));
        plain.send(new Message(topic, bytes("create")));
        Map<String, AtomicInteger> checks = new ConcurrentHashMap<>();
        TransactionMQProducer p = new TransactionMQProducer(unique("txpg"));
        p.setTransactionListener(new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                return (LocalTransactionState) arg;
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                checks.computeIfAbsent(body(msg), k -> new AtomicInteger()).incrementAndGet();
                return body(msg).equals("unknown-then-commit") ? LocalTransactionState.COMMIT_MESSAGE
                        : LocalTransactionState.ROLLBACK_MESSAGE;
            }
        });
        producer(p, mqd);
        Set<String> sentOk = new TreeSet<>();
        for (Object[] c : new Object[][] {
                {"commit", LocalTransactionState.COMMIT_MESSAGE},
                {"rollback", LocalTransactionState.ROLLBACK_MESSAGE},
                {"unknown-then-commit", LocalTransactionState.UNKNOW}}) {
            TransactionSendResult r;
            try {
                r = p.sendMessageInTransaction(new Message(topic, bytes((String) c[0])), c[1]);
            } catch (Exception e) {
                throw new AssertionError("transactional send refused: " + e.getMessage(), e);
            }
            assertEquals(SendStatus.SEND_OK, r.getSendStatus(), "transactional half message " + c[0]);
            assertEquals(c[1], r.getLocalTransactionState());
            sentOk.add((String) c[0]);
        }
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "*", col);
        assertTrue(waitFor(15_000, () -> col.bodies().contains("unknown-then-commit")),
                "transactional message never committed by check-back; checks=" + checks + " got=" + col.bodies());
        Thread.sleep(500);
        assertEquals(Set.of("create", "commit", "unknown-then-commit"), col.bodies());
        assertEquals(3, col.got.size(), "each committed message delivered once: " + col.bodies());
        // Only the UNKNOW message is checked back; decided ones never are.
        assertEquals(Set.of("unknown-then-commit"), checks.keySet(), "checks " + checks);
        MessageExt tx = col.got.stream().filter(x -> body(x).equals("commit")).findFirst().orElseThrow();
        assertEquals(topic, tx.getTopic());
        assertEquals("true", tx.getProperty(MessageConst.PROPERTY_TRANSACTION_PREPARED));
    }
}
