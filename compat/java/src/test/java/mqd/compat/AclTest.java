package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.remoting.RPCHook;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Plain ACL: an mqd started with aclEnable=true and a plain_acl.yml
 * account in $ROCKETMQ_HOME/conf, where the Java broker reads it and where
 * mqd looks when aclFile is not set (SECURITY.md "## ACL"), and clients
 * signing with AclClientRPCHook.
 */
class AclTest extends CompatBase {
    static final String AK = "mqdcompat";
    static final String SK = "mqdcompat-secret";
    static MqdProcess acl;

    @BeforeAll
    static void startAclBroker() throws Exception {
        Path home = Path.of(System.getProperty("mqd.work", "target/mqd")).toAbsolutePath().resolve("acl-home");
        MqdProcess.deleteTree(home);
        Files.createDirectories(home.resolve("conf"));
        Files.writeString(home.resolve("conf/plain_acl.yml"), String.join("\n",
                "globalWhiteRemoteAddresses: []",
                "accounts:",
                "  - accessKey: " + AK,
                "    secretKey: " + SK,
                "    whiteRemoteAddress:",
                "    admin: false",
                "    defaultTopicPerm: PUB|SUB",
                "    defaultGroupPerm: PUB|SUB",
                ""));
        // The first HMAC signature loads and initialises the JCE (seconds on a
        // busy machine); do it here so that it does not eat a send timeout.
        new AclClientRPCHook(new SessionCredentials(AK, SK)).doBeforeRequest("127.0.0.1:1",
                org.apache.rocketmq.remoting.protocol.RemotingCommand.createRequestCommand(0, null));
        // No aclFile key: the documented default, $ROCKETMQ_HOME/conf/plain_acl.yml.
        acl = MqdProcess.start("acl", BROKER_CONF + "aclEnable=true\n", Map.of("ROCKETMQ_HOME", home.toString()));
    }

    @AfterAll
    static void stopAclBroker() {
        if (acl != null) {
            acl.close();
        }
    }

    private DefaultMQProducer signedProducer(String ak, String sk) throws Exception {
        RPCHook hook = new AclClientRPCHook(new SessionCredentials(ak, sk));
        DefaultMQProducer p = new DefaultMQProducer(unique("pg"), hook);
        p.setRetryTimesWhenSendFailed(0);
        return producer(p, acl);
    }

    /** The account's signed send and subscription work. */
    @Test
    void signedClientsWork() throws Exception {
        String topic = unique("acl");
        DefaultMQProducer p = signedProducer(AK, SK);
        assertEquals(SendStatus.SEND_OK, p.send(new Message(topic, bytes("signed"))).getSendStatus());
        Collector col = new Collector();
        DefaultMQPushConsumer c = pushConsumer(unique("cg"), new AclClientRPCHook(new SessionCredentials(AK, SK)));
        tune(c, acl);
        c.subscribe(topic, "*");
        c.registerMessageListener(col);
        c.start();
        col.await(1, 10_000);
    }

    /**
     * A wrong secret, an unknown account and an unsigned client are refused,
     * each with the Java broker's AclException remark, which the Java client
     * reports in its MQBrokerException.
     */
    @Test
    void badCredentialsRefused() throws Exception {
        String topic = unique("acl");
        signedProducer(AK, SK).send(new Message(topic, bytes("create")));
        List<String> accepted = new ArrayList<>();
        // credentials (null: unsigned) and the Java broker's AclException message for them
        Object[][] cases = {
            {new String[] {AK, "wrong-secret"}, "Check signature failed for accessKey=" + AK},
            {new String[] {"nobody1", SK}, "No acl config for nobody1"},
            {null, "No accessKey is configured"},
        };
        for (Object[] c : cases) {
            String[] cred = (String[]) c[0];
            DefaultMQProducer p;
            if (cred == null) {
                p = new DefaultMQProducer(unique("pg"));
                p.setRetryTimesWhenSendFailed(0);
                producer(p, acl);
            } else {
                p = signedProducer(cred[0], cred[1]);
            }
            String who = cred == null ? "unsigned" : cred[0] + "/" + cred[1];
            try {
                p.send(new Message(topic, bytes("should be refused")));
                accepted.add(who);
            } catch (Exception e) {
                // The Java client retries SYSTEM_ERROR, then reports "Send [1] times, still
                // failed" caused by the broker's answer: CODE: 1 DESC: ...AclException: ...
                MQBrokerException b = brokerCause(e);
                if (b == null) {
                    fail(who + " refused without the broker's AclException: " + rootMessage(e), e);
                }
                assertEquals(ResponseCode.SYSTEM_ERROR, b.getResponseCode(), who);
                String remark = String.valueOf(b.getErrorMessage());
                assertTrue(remark.contains("org.apache.rocketmq.acl.common.AclException: " + c[1]),
                        who + " refused with another remark: " + remark);
            }
        }
        if (!accepted.isEmpty()) {
            fail("send by " + accepted + " was accepted");
        }
        // and the refusals did not store anything: only "create" is there
        Collector col = new Collector();
        DefaultMQPushConsumer c = pushConsumer(unique("cg"), new AclClientRPCHook(new SessionCredentials(AK, SK)));
        tune(c, acl);
        c.subscribe(topic, "*");
        c.registerMessageListener(col);
        c.start();
        col.await(1, 10_000);
        Thread.sleep(500);
        assertEquals(Set.of("create"), col.bodies());
    }

    private static MQBrokerException brokerCause(Throwable t) {
        for (; t != null; t = t.getCause()) {
            if (t instanceof MQBrokerException) {
                return (MQBrokerException) t;
            }
        }
        return null;
    }

    private static String rootMessage(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (; t != null; t = t.getCause()) {
            sb.append(t.getMessage()).append(" | ");
        }
        return sb.toString();
    }
}
