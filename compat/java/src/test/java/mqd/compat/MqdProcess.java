package mqd.compat;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.common.protocol.RequestCode;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.common.protocol.header.namesrv.GetRouteInfoRequestHeader;
import org.apache.rocketmq.remoting.RemotingClient;
import org.apache.rocketmq.remoting.netty.NettyClientConfig;
import org.apache.rocketmq.remoting.netty.NettyRemotingClient;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * One mqd process (embedded nameserver + broker) on free loopback ports
 * with a temporary store, built from this repository with `go build`.
 * Closing it kills the process.
 */
public final class MqdProcess implements ExtensionContext.Store.CloseableResource {
    private static Path binary;

    private final Process process;
    private final Path dir;
    public final int namesrvPort;
    public final int brokerPort;

    /** The nameserver address clients are given. */
    public String namesrv() {
        return "127.0.0.1:" + namesrvPort;
    }

    /** The broker address. */
    public String broker() {
        return "127.0.0.1:" + brokerPort;
    }

    public Path dir() {
        return dir;
    }

    /**
     * Starts mqd with brokerConf as its broker.conf and env added to its
     * environment, and waits until its nameserver routes TBW102.
     */
    public static MqdProcess start(String name, String brokerConf, Map<String, String> env) throws Exception {
        return start(name, brokerConf, env, null);
    }

