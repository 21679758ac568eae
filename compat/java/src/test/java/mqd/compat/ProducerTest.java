package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.sysflag.MessageSysFlag;
import org.junit.jupiter.api.Test;

/** DefaultMQProducer's send modes, with the consumer checking what arrives. */
class ProducerTest extends CompatBase {

    private static Message msg(String topic, int i) {
        Message m = new Message(topic, "Tag" + (i % 3), "key-" + i + " alt-" + i, bytes("body-" + i));
        m.putUserProperty("seq", Integer.toString(i));
        m.putUserProperty("unicodé", "värde-€-" + i);
        return m;
    }

    /** Each received message has the tags, keys and properties msg(i) gave it. */
    private static void checkIntact(List<MessageExt> got, int n) {
        Map<String, MessageExt> byBody = new HashMap<>();
        got.forEach(m -> byBody.put(body(m), m));
        for (int i = 0; i < n; i++) {
            MessageExt m = byBody.get("body-" + i);
            assertNotNull(m, "message " + i + " missing");
            assertEquals("Tag" + (i % 3), m.getTags());
            assertEquals("key-" + i + " alt-" + i, m.getKeys());
            assertEquals(Integer.toString(i), m.getUserProperty("seq"));
            assertEquals("värde-€-" + i, m.getUserProperty("unicodé"));
            assertNotNull(m.getMsgId());
            assertNotEquals(0L, m.getStoreTimestamp());
        }
    }

