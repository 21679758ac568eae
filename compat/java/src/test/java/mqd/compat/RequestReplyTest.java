package mqd.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.utils.MessageUtil;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.junit.jupiter.api.Test;

/**
 * Request-reply (4.6+): DefaultMQProducer.request sends a message with a
 * correlation id; the responder's reply goes to <cluster>_REPLY_TOPIC
 * through SEND_REPLY_MESSAGE_V2 (325) and the broker pushes it to the
 * requester with PUSH_REPLY_MESSAGE_TO_CLIENT (326) (internal/broker/reply.go).
 */
class RequestReplyTest extends CompatBase {

    @Test
    void requestGetsReply() throws Exception {
        String topic = unique("rr");
        DefaultMQProducer requester = producer(unique("pg"));
        requester.send(new Message(topic, bytes("create")));
        DefaultMQProducer replier = producer(unique("replypg"));
        ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
        DefaultMQPushConsumer c = pushConsumer(unique("cg"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                if (body(m).equals("create")) {
                    continue;
                }
                try {
                    replier.send(MessageUtil.createReplyMessage(m, bytes("re:" + body(m))), 3000);
                } catch (Exception e) {
                    errors.add(e.toString());
                }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Message reply;
        try {
            reply = requester.request(new Message(topic, bytes("ping")), 3000);
        } catch (Exception e) {
            throw new AssertionError("no reply to the request (responder errors: " + errors + ")", e);
        }
        assertEquals("re:ping", new String(reply.getBody(), java.nio.charset.StandardCharsets.UTF_8));
    }
}