    /**
     * As start, and the broker also registers to otherNamesrv
     * (host:port[;host:port]) besides the embedded nameserver.
     */
    public static MqdProcess start(String name, String brokerConf, Map<String, String> env, String otherNamesrv)
            throws Exception {
        Path work = Path.of(System.getProperty("mqd.work", "target/mqd")).toAbsolutePath();
        Path bin = build(work);
        Path dir = work.resolve(name);
        deleteTree(dir);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("broker.conf"), brokerConf);
        int ns = freePort();
        int bp = freePort();
        List<String> cmd = new ArrayList<>(List.of(bin.toString(),
                "-c", dir.resolve("broker.conf").toString(),
                "--store", dir.resolve("store").toString(),
                "--namesrv-port", Integer.toString(ns),
                "--listen-port", Integer.toString(bp),
                "--broker-ip", "127.0.0.1",
                "--io", "pwrite"));
        if (otherNamesrv != null) {
            cmd.add("--namesrv");
            cmd.add("127.0.0.1:" + ns + ";" + otherNamesrv);
        }
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("mqd.log").toFile());
        pb.environment().putAll(env);
        MqdProcess p = new MqdProcess(pb.start(), dir, ns, bp);
        try {
            p.awaitReady(60_000);
        } catch (Exception e) {
            p.close();
            throw e;
        }
        return p;
    }

    private MqdProcess(Process process, Path dir, int namesrvPort, int brokerPort) {
        this.process = process;
        this.dir = dir;
        this.namesrvPort = namesrvPort;
        this.brokerPort = brokerPort;
    }

    /** go build -o work/mqd ./cmd/mqd in the repository root, once per JVM. */
    private static synchronized Path build(Path work) throws Exception {
        if (binary != null) {
            return binary;
        }
        Files.createDirectories(work);
        Path out = work.resolve("mqd");
        File repo = new File(System.getProperty("mqd.repo", "../..")).getCanonicalFile();
        Process b = new ProcessBuilder(goTool(), "build", "-o", out.toString(), "./cmd/mqd")
                .directory(repo).redirectErrorStream(true).start();
        String log = new String(b.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!b.waitFor(5, TimeUnit.MINUTES) || b.exitValue() != 0) {
            throw new IllegalStateException("go build ./cmd/mqd in " + repo + " failed:\n" + log);
        }
        binary = out;
        return out;
    }

    /** The go command: $GO, else go on PATH, else /usr/local/go/bin/go. */
    static String goTool() {
        String go = System.getenv().getOrDefault("GO", "go");
        if (go.equals("go") && new File("/usr/local/go/bin/go").canExecute() && !onPath("go")) {
            go = "/usr/local/go/bin/go";
        }
        return go;
    }

    private static boolean onPath(String exe) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (new File(d, exe).canExecute()) {
                return true;
            }
        }
        return false;
    }

    /** Ports handed out by freePort in this JVM, each with its neighbours. */
    private static final Set<Integer> HANDED = new HashSet<>();
    private static final Random RANDOM = new Random();
    /**
     * freePort draws from [FIRST_PORT, LAST_PORT): below the kernel's ephemeral
     * range (32768 and up by default) and below the range the Go tests' ports
     * come from (internal/testport: 20000-32000).
     */
    private static final int FIRST_PORT = 12000, LAST_PORT = 20000;

    /**
     * A port p that binds now, whose neighbour p + 1 binds too (mqd and the
     * Java broker listen for HA on listenPort + 1), and that this JVM has not
     * handed out before. A port found by binding port 0 and closing lies in the
     * ephemeral range, where any outgoing connection's local end may take it
     * before the child process binds it; ports below that range are not given
     * to outgoing connections.
     */
    static synchronized int freePort() {
        for (int i = 0; i < 1000; i++) {
            int p = FIRST_PORT + RANDOM.nextInt(LAST_PORT - FIRST_PORT - 1);
            if (HANDED.contains(p) || HANDED.contains(p + 1) || !bindable(p) || !bindable(p + 1)) {
                continue;
            }
            HANDED.add(p);
            HANDED.add(p + 1);
            return p;
        }
        throw new IllegalStateException("no free port pair in [" + FIRST_PORT + ", " + LAST_PORT + ")");
    }

    /**
     * Holds port back from freePort (a port a child binds besides the one it
     * was given) when it binds now and was not handed out before; false when
     * it was or does not bind.
     */
    static synchronized boolean reserveIfFree(int port) {
        if (HANDED.contains(port) || !bindable(port)) {
            return false;
        }
        HANDED.add(port);
        return true;
    }

    /** Whether port binds on every interface now (the brokers listen on all of them). */
    static boolean bindable(int port) {
        try (ServerSocket s = new ServerSocket(port)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Both ports accept and the nameserver has a route for TBW102. */
    private void awaitReady(long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        waitPort(namesrvPort, deadline);
        waitPort(brokerPort, deadline);
        RemotingClient rc = new NettyRemotingClient(new NettyClientConfig());
        rc.start();
        try {
            while (true) {
                GetRouteInfoRequestHeader h = new GetRouteInfoRequestHeader();
                h.setTopic("TBW102");
                RemotingCommand req = RemotingCommand.createRequestCommand(RequestCode.GET_ROUTEINFO_BY_TOPIC, h);
                try {
                    RemotingCommand resp = rc.invokeSync(namesrv(), req, 3000);
                    if (resp.getCode() == ResponseCode.SUCCESS) {
                        return;
                    }
                } catch (Exception e) {
                    // not up yet
                }
                check(deadline, "route for TBW102 at " + namesrv());
                Thread.sleep(50);
            }
        } finally {
            rc.shutdown();
        }
    }

    private void waitPort(int port, long deadline) throws Exception {
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException e) {
                check(deadline, "port " + port);
                Thread.sleep(50);
            }
        }
    }

    private void check(long deadline, String what) throws IOException {
        if (!process.isAlive()) {
            throw new IllegalStateException("mqd exited (" + process.exitValue() + "):\n" + log());
        }
        if (System.currentTimeMillis() > deadline) {
            throw new IllegalStateException("mqd not ready (" + what + "):\n" + log());
        }
    }

    /** The process's output so far. */
    public String log() throws IOException {
        return Files.readString(dir.resolve("mqd.log"));
    }

    /** Stops mqd and deletes its store (the log stays for reading). */
    @Override
    public void close() {
        stop(process, 10);
        try {
            deleteTree(dir.resolve("store"));
        } catch (IOException e) {
            System.err.println("deleting " + dir.resolve("store") + ": " + e);
        }
    }

    /** SIGTERM, then SIGKILL if it has not exited after graceSeconds. */
    static void stop(Process process, int graceSeconds) {
        process.destroy();
        try {
            if (!process.waitFor(graceSeconds, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var s = Files.walk(p)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}
