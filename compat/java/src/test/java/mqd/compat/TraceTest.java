package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.common.topic.TopicValidator;
import org.junit.jupiter.api.Test;

/** Message trace: producer and consumer with enableMsgTrace write records to RMQ_SYS_TRACE_TOPIC. */
class TraceTest extends CompatBase {

    @Test
    void traceRecordsReachTraceTopic() throws Exception {
        String topic = unique("traced");
        String group = unique("cg");
        DefaultMQProducer p = producer(new DefaultMQProducer(unique("pg"), true), mqd);
        SendResult sr = p.send(new Message(topic, "TagT", "trace-key", bytes("traced body")));
        Collector col = new Collector();
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group, true);
        tune(c, mqd);
        c.setConsumeFromWhere(org.apache.rocketmq.common.consumer.ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.registerMessageListener(col);
        c.start();
        atEnd(c::shutdown);
        col.await(1, 10_000);

        DefaultLitePullConsumer r = litePull(unique("tracereader"));
        r.start();
        String traceTopic = TopicValidator.RMQ_SYS_TRACE_TOPIC;
        awaitRoute(p, traceTopic);
        List<MessageQueue> mqs = new ArrayList<>(r.fetchMessageQueues(traceTopic));
        r.assign(mqs);
        for (MessageQueue mq : mqs) {
            r.seek(mq, 0);
        }
        // Records: fields split by \u0001, records ended by \u0002; the first field is the type.
        List<String[]> mine = new ArrayList<>();
        boolean[] types = new boolean[3]; // Pub, SubBefore, SubAfter
        waitFor(15_000, () -> {
            for (MessageExt m : r.poll(300)) {
                for (String rec : body(m).split("\u0002")) {
                    String[] f = rec.split("\u0001");
                    if (rec.contains(sr.getMsgId())) {
                        mine.add(f);
                        types[0] |= f[0].equals("Pub");
                        types[1] |= f[0].equals("SubBefore");
                        types[2] |= f[0].equals("SubAfter");
                    }
                }
            }
            return types[0] && types[1] && types[2];
        });
        assertTrue(types[0], "no Pub trace record for " + sr.getMsgId());
        assertTrue(types[1] && types[2], "no SubBefore/SubAfter trace records for " + sr.getMsgId());
        String[] pub = mine.stream().filter(f -> f[0].equals("Pub")).findFirst().orElseThrow();
        // Pub: type, timestamp, regionId, group, topic, msgId, tags, keys, storeHost, ...
        assertEquals(topic, pub[4]);
        assertEquals(sr.getMsgId(), pub[5]);
        assertEquals("TagT", pub[6]);
        assertEquals("trace-key", pub[7]);
    }
}
