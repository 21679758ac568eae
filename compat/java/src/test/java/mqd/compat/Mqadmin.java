package mqd.compat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.tools.command.MQAdminStartup;

/**
 * The Java mqadmin (rocketmq-tools 4.9.7 MQAdminStartup) run in this JVM
 * against a nameserver, with its output captured.
 */
final class Mqadmin {
    private static Path home;

    private Mqadmin() {
    }

    /** rocketmq.home.dir with the logback file the tool loads, logging to a file. */
    private static synchronized Path home() {
        if (home == null) {
            Path h = Path.of(System.getProperty("mqd.work", "target/mqd")).toAbsolutePath().resolve("tools-home");
            try {
                Files.createDirectories(h.resolve("conf"));
                Files.writeString(h.resolve("conf/logback_tools.xml"), String.join("\n",
                        "<configuration>",
                        "  <appender name=\"F\" class=\"ch.qos.logback.core.FileAppender\">",
                        "    <file>" + h.resolve("tools.log") + "</file>",
                        "    <encoder><pattern>%d %-5level %logger{20} - %msg%n</pattern></encoder>",
                        "  </appender>",
                        "  <root level=\"WARN\"><appender-ref ref=\"F\"/></root>",
                        "</configuration>", ""));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            home = h;
        }
        return home;
    }

    /**
     * Runs `mqadmin args -n namesrv`; returns stdout. Fails with the
     * exception lines (stack frames dropped) when the tool printed an
     * exception or "command failed".
     */
    static synchronized String run(String namesrv, String... args) {
        String[] full = new String[args.length + 2];
        System.arraycopy(args, 0, full, 0, args.length);
        full[args.length] = "-n";
        full[args.length + 1] = namesrv;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        String oldHome = System.getProperty("rocketmq.home.dir");
        System.setProperty("rocketmq.home.dir", home().toString());
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            MQAdminStartup.main0(full, null);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.clearProperty("rocketmq.namesrv.addr");
            if (oldHome == null) {
                System.clearProperty("rocketmq.home.dir");
            }
        }
        String o = out.toString(StandardCharsets.UTF_8);
        String e = err.toString(StandardCharsets.UTF_8);
        if (e.contains("Exception") || o.contains("command failed")) {
            String why = (o + e).lines().filter(l -> !l.startsWith("\tat ") && !l.startsWith("\t... "))
                    .reduce("", (a, b) -> a + b + "\n");
            throw new AssertionError("mqadmin " + String.join(" ", args) + " failed:\n" + why);
        }
        return o;
    }

    /** The "key : value" lines of brokerStatus and similar commands. */
    static Map<String, String> keyValues(String out) {
        Map<String, String> kv = new TreeMap<>();
        for (String line : out.split("\n")) {
            int i = line.indexOf(':');
            if (i > 0) {
                kv.put(line.substring(0, i).trim(), line.substring(i + 1).trim());
            }
        }
        return kv;
    }
}
