package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.apache.rocketmq.client.ClientConfig;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.admin.ConsumeStats;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.RPCHook;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Shared set-up for the Java compatibility tests: one mqd for the whole
 * run (started on first use, killed when JUnit's root context closes),
 * clients tuned to settle in about a second, and collectors for
 * consumed messages. Each test uses its own topic and group names.
 */
@ExtendWith(CompatBase.SharedMqd.class)
public abstract class CompatBase {
    /**
     * The shared mqd's broker.conf. The transaction keys are RocketMQ's;
     * they keep the check-back test to seconds. messageDelayLevel stays
     * Java's default (level 1 = 1 s, level 2 = 5 s).
     */
    static final String BROKER_CONF = String.join("\n",
            "brokerClusterName=DefaultCluster",
            "brokerName=mqd-a",
            "autoCreateTopicEnable=true",
            "autoCreateSubscriptionGroup=true",
            "mappedFileSizeCommitLog=16777216",
            "enablePropertyFilter=true",
            "traceTopicEnable=true",
            "transactionTimeOut=1000",
            "transactionCheckInterval=1000",
            "") ;

    protected static MqdProcess mqd;

    private static final AtomicInteger SEQ = new AtomicInteger();
    private final Deque<Runnable> closers = new ArrayDeque<>();

    /** Starts the shared mqd once per JUnit run. */
    public static final class SharedMqd implements BeforeAllCallback {
        @Override
        public void beforeAll(ExtensionContext ctx) {
            mqd = ctx.getRoot().getStore(ExtensionContext.Namespace.GLOBAL).getOrComputeIfAbsent("mqd", k -> {
                try {
                    return MqdProcess.start("shared", BROKER_CONF, Map.of());
                } catch (Exception e) {
                    throw new IllegalStateException("cannot start mqd", e);
                }
            }, MqdProcess.class);
        }
    }

    /** A name unique in this run: prefix_N. */
    protected static String unique(String prefix) {
        return prefix + "_" + ProcessHandle.current().pid() + "_" + SEQ.incrementAndGet();
    }

    /** Namesrv, a unique instance name (so clients in one JVM do not share a client instance) and short intervals. */
    protected static void tune(ClientConfig c, MqdProcess m) {
        c.setNamesrvAddr(m.namesrv());
        c.setInstanceName(unique("i"));
        c.setPollNameServerInterval(1000);
        c.setHeartbeatBrokerInterval(1000);
        c.setPersistConsumerOffsetInterval(1000);
        // Client→nameserver/broker admin calls (route, consumer list, ...):
        // 10 s instead of 3 s, so a peer JVM slowed by a loaded machine is
        // not a failure.
        c.setMqClientApiTimeout(10_000);
    }

    protected DefaultMQProducer producer(String group) throws Exception {
        return producer(new DefaultMQProducer(group), mqd);
    }

    protected DefaultMQProducer producer(DefaultMQProducer p, MqdProcess m) throws Exception {
        tune(p, m);
        p.setSendMsgTimeout(3000);
        p.start();
        closers.push(p::shutdown);
        return p;
    }

    /** A push consumer from the first offset; subscribe and start it yourself. */
    protected DefaultMQPushConsumer pushConsumer(String group) {
        return pushConsumer(group, null);
    }

    protected DefaultMQPushConsumer pushConsumer(String group, RPCHook hook) {
        DefaultMQPushConsumer c = hook == null ? new DefaultMQPushConsumer(group)
                : new DefaultMQPushConsumer(group, hook,
                        new org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely());
        tune(c, mqd);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.setConsumeThreadMin(2);
        c.setConsumeThreadMax(4);
        c.setAwaitTerminationMillisWhenShutdown(1000);
        closers.push(c::shutdown);
        return c;
    }

    protected DefaultMQPushConsumer startedPush(String group, String topic, String expr, Collector col) throws Exception {
        DefaultMQPushConsumer c = pushConsumer(group);
        c.subscribe(topic, expr);
        c.registerMessageListener(col);
        c.start();
        return c;
    }

    protected DefaultLitePullConsumer litePull(String group) {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer(group);
        tune(c, mqd);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.setPollTimeoutMillis(500);
        c.setPullThreadNums(2);
        c.setTopicMetadataCheckIntervalMillis(1000);
        closers.push(c::shutdown);
        return c;
    }

    /** Runs fn at the end of the test (before the clients made earlier shut down). */
    /**
     * Persists c's offsets, as its timer would (first run 10 s after start;
     * otherwise an offset rides on the next pull, held by long polling),
     * until the broker's consume stats for group on topic show every queue
     * caught up.
     */
    protected void awaitOffsetsCommitted(DefaultMQPushConsumer c, String group, String topic, int queues)
            throws Exception {
        DefaultMQAdminExt admin = new DefaultMQAdminExt(3000);
        tune(admin, mqd);
        admin.start();
        try {
            assertTrue(waitFor(5_000, () -> {
                c.getDefaultMQPushConsumerImpl().persistConsumerOffset();
                try {
                    ConsumeStats cs = admin.examineConsumeStats(group, topic);
                    return cs.getOffsetTable().size() == queues && cs.computeTotalDiff() == 0;
                } catch (Exception e) {
                    return false;
                }
            }), "consumer offsets of " + group + " never committed");
        } finally {
            admin.shutdown();
        }
    }

    protected void atEnd(Runnable fn) {
        closers.push(fn);
    }

    @AfterEach
    void closeClients() {
        while (!closers.isEmpty()) {
            try {
                closers.pop().run();
            } catch (RuntimeException e) {
                System.err.println("shutdown: " + e);
            }
        }
    }

    /** Waits up to timeoutMs for cond; false if it never held. */
    protected static boolean waitFor(long timeoutMs, BooleanSupplier cond) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!cond.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                return false;
            }
            Thread.sleep(20);
        }
        return true;
    }

    /** Waits until the nameserver routes topic to at least one writable queue. */
    protected static void awaitRoute(DefaultMQProducer p, String topic) throws Exception {
        boolean ok = waitFor(10_000, () -> {
            try {
                return !p.fetchPublishMessageQueues(topic).isEmpty();
            } catch (Exception e) {
                return false;
            }
        });
        assertTrue(ok, "no route for " + topic + " after 10 s");
    }

    /** Creates topic with n queues on every master routed for TBW102 and waits for its route. */
    protected static void createTopic(DefaultMQProducer p, String topic, int n) throws Exception {
        p.createTopic("TBW102", topic, n);
        awaitRoute(p, topic);
    }

    protected static String body(MessageExt m) {
        return new String(m.getBody(), StandardCharsets.UTF_8);
    }

    protected static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Records every message it is given and acknowledges it. */
    protected static class Collector implements MessageListenerConcurrently {
        final ConcurrentLinkedQueue<MessageExt> got = new ConcurrentLinkedQueue<>();

        @Override
        public ConsumeConcurrentlyStatus consumeMessage(List<MessageExt> msgs,
                org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext ctx) {
            got.addAll(msgs);
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        }

        /** Waits until n messages arrived; fails naming what arrived otherwise. */
        List<MessageExt> await(int n, long timeoutMs) throws InterruptedException {
            waitFor(timeoutMs, () -> got.size() >= n);
            assertTrue(got.size() >= n, "received " + got.size() + " of " + n + " messages in " + timeoutMs + " ms");
            return new ArrayList<>(got);
        }

        Set<String> bodies() {
            Set<String> s = new java.util.TreeSet<>();
            got.forEach(m -> s.add(body(m)));
            return s;
        }
    }

    static Collection<MessageQueue> queuesOf(DefaultLitePullConsumer c, String topic) throws Exception {
        return c.fetchMessageQueues(topic);
    }
}
