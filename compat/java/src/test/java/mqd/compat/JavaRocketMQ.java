package mqd.compat;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * An Apache RocketMQ 4.9.7 namesrv or broker in its own JVM, started from
 * the Maven jars (classpath in target/rocketmq-server.classpath, written by
 * the `mixed` profile) with a small heap and a home directory holding the
 * logback file the startup class requires (NamesrvStartup, BrokerStartup).
 */
final class JavaRocketMQ implements ExtensionContext.Store.CloseableResource, AutoCloseable {
    private final Process process;
    final Path dir;
    final int port;

    private JavaRocketMQ(Process process, Path dir, int port) {
        this.process = process;
        this.dir = dir;
        this.port = port;
    }

    String addr() {
        return "127.0.0.1:" + port;
    }

    static JavaRocketMQ namesrv(Path dir) throws Exception {
        int port = MqdProcess.freePort();
        home(dir, "logback_namesrv.xml");
        Files.writeString(dir.resolve("namesrv.properties"), "listenPort=" + port + "\nrocketmqHome=" + dir + "\n"
                + "kvConfigPath=" + dir.resolve("kvConfig.json") + "\n");
        JavaRocketMQ j = start(dir, "org.apache.rocketmq.namesrv.NamesrvStartup", port,
                "-c", dir.resolve("namesrv.properties").toString());
        j.await(30_000, () -> portOpen(port), "namesrv port " + port);
        return j;
    }

    /** A broker named name registering to namesrvs; extraConf is appended to its broker.conf. */
    static JavaRocketMQ broker(Path dir, String name, String namesrvs, String extraConf) throws Exception {
        int port = brokerPort();
        home(dir, "logback_broker.xml");
        Files.writeString(dir.resolve("broker.conf"), String.join("\n",
                "brokerClusterName=DefaultCluster",
                "brokerName=" + name,
                "brokerId=0",
                "brokerRole=ASYNC_MASTER",
                "flushDiskType=ASYNC_FLUSH",
                "brokerIP1=127.0.0.1",
                "listenPort=" + port,
                "namesrvAddr=" + namesrvs,
                "rocketmqHome=" + dir,
                "storePathRootDir=" + dir.resolve("store"),
                "storePathCommitLog=" + dir.resolve("store/commitlog"),
                "mappedFileSizeCommitLog=16777216",
                "mappedFileSizeConsumeQueue=60000",
                "autoCreateTopicEnable=true",
                "autoCreateSubscriptionGroup=true",
                "diskMaxUsedSpaceRatio=95",
                // Flow control would refuse sends (code 2) that wait > 200 ms in
                // the send queue or hold the page-cache lock > 1 s: on a loaded
                // test machine that is load, not a broker fault.
                "waitTimeMillsInSendQueue=5000",
                "osPageCacheBusyTimeOutMills=5000",
                extraConf, ""));
        JavaRocketMQ j = start(dir, "org.apache.rocketmq.broker.BrokerStartup", port,
                "-c", dir.resolve("broker.conf").toString());
        j.await(60_000, () -> portOpen(port), "broker port " + port);
        return j;
    }

    /**
     * A port p with p-2 (the VIP channel) free too; freePort has checked p+1
     * (HA). p-2 is held back, so that freePort never hands it out.
     */
    private static int brokerPort() {
        for (int i = 0; i < 50; i++) {
            int p = MqdProcess.freePort();
            if (MqdProcess.reserveIfFree(p - 2)) {
                return p;
            }
        }
        throw new IllegalStateException("no free broker port triple");
    }

    /** ROCKETMQ_HOME/conf with a logback file logging to dir/java.log. */
    private static void home(Path dir, String logback) throws IOException {
        Files.createDirectories(dir.resolve("conf"));
        Files.writeString(dir.resolve("conf").resolve(logback), String.join("\n",
                "<configuration>",
                "  <appender name=\"F\" class=\"ch.qos.logback.core.FileAppender\">",
                "    <file>" + dir.resolve("java.log") + "</file>",
                "    <encoder><pattern>%d %-5level %logger{20} - %msg%n</pattern></encoder>",
                "  </appender>",
                "  <root level=\"INFO\"><appender-ref ref=\"F\"/></root>",
                "</configuration>", ""));
    }

    private static JavaRocketMQ start(Path dir, String main, int port, String... args) throws Exception {
        Path cpFile = Path.of(System.getProperty("mqd.work", "target/mqd")).toAbsolutePath().getParent()
                .resolve("rocketmq-server.classpath");
        if (!Files.exists(cpFile)) {
            throw new IllegalStateException(cpFile + " missing: run with -Pmixed");
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java,
                "-Xms256m", "-Xmx256m", "-XX:MaxDirectMemorySize=256m", "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1", "-Duser.home=" + dir, "-Drocketmq.home.dir=" + dir,
                // No TLS: building the permissive-mode self-signed context costs seconds.
                "-Dtls.server.mode=disabled", "-Djava.security.egd=file:/dev/./urandom",
                // 4.9.7 unmaps files and reads buffer addresses through JDK internals.
                "--add-opens", "java.base/java.nio=ALL-UNNAMED",
                "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
                "--add-exports", "java.base/sun.nio.ch=ALL-UNNAMED",
                "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
                "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED",
                "--add-opens", "java.base/java.lang=ALL-UNNAMED",
                "-cp", Files.readString(cpFile).trim(), main));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("stdout.log").toFile());
        pb.environment().put("ROCKETMQ_HOME", dir.toString());
        return new JavaRocketMQ(pb.start(), dir, port);
    }

    static boolean portOpen(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 200);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    void await(long timeoutMs, BooleanSupplier cond, String what) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!cond.getAsBoolean()) {
            if (!process.isAlive() || System.currentTimeMillis() > deadline) {
                String out = Files.exists(dir.resolve("stdout.log")) ? Files.readString(dir.resolve("stdout.log")) : "";
                close();
                throw new IllegalStateException("Java RocketMQ not ready (" + what + "), alive="
                        + process.isAlive() + ":\n" + out);
            }
            Thread.sleep(100);
        }
    }

    @Override
    public void close() {
        MqdProcess.stop(process, 15);
    }
}