    @Test
    void syncSend() throws Exception {
        String topic = unique("sync");
        DefaultMQProducer p = producer(unique("pg"));
        Set<String> ids = new TreeSet<>();
        for (int i = 0; i < 20; i++) {
            SendResult r = p.send(msg(topic, i));
            assertEquals(SendStatus.SEND_OK, r.getSendStatus());
            assertEquals(topic, r.getMessageQueue().getTopic());
            assertTrue(r.getQueueOffset() >= 0);
            assertNotNull(r.getOffsetMsgId());
            ids.add(r.getMsgId());
        }
        assertEquals(20, ids.size(), "message ids not unique");
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "*", col);
        List<MessageExt> got = col.await(20, 15_000);
        checkIntact(got, 20);
        Set<String> gotIds = new TreeSet<>();
        got.forEach(m -> gotIds.add(m.getMsgId()));
        assertEquals(ids, gotIds, "consumer sees other msgIds than the producer got");
    }

    @Test
    void asyncSend() throws Exception {
        String topic = unique("async");
        DefaultMQProducer p = producer(unique("pg"));
        p.send(msg(topic, 99)); // creates the topic before the async burst
        int n = 30;
        CountDownLatch done = new CountDownLatch(n);
        Map<Integer, Object> results = new ConcurrentHashMap<>();
        for (int i = 0; i < n; i++) {
            final int k = i;
            p.send(msg(topic, i), new SendCallback() {
                @Override
                public void onSuccess(SendResult r) {
                    results.put(k, r.getSendStatus());
                    done.countDown();
                }

                @Override
                public void onException(Throwable e) {
                    results.put(k, e);
                    done.countDown();
                }
            });
        }
        assertTrue(done.await(10, TimeUnit.SECONDS), "async callbacks missing");
        for (int i = 0; i < n; i++) {
            assertEquals(SendStatus.SEND_OK, results.get(i), "async send " + i);
        }
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "*", col);
        checkIntact(col.await(n + 1, 15_000), n);
    }

    @Test
    void onewaySend() throws Exception {
        String topic = unique("oneway");
        DefaultMQProducer p = producer(unique("pg"));
        p.send(msg(topic, 99));
        for (int i = 0; i < 10; i++) {
            p.sendOneway(msg(topic, i));
        }
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "*", col);
        checkIntact(col.await(11, 15_000), 10);
    }

    @Test
    void batchSend() throws Exception {
        String topic = unique("batch");
        DefaultMQProducer p = producer(unique("pg"));
        p.send(msg(topic, 99));
        List<Message> batch = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            Message m = msg(topic, i);
            batch.add(m);
        }
        SendResult r = p.send(batch);
        assertEquals(SendStatus.SEND_OK, r.getSendStatus());
        assertEquals(16, r.getMsgId().split(",").length, "batch result msgIds: " + r.getMsgId());
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "*", col);
        List<MessageExt> got = col.await(17, 15_000);
        checkIntact(got, 16);
        // All 16 in one queue with consecutive offsets.
        long first = r.getQueueOffset();
        Set<Long> offsets = new TreeSet<>();
        for (MessageExt m : got) {
            if (!body(m).equals("body-99")) {
                assertEquals(r.getMessageQueue().getQueueId(), m.getQueueId());
                offsets.add(m.getQueueOffset());
            }
        }
        assertEquals(first, (long) offsets.iterator().next());
        assertEquals(first + 15, (long) ((TreeSet<Long>) offsets).last());
    }

    /** The Java client zlib-compresses bodies of 4 KiB and more; the consumer must get them back whole. */
    @Test
    void largeCompressedBodies() throws Exception {
        String topic = unique("large");
        DefaultMQProducer p = producer(unique("pg"));
        int[] sizes = {4095, 4096, 64 * 1024, 1024 * 1024};
        Map<String, byte[]> sent = new HashMap<>();
        java.util.Random rnd = new java.util.Random(7);
        for (int size : sizes) {
            byte[] b = new byte[size];
            for (int j = 0; j < size; j++) {
                b[j] = (byte) ('a' + rnd.nextInt(4)); // compressible, not trivially
            }
            Message m = new Message(topic, "big", "k" + size, b);
            m.putUserProperty("size", Integer.toString(size));
            assertEquals(SendStatus.SEND_OK, p.send(m).getSendStatus());
            sent.put(Integer.toString(size), b);
        }
        Collector col = new Collector();
        startedPush(unique("cg"), topic, "*", col);
        for (MessageExt m : col.await(sizes.length, 15_000)) {
            String size = m.getUserProperty("size");
            assertTrue(java.util.Arrays.equals(sent.get(size), m.getBody()), "body of size " + size + " differs");
            boolean compressed = (m.getSysFlag() & MessageSysFlag.COMPRESSED_FLAG) != 0;
            assertEquals(Integer.parseInt(size) >= 4096, compressed, "compressed flag for size " + size);
            assertEquals("k" + size, m.getKeys());
        }
    }

    /**
     * The MQAdmin queries every Java client has: view by offset msgId
     * (VIEW_MESSAGE_BY_ID), query by key (QUERY_MESSAGE), min/max offset,
     * search by timestamp, earliest store time.
     */
    @Test
    void adminQueries() throws Exception {
        String topic = unique("query");
        DefaultMQProducer p = producer(unique("pg"));
        long t0 = System.currentTimeMillis();
        List<SendResult> rs = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            rs.add(p.send(msg(topic, i), (mqs, m, arg) -> mqs.get(0), null));
        }
        SendResult r3 = rs.get(3);
        MessageExt v = p.viewMessage(r3.getOffsetMsgId());
        assertEquals("body-3", body(v));
        assertEquals("Tag0", v.getTags());
        assertEquals("3", v.getUserProperty("seq"));

        // The index is built by the dispatcher after the send is acknowledged (as in Java).
        List<MessageExt> found = new ArrayList<>();
        long tq = System.currentTimeMillis();
        waitFor(5000, () -> {
            try {
                found.addAll(p.queryMessage(topic, "alt-5", 10, t0 - 60_000, System.currentTimeMillis() + 60_000)
                        .getMessageList());
            } catch (Exception e) {
                // 208 QUERY_NOT_FOUND until indexed
            }
            return !found.isEmpty();
        });
        System.out.println("query by key found after " + (System.currentTimeMillis() - tq) + " ms");
        assertEquals(1, found.size(), "query by key alt-5");
        assertEquals("body-5", body(found.get(0)));

        var mq = r3.getMessageQueue();
        assertEquals(0L, p.minOffset(mq));
        waitFor(5000, () -> { // the consume queue is written just after the acknowledgement
            try {
                return p.maxOffset(mq) >= 8;
            } catch (Exception e) {
                return false;
            }
        });
        assertEquals(8L, p.maxOffset(mq));
        long first = p.earliestMsgStoreTime(mq);
        assertTrue(first >= t0 - 5000 && first <= System.currentTimeMillis(), "earliest store time " + first);
        assertEquals(0L, p.searchOffset(mq, t0 - 60_000));
        // Past the last message: the last message's offset (Java's binary
        // search in the consume queue never answers maxOffset).
        assertEquals(7L, p.searchOffset(mq, System.currentTimeMillis() + 60_000));
    }
}
