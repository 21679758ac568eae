package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Predicate;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.junit.jupiter.api.Test;

/**
 * Records the Java client's frames for internal/protocol's golden tests
 * (testdata/java_*.frame). Not part of the normal run (the class name
 * does not match Surefire's includes); regenerate with
 *
 *   mvn -q -B -f compat/java/pom.xml test -Pmixed -Dtest=CaptureJavaFrames
 *
 * (-Pmixed for the broker's REGISTER_BROKER frames, recorded from an
 * Apache RocketMQ 4.9.7 broker registering through a proxy.)
 *
 * A proxy in front of mqd's nameserver rewrites the broker port in route
 * answers to a second proxy in front of the broker, which records what
 * the client sends.
 */
class CaptureJavaFrames extends CompatBase {
    static final String TOPIC = "JavaGolden";

    @Test
    void capture() throws Exception {
        String brokerPort = Integer.toString(mqd.brokerPort);
        int proxyPort = sameWidthFreePort(brokerPort.length());
        try (FrameRecorder broker = new FrameRecorder(proxyPort, mqd.brokerPort, raw -> raw);
             FrameRecorder ns = new FrameRecorder(0, mqd.namesrvPort,
                     raw -> FrameRecorder.replaceAll(raw, "127.0.0.1:" + brokerPort, "127.0.0.1:" + proxyPort))) {
            String nsAddr = "127.0.0.1:" + ns.port();
            DefaultMQProducer p = new DefaultMQProducer("javapg");
            tune(p, mqd);
            p.setNamesrvAddr(nsAddr);
            p.setInstanceName("golden");
            p.start();
            atEnd(p::shutdown);
            Message m = new Message(TOPIC, "TagA", "k1", "hello java".getBytes());
            m.putUserProperty("p", "v");
            p.send(m);
            Collector col = new Collector();
            DefaultMQPushConsumer c = pushConsumer("javacg");
            c.setNamesrvAddr(nsAddr);
            c.setInstanceName("golden");
            c.subscribe(TOPIC, "TagA || TagB");
            c.registerMessageListener(col);
            c.start();
            col.await(1, 10_000);
            Thread.sleep(1500); // one more heartbeat with the consumer in it
            Path out = Path.of(System.getProperty("mqd.repo", "../..")).resolve("internal/protocol/testdata");
            save(broker, out, "java_send_v2_request.frame", cmd -> cmd.getCode() == RequestCode.SEND_MESSAGE_V2);
            save(broker, out, "java_heartbeat_request.frame", cmd -> cmd.getCode() == RequestCode.HEART_BEAT
                    && new String(cmd.getBody()).contains("javacg"));
            save(broker, out, "java_pull_request.frame", cmd -> cmd.getCode() == RequestCode.PULL_MESSAGE
                    && TOPIC.equals(cmd.getExtFields().get("topic")));
        }
    }

