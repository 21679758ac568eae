package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Set;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.admin.ConsumeStats;
import org.apache.rocketmq.common.admin.TopicStatsTable;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.common.protocol.body.ClusterInfo;
import org.apache.rocketmq.common.protocol.body.ConsumerConnection;
import org.apache.rocketmq.common.protocol.body.ProducerConnection;
import org.apache.rocketmq.common.protocol.route.TopicRouteData;
import org.apache.rocketmq.common.subscription.SubscriptionGroupConfig;
import org.apache.rocketmq.remoting.protocol.LanguageCode;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * DefaultMQAdminExt, the API under the Java mqadmin and dashboard, against
 * mqd. What mqd answers is checked against what the Java broker answers
 * (issue 15's admin requests).
 */
class AdminTest extends CompatBase {
    DefaultMQAdminExt admin;
    String topic;
    String group;

    @BeforeEach
    void startAdmin() throws Exception {
        admin = new DefaultMQAdminExt(3000);
        tune(admin, mqd);
        admin.start();
        atEnd(admin::shutdown);
        topic = unique("adm");
        group = unique("admcg");
    }

    /** A topic with messages and a running consumer group on it. */
    private void traffic() throws Exception {
        DefaultMQProducer p = producer(unique("pg"));
        createTopic(p, topic, 4);
        for (int i = 0; i < 8; i++) {
            p.send(new Message(topic, bytes("m" + i)));
        }
        Collector col = new Collector();
        DefaultMQPushConsumer c = startedPush(group, topic, "*", col);
        col.await(8, 10_000);
        awaitOffsetsCommitted(c, group, topic, 4);
    }

    @Test
    void clusterTopicsAndGroups() throws Exception {
        ClusterInfo ci = admin.examineBrokerClusterInfo();
        assertEquals(Set.of("mqd-a"), ci.getClusterAddrTable().get("DefaultCluster"));
        String addr = ci.getBrokerAddrTable().get("mqd-a").getBrokerAddrs().get(0L);
        assertEquals(mqd.broker(), addr);

        admin.createAndUpdateTopicConfig(addr, new TopicConfig(topic, 3, 3, 6));
        assertTrue(waitFor(10_000, () -> {
            try {
                TopicRouteData r = admin.examineTopicRouteInfo(topic);
                return r.getQueueDatas().size() == 1 && r.getQueueDatas().get(0).getWriteQueueNums() == 3;
            } catch (Exception e) {
                return false;
            }
        }), "route of the created topic");
        assertTrue(admin.fetchAllTopicList().getTopicList().contains(topic));

        DefaultMQProducer p = producer(unique("pg"));
        for (int i = 0; i < 6; i++) {
            p.send(new Message(topic, bytes("m" + i)));
        }
        // Consume queues are written by the dispatcher just after the send is
        // acknowledged (as in Java): wait for it rather than race it.
        TopicStatsTable[] stats = new TopicStatsTable[1];
        waitFor(5000, () -> {
            try {
                stats[0] = admin.examineTopicStats(topic);
                return stats[0].getOffsetTable().values().stream().mapToLong(o -> o.getMaxOffset()).sum() >= 6;
            } catch (Exception e) {
                return false;
            }
        });
        assertEquals(3, stats[0].getOffsetTable().size());
        assertEquals(6L, stats[0].getOffsetTable().values().stream().mapToLong(o -> o.getMaxOffset()).sum());

        SubscriptionGroupConfig g = new SubscriptionGroupConfig();
        g.setGroupName(group);
        g.setRetryMaxTimes(5);
        admin.createAndUpdateSubscriptionGroupConfig(addr, g);
        assertEquals(5, admin.examineSubscriptionGroupConfig(addr, group).getRetryMaxTimes());

        assertFalse(admin.fetchBrokerRuntimeStats(addr).getTable().isEmpty(), "broker runtime info empty");
    }

    @Test
    void consumerConnection() throws Exception {
        traffic();
        ConsumerConnection cc = admin.examineConsumerConnectionInfo(group);
        assertEquals(1, cc.getConnectionSet().size());
        assertTrue(cc.getSubscriptionTable().containsKey(topic));
    }

    @Test
    void consumeStats() throws Exception {
        traffic();
        // All the group's topics: the four queues, and %RETRY%group's one.
        // The client commits the retry queue's offset only once its first
        // pull there has come back empty, which a long poll may hold for up
        // to 15 s (as against a Java broker): wait for it.
        ConsumeStats[] stats = new ConsumeStats[1];
        waitFor(20_000, () -> {
            try {
                stats[0] = admin.examineConsumeStats(group);
                return stats[0].getOffsetTable().size() >= 5;
            } catch (Exception e) {
                return false;
            }
        });
        ConsumeStats cs = stats[0];
        assertEquals(0L, cs.computeTotalDiff());
        assertEquals(5, cs.getOffsetTable().size(), "queues " + cs.getOffsetTable().keySet());
        assertEquals(8L, cs.getOffsetTable().entrySet().stream().filter(e -> e.getKey().getTopic().equals(topic))
                .mapToLong(e -> e.getValue().getConsumerOffset()).sum());
    }

    @Test
    void brokerConfig() throws Exception {
        assertEquals("mqd-a", admin.getBrokerConfig(mqd.broker()).getProperty("brokerName"));
    }

    @Test
    void producerConnection() throws Exception {
        String pg = unique("pg");
        DefaultMQProducer p = producer(pg);
        p.send(new Message(topic, bytes("x")));
        // The start-up heartbeat reached no broker (no route yet); send the
        // one the client's heartbeat timer would a second later.
        p.getDefaultMQProducerImpl().getmQClientFactory().sendHeartbeatToAllBrokerWithLock();
        // The send auto-created the topic; the broker registers it with the
        // nameserver without waiting (as Java's does, one-way), and the
        // admin call below looks the topic's route up there first.
        awaitRoute(p, topic);
        ProducerConnection pc = admin.examineProducerConnectionInfo(pg, topic);
        assertEquals(1, pc.getConnectionSet().size());
        assertEquals(LanguageCode.JAVA, pc.getConnectionSet().iterator().next().getLanguage());
    }

    @Test
    void topicConsumedByWhom() throws Exception {
        traffic();
        assertTrue(admin.queryTopicConsumeByWho(topic).getGroupList().contains(group));
    }

    @Test
    void resetOffsetByTime() throws Exception {
        traffic();
        Map<MessageQueue, Long> reset = admin.resetOffsetByTimestamp(topic, group, 0L, true);
        assertEquals(4, reset.size());
        assertTrue(reset.values().stream().allMatch(o -> o == 0L), "reset to time 0: " + reset);
    }

    @Test
    void consumerRunningInfo() throws Exception {
        traffic();
        String clientId = admin.examineConsumerConnectionInfo(group).getConnectionSet().iterator().next().getClientId();
        assertTrue(admin.getConsumerRunningInfo(group, clientId, false).getMqTable().size() >= 4);
    }
}
