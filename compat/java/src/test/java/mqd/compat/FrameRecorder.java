package mqd.compat;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.UnaryOperator;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;

/**
 * A TCP proxy on a loopback port that forwards to a target and records
 * every RocketMQ frame (4-byte length + header + body) sent each way.
 * Server-to-client frames can be rewritten (same length) on the way, which
 * lets a nameserver proxy point routes at a recording broker proxy.
 */
final class FrameRecorder implements AutoCloseable {
    /** One frame as it crossed the wire, length prefix included. */
    record Frame(boolean fromClient, byte[] raw) {
        RemotingCommand decode() {
            try {
                return RemotingCommand.decode(ByteBuffer.wrap(raw, 4, raw.length - 4).slice());
            } catch (Exception e) {
                throw new IllegalStateException("undecodable frame", e);
            }
        }
    }

    final List<Frame> frames = new CopyOnWriteArrayList<>();
    private final ServerSocket server;
    private final int targetPort;
    private final UnaryOperator<byte[]> rewriteResponse;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();

    FrameRecorder(int listenPort, int targetPort, UnaryOperator<byte[]> rewriteResponse) throws IOException {
        this.server = new ServerSocket(listenPort, 50, InetAddress.getLoopbackAddress());
        this.targetPort = targetPort;
        this.rewriteResponse = rewriteResponse;
        Thread t = new Thread(this::acceptLoop, "recorder-" + listenPort);
        t.setDaemon(true);
        t.start();
    }

    int port() {
        return server.getLocalPort();
    }

    private void acceptLoop() {
        try {
            while (true) {
                Socket c = server.accept();
                Socket s = new Socket(InetAddress.getLoopbackAddress(), targetPort);
                sockets.add(c);
                sockets.add(s);
                pump(c.getInputStream(), s.getOutputStream(), true);
                pump(s.getInputStream(), c.getOutputStream(), false);
            }
        } catch (IOException e) {
            // closed
        }
    }

    private void pump(InputStream in, OutputStream out, boolean fromClient) {
        Thread t = new Thread(() -> {
            DataInputStream d = new DataInputStream(in);
            try {
                while (true) {
                    int len = d.readInt();
                    if (len < 4 || len > 64 << 20) {
                        throw new IOException("bad frame length " + len);
                    }
                    byte[] raw = new byte[4 + len];
                    ByteBuffer.wrap(raw).putInt(len);
                    d.readFully(raw, 4, len);
                    if (!fromClient) {
                        raw = rewriteResponse.apply(raw);
                    }
                    frames.add(new Frame(fromClient, raw));
                    out.write(raw);
                    out.flush();
                }
            } catch (EOFException e) {
                // peer closed
            } catch (IOException e) {
                // closed
            } finally {
                try {
                    out.close();
                } catch (IOException ignored) {
                    // already closed
                }
            }
        }, "pump");
        t.setDaemon(true);
        t.start();
    }

    /** Replaces every occurrence of from with to (same length) in a frame. */
    static byte[] replaceAll(byte[] raw, String from, String to) {
        byte[] f = from.getBytes(StandardCharsets.UTF_8);
        byte[] t = to.getBytes(StandardCharsets.UTF_8);
        if (f.length != t.length) {
            throw new IllegalArgumentException("replacement must keep the frame length");
        }
        byte[] out = raw.clone();
        for (int i = 0; i + f.length <= out.length; i++) {
            if (java.util.Arrays.equals(out, i, i + f.length, f, 0, f.length)) {
                System.arraycopy(t, 0, out, i, t.length);
            }
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Socket s : sockets) {
            s.close();
        }
    }
}