    /**
     * Request-reply: the replier's SEND_REPLY_MESSAGE_V2 (325), mqd's
     * PUSH_REPLY_MESSAGE_TO_CLIENT (326) and the requester's answer to it.
     */
    @Test
    void captureReply() throws Exception {
        String brokerPort = Integer.toString(mqd.brokerPort);
        int proxyPort = sameWidthFreePort(brokerPort.length());
        try (FrameRecorder broker = new FrameRecorder(proxyPort, mqd.brokerPort, raw -> raw);
             FrameRecorder ns = new FrameRecorder(0, mqd.namesrvPort,
                     raw -> FrameRecorder.replaceAll(raw, "127.0.0.1:" + brokerPort, "127.0.0.1:" + proxyPort))) {
            String nsAddr = "127.0.0.1:" + ns.port();
            String topic = "JavaGoldenRR";
            DefaultMQProducer requester = new DefaultMQProducer("javarequester");
            DefaultMQProducer replier = new DefaultMQProducer("javareplier");
            for (DefaultMQProducer p : new DefaultMQProducer[] {requester, replier}) {
                tune(p, mqd);
                p.setNamesrvAddr(nsAddr);
                p.setInstanceName(p == requester ? "golden-rq" : "golden-rp");
                p.start();
                atEnd(p::shutdown);
            }
            requester.send(new Message(topic, "create".getBytes()));
            DefaultMQPushConsumer c = pushConsumer("javarrcg");
            c.setNamesrvAddr(nsAddr);
            c.setInstanceName("golden-rc");
            c.subscribe(topic, "*");
            c.registerMessageListener((org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently) (msgs, ctx) -> {
                for (org.apache.rocketmq.common.message.MessageExt m : msgs) {
                    if (!"create".equals(new String(m.getBody()))) {
                        try {
                            replier.send(org.apache.rocketmq.client.utils.MessageUtil.createReplyMessage(m,
                                    ("re:" + new String(m.getBody())).getBytes()), 3000);
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    }
                }
                return org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            c.start();
            assertNotNull(requester.request(new Message(topic, "ping".getBytes()), 10_000));
            Path out = Path.of(System.getProperty("mqd.repo", "../..")).resolve("internal/protocol/testdata");
            save(broker, out, "java_send_reply_v2_request.frame",
                    cmd -> cmd.getCode() == RequestCode.SEND_REPLY_MESSAGE_V2);
            int push = broker.frames.stream().filter(f -> !f.fromClient())
                    .map(FrameRecorder.Frame::decode)
                    .filter(cmd -> !cmd.isResponseType() && cmd.getCode() == RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT)
                    .findFirst().orElseThrow().getOpaque();
            save(broker, out, "java_push_reply_response.frame", cmd -> cmd.isResponseType() && cmd.getOpaque() == push);
        }
    }

    /** REGISTER_BROKER (103) from the Java broker, JSON body then compressed body. */
    @Test
    void captureRegisterBroker() throws Exception {
        Path out = Path.of(System.getProperty("mqd.repo", "../..")).resolve("internal/protocol/testdata");
        Path dir = Path.of(System.getProperty("mqd.work", "target/mqd")).toAbsolutePath().resolve("capture-broker");
        MqdProcess.deleteTree(dir);
        try (FrameRecorder ns = new FrameRecorder(0, mqd.namesrvPort, raw -> raw);
             JavaRocketMQ broker = JavaRocketMQ.broker(dir, "java-golden", "127.0.0.1:" + ns.port(), "")) {
            Predicate<RemotingCommand> register = cmd -> cmd.getCode() == RequestCode.REGISTER_BROKER;
            broker.await(30_000, () -> count(ns, register) >= 1, "REGISTER_BROKER");
            save(ns, out, "java_register_broker_request.frame", register);
            // Switch to the compressed form; a brokerPermission update makes it register at once.
            RemotingCommand upd = RemotingCommand.createRequestCommand(RequestCode.UPDATE_BROKER_CONFIG, null);
            upd.setBody("compressedRegister=true\nbrokerPermission=6\n".getBytes());
            org.apache.rocketmq.remoting.RemotingClient rc = new org.apache.rocketmq.remoting.netty.NettyRemotingClient(
                    new org.apache.rocketmq.remoting.netty.NettyClientConfig());
            rc.start();
            try {
                rc.invokeSync(broker.addr(), upd, 5000);
            } finally {
                rc.shutdown();
            }
            Predicate<RemotingCommand> compressed = cmd -> register.test(cmd)
                    && "true".equals(cmd.getExtFields().get("compressed"));
            broker.await(40_000, () -> count(ns, compressed) >= 1, "compressed REGISTER_BROKER");
            save(ns, out, "java_register_broker_compressed_request.frame", compressed);
        }
    }

    private static long count(FrameRecorder r, Predicate<RemotingCommand> want) {
        return r.frames.stream().filter(f -> f.fromClient() && want.test(f.decode())).count();
    }

    private static void save(FrameRecorder r, Path dir, String name, Predicate<RemotingCommand> want) throws Exception {
        for (FrameRecorder.Frame f : r.frames) {
            if (f.fromClient() && want.test(f.decode())) {
                Files.write(dir.resolve(name), f.raw());
                System.out.println("captured " + name + " (" + f.raw().length + " bytes)");
                return;
            }
        }
        assertNotNull(null, "no frame for " + name);
    }

    /** A free port with as many digits as the broker's, so the route keeps its length. */
    private static int sameWidthFreePort(int digits) throws Exception {
        for (int i = 0; i < 100; i++) {
            try (ServerSocket s = new ServerSocket(0)) {
                if (Integer.toString(s.getLocalPort()).length() == digits) {
                    return s.getLocalPort();
                }
            }
        }
        throw new IllegalStateException("no free port of width " + digits);
    }
}
