package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.constant.PermName;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.protocol.RequestCode;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.common.protocol.body.ClusterInfo;
import org.apache.rocketmq.common.protocol.header.namesrv.GetRouteInfoRequestHeader;
import org.apache.rocketmq.common.protocol.route.QueueData;
import org.apache.rocketmq.common.protocol.route.TopicRouteData;
import org.apache.rocketmq.remoting.RemotingClient;
import org.apache.rocketmq.remoting.netty.NettyClientConfig;
import org.apache.rocketmq.remoting.netty.NettyRemotingClient;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * A mixed cluster: an Apache RocketMQ 4.9.7 namesrv and broker (from the
 * Maven jars, own JVMs) beside mqd. mqd's broker registers to both
 * nameservers, the Java broker too; one topic spans both brokers; Java
 * clients given both nameservers produce and consume across them. Then the
 * migration path: the Java broker turns read-only, new sends go to mqd,
 * consumers drain the old broker. Runs with -Pmixed.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MixedClusterTest extends CompatBase {
    static final String TOPIC = "MixedTopic";
    static JavaRocketMQ javaNs;
    static JavaRocketMQ javaBroker;
    static MqdProcess mqdM;
    static RemotingClient rc;
    static String namesrvs;
    static final Map<String, Integer> consumed = new HashMap<>();

    @BeforeAll
    static void startCluster() throws Exception {
        Path dir = Path.of(System.getProperty("mqd.work", "target/mqd")).toAbsolutePath().resolve("mixed");
        MqdProcess.deleteTree(dir);
        javaNs = JavaRocketMQ.namesrv(dir.resolve("namesrv"));
        mqdM = MqdProcess.start("mixed-mqd", BROKER_CONF.replace("brokerName=mqd-a", "brokerName=mqd-m"),
                Map.of(), javaNs.addr());
        javaBroker = JavaRocketMQ.broker(dir.resolve("broker"), "java-b", javaNs.addr() + ";" + mqdM.namesrv(), "");
        namesrvs = javaNs.addr() + ";" + mqdM.namesrv();
        rc = new NettyRemotingClient(new NettyClientConfig());
        rc.start();
        for (String ns : namesrvs.split(";")) {
            javaBroker.await(60_000, () -> brokers(ns).containsAll(Set.of("mqd-m", "java-b")),
                    "both brokers registered at " + ns);
        }
    }

    @AfterAll
    static void stopCluster() {
        if (rc != null) {
            rc.shutdown();
        }
        if (javaBroker != null) {
            javaBroker.close();
        }
        if (mqdM != null) {
            mqdM.close();
        }
        if (javaNs != null) {
            javaNs.close();
        }
    }

    /** Broker names a nameserver's cluster info lists (empty on error). */
    static Set<String> brokers(String ns) {
        try {
            RemotingCommand resp = rc.invokeSync(ns,
                    RemotingCommand.createRequestCommand(RequestCode.GET_BROKER_CLUSTER_INFO, null), 2000);
            if (resp.getCode() != ResponseCode.SUCCESS) {
                return Set.of();
            }
            return ClusterInfo.decode(resp.getBody(), ClusterInfo.class).getBrokerAddrTable().keySet();
        } catch (Exception e) {
            return Set.of();
        }
    }

    /** The topic's queue data per broker name from one nameserver (empty on error). */
    static Map<String, QueueData> route(String ns, String topic) {
        Map<String, QueueData> out = new HashMap<>();
        try {
            GetRouteInfoRequestHeader h = new GetRouteInfoRequestHeader();
            h.setTopic(topic);
            RemotingCommand resp = rc.invokeSync(ns,
                    RemotingCommand.createRequestCommand(RequestCode.GET_ROUTEINFO_BY_TOPIC, h), 2000);
            if (resp.getCode() == ResponseCode.SUCCESS) {
                for (QueueData q : TopicRouteData.decode(resp.getBody(), TopicRouteData.class).getQueueDatas()) {
                    out.put(q.getBrokerName(), q);
                }
            }
        } catch (Exception e) {
            // not yet
        }
        return out;
    }

    private DefaultMQProducer mixedProducer() throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(unique("pg"));
        tune(p, mqdM);
        p.setNamesrvAddr(namesrvs);
        p.start();
        atEnd(p::shutdown);
        return p;
    }

    /** A started push consumer of TOPIC given both nameservers. */
    private Collector mixedConsumer(String group) throws Exception {
        Collector col = new Collector();
        DefaultMQPushConsumer c = pushConsumer(group);
        c.setNamesrvAddr(namesrvs);
        c.subscribe(TOPIC, "*");
        c.registerMessageListener(col);
        c.start();
        return col;
    }

    private static String brokerOf(MessageExt m) {
        int port = ((InetSocketAddress) m.getStoreHost()).getPort();
        return port == mqdM.brokerPort ? "mqd-m" : port == javaBroker.port ? "java-b" : "port " + port;
    }

    @Test
    @Order(1)
    void topicSpansBothBrokers() throws Exception {
        DefaultMQProducer p = mixedProducer();
        p.createTopic("TBW102", TOPIC, 4);
        for (String ns : namesrvs.split(";")) {
            assertTrue(waitFor(40_000, () -> route(ns, TOPIC).keySet().containsAll(Set.of("mqd-m", "java-b"))),
                    ns + " routes " + TOPIC + " to " + route(ns, TOPIC).keySet());
        }
        awaitRoute(p, TOPIC);
        assertTrue(waitFor(10_000, () -> {
            try {
                return p.fetchPublishMessageQueues(TOPIC).size() == 8;
            } catch (Exception e) {
                return false;
            }
        }), "producer does not see 8 queues");
        Map<String, Integer> sentTo = new HashMap<>();
        int n = 40;
        for (int i = 0; i < n; i++) {
            SendResult r = p.send(new Message(TOPIC, "T", "k" + i, ("m" + i).getBytes(StandardCharsets.UTF_8)));
            sentTo.merge(r.getMessageQueue().getBrokerName(), 1, Integer::sum);
        }
        assertEquals(Set.of("mqd-m", "java-b"), sentTo.keySet(), "sends per broker: " + sentTo);

        Collector col = mixedConsumer("mixed_cg");
        col.await(n, 30_000);
        Map<String, Integer> from = new HashMap<>();
        col.got.forEach(m -> from.merge(brokerOf(m), 1, Integer::sum));
        assertEquals(sentTo, from, "consumed per broker");
        assertEquals(n, col.bodies().size());
    }

    /**
     * rocketmq-client-go v2.1.2 in the same cluster: internal/compat's
     * TestMixedClusterGoClients produces to both brokers and consumes the
     * Java producer's messages and its own from both; then a Java consumer
     * reads the Go producer's messages.
     */
    @Test
    @Order(2)
    void goClientsAcrossBoth() throws Exception {
        StringBuilder javaBodies = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            javaBodies.append(i == 0 ? "" : ",").append("m").append(i);
        }
        java.io.File repo = new java.io.File(System.getProperty("mqd.repo", "../..")).getCanonicalFile();
        Path log = javaBroker.dir.getParent().resolve("go-test.log");
        ProcessBuilder pb = new ProcessBuilder(MqdProcess.goTool(), "test", "-count=1", "-v",
                "-run", "^TestMixedClusterGoClients$", "./internal/compat")
                .directory(repo).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("MQD_MIXED_NAMESRV", namesrvs);
        pb.environment().put("MQD_MIXED_TOPIC", TOPIC);
        pb.environment().put("MQD_MIXED_BODIES", javaBodies.toString());
        Process go = pb.start();
        boolean done = go.waitFor(4, java.util.concurrent.TimeUnit.MINUTES);
        if (!done) {
            go.destroyForcibly();
        }
        String out = java.nio.file.Files.readString(log);
        assertTrue(done && go.exitValue() == 0 && out.contains("--- PASS: TestMixedClusterGoClients"),
                "Go clients in the mixed cluster:\n" + out);

        Collector col = mixedConsumer(unique("cg"));
        assertTrue(waitFor(30_000, () -> {
            Set<String> b = col.bodies();
            for (int i = 0; i < 20; i++) {
                if (!b.contains("go" + i)) {
                    return false;
                }
            }
            return true;
        }), "Java consumer did not get the Go producer's messages: " + col.bodies());
        Set<Integer> ports = new TreeSet<>();
        col.got.stream().filter(m -> body(m).startsWith("go"))
                .forEach(m -> ports.add(((InetSocketAddress) m.getStoreHost()).getPort()));
        assertEquals(2, ports.size(), "Go producer's messages read from brokers " + ports);
    }

    /**
     * Migration: the old (Java) broker is made read-only (brokerPermission=4,
     * what mqadmin updateBrokerConfig / wipeWritePerm do); producers then
     * write to mqd only while consumers drain the old broker.
     */
    @Test
    @Order(3)
    void readOnlyOldBrokerDrains() throws Exception {
        DefaultMQProducer p = mixedProducer();
        awaitRoute(p, TOPIC);
        // Leave unconsumed messages on both brokers.
        int before = 20;
        Map<String, Integer> sentTo = new HashMap<>();
        for (int i = 0; i < before; i++) {
            SendResult r = p.send(new Message(TOPIC, ("old" + i).getBytes(StandardCharsets.UTF_8)));
            sentTo.merge(r.getMessageQueue().getBrokerName(), 1, Integer::sum);
        }
        assertTrue(sentTo.containsKey("java-b"), "nothing left on the Java broker: " + sentTo);

        RemotingCommand upd = RemotingCommand.createRequestCommand(RequestCode.UPDATE_BROKER_CONFIG, null);
        upd.setBody("brokerPermission=4\n".getBytes(StandardCharsets.UTF_8));
        assertEquals(ResponseCode.SUCCESS, rc.invokeSync(javaBroker.addr(), upd, 5000).getCode());
        for (String ns : namesrvs.split(";")) {
            assertTrue(waitFor(20_000, () -> {
                QueueData q = route(ns, TOPIC).get("java-b");
                return q != null && !PermName.isWriteable(q.getPerm()) && PermName.isReadable(q.getPerm());
            }), ns + " still routes writes to java-b: " + route(ns, TOPIC));
        }
        // Producers learn the new route within their poll interval (1 s here).
        Thread.sleep(2500);
        for (int i = 0; i < 20; i++) {
            SendResult r = p.send(new Message(TOPIC, ("new" + i).getBytes(StandardCharsets.UTF_8)));
            assertEquals("mqd-m", r.getMessageQueue().getBrokerName(), "send " + i + " after java-b turned read-only");
        }
        Collector col = mixedConsumer("mixed_cg");
        waitFor(30_000, () -> {
            Set<String> b = col.bodies();
            for (int i = 0; i < 20; i++) {
                if (!b.contains("new" + i) || i < before && !b.contains("old" + i)) {
                    return false;
                }
            }
            return true;
        });
        Set<String> got = new TreeSet<>(col.bodies());
        for (int i = 0; i < before; i++) {
            assertTrue(got.contains("old" + i), "old" + i + " not drained");
        }
        for (int i = 0; i < 20; i++) {
            assertTrue(got.contains("new" + i), "new" + i + " not consumed");
        }
    }

    /**
     * The Java mqadmin against the mixed cluster: the same commands answer
     * for mqd and the Java broker alike, in the same table.
     */
    @Test
    @Order(4)
    void mqadminAgainstBoth() {
        String status = Mqadmin.run(namesrvs, "topicStatus", "-t", TOPIC);
        for (String b : List.of("mqd-m", "java-b")) {
            long rows = status.lines().filter(l -> l.startsWith(b + " ")).count();
            assertEquals(4, rows, "topicStatus rows of " + b + ":\n" + status);
        }
        for (String ns : namesrvs.split(";")) {
            String route = Mqadmin.run(ns, "topicRoute", "-t", TOPIC);
            assertTrue(route.contains("\"brokerName\":\"mqd-m\"") && route.contains("\"brokerName\":\"java-b\""),
                    "topicRoute at " + ns + ":\n" + route);
        }
        // k0..k39 went to both brokers in topicSpansBothBrokers: a key query asks both
        for (int i = 0; i < 6; i++) {
            String out = Mqadmin.run(namesrvs, "queryMsgByKey", "-t", TOPIC, "-k", "k" + i);
            assertTrue(out.startsWith("#Message ID") && out.lines().skip(1).anyMatch(l -> !l.isBlank()),
                    "queryMsgByKey k" + i + ":\n" + out);
        }
        for (JavaOrMqd b : List.of(new JavaOrMqd("java-b", javaBroker.addr()), new JavaOrMqd("mqd-m", mqdM.broker()))) {
            Map<String, String> kv = Mqadmin.keyValues(Mqadmin.run(namesrvs, "brokerStatus", "-b", b.addr));
            assertEquals("V4_9_7", kv.get("brokerVersionDesc"), b.name + " brokerStatus " + kv);
            assertTrue(Long.parseLong(kv.get("commitLogMaxOffset")) > 0, b.name + " brokerStatus " + kv);
        }
    }

    private record JavaOrMqd(String name, String addr) {
    }

    /** brokerStatus of mqd prints every key the Java broker's does. */
    @Test
    @Order(5)
    void brokerStatusSameKeys() throws Exception {
        // A Java broker answers brokerStatus with NoSuchElementException until
        // its store's TPS sampler has run once (a second or so after start).
        AtomicReference<String> javaStatus = new AtomicReference<>();
        assertTrue(waitFor(10_000, () -> {
            try {
                javaStatus.set(Mqadmin.run(namesrvs, "brokerStatus", "-b", javaBroker.addr()));
                return true;
            } catch (AssertionError e) {
                return false;
            }
        }), "the Java broker never answered brokerStatus");
        Set<String> javaKeys = Mqadmin.keyValues(javaStatus.get()).keySet();
        Set<String> missing = new TreeSet<>(javaKeys);
        missing.removeIf(k -> k.contains("/")); // per-directory keys (commitLogDiskRatio_<path>) name the Java store
        missing.removeAll(Mqadmin.keyValues(Mqadmin.run(namesrvs, "brokerStatus", "-b", mqdM.broker())).keySet());
        assertTrue(missing.isEmpty(), "mqd's brokerStatus lacks the Java broker's keys " + missing);
    }
}
