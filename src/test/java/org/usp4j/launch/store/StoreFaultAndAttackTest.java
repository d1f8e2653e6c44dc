package org.usp4j.launch.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.launch.JavaProcesses;

/**
 * The store against a hostile or careless local process, over loopback 127.0.0.1 only: slow senders,
 * floods of strangers, descriptor exhaustion, impostor servers, idle connections, dying and restarted
 * peers, two jobs on one port. Every test bounds its connections (at most a few hundred) and its time
 * (limits of a second or less where a test waits for one), and asserts that the legitimate ranks finish,
 * or fail with a clear error, within their timeout.
 */
@Timeout(60)
class StoreFaultAndAttackTest {

    private static final String HOST = "127.0.0.1";
    private static final Duration T = Duration.ofSeconds(10);

    private final String token = Tokens.generate();
    private final List<AutoCloseable> closeLater = Collections.synchronizedList(new ArrayList<>());

    @AfterEach
    void closeAll() {
        for (AutoCloseable c : closeLater.reversed()) {
            try {
                c.close();
            } catch (Exception e) {
                // cleaning up
            }
        }
    }

    private StoreServer server(StoreLimits limits) {
        StoreServer s = StoreServer.start(HOST, 0, token, limits);
        closeLater.add(s);
        return s;
    }

    private StoreClient client(StoreServer s) {
        StoreClient c = StoreClient.connect(HOST, s.port(), token, T);
        closeLater.add(c);
        return c;
    }

    private Socket raw(int port) throws IOException {
        Socket s = new Socket(HOST, port);
        closeLater.add(s);
        return s;
    }

    // ---- slow senders ----

    @Test
    void aHandshakeTricklingOneByteEvery150msIsCutOffAtTheHandshakeDeadline() throws Exception {
        StoreServer server = server(StoreLimits.DEFAULT.withHandshakeTimeout(Duration.ofMillis(1_000)));
        Socket s = raw(server.port());
        long t0 = System.nanoTime();
        Thread trickle = trickle(s, RawStoreProtocol.helloFrame(TokenProofs.nonce()), 150);
        long ms = millisUntilClosedByPeer(s, t0);
        trickle.interrupt();
        // the whole hello would take 45 x 150 ms = 6.75 s
        assertTrue(ms >= 500 && ms < 3_000, "cut off after " + ms + " ms");
        client(server).set("still-serving", new byte[0]);
    }

    @Test
    void aRequestTricklingOneByteEvery150msIsCutOffAtTheFrameDeadline() throws Exception {
        StoreServer server = server(StoreLimits.DEFAULT.withFrameTimeout(Duration.ofMillis(1_000)));
        Socket s = raw(server.port());
        RawStoreProtocol.authenticate(s, token);
        byte[] body = new StoreProtocol.Body(StoreProtocol.SET).string("k").value(new byte[100]).bytes();
        byte[] frame = new byte[4 + body.length];
        frame[3] = (byte) body.length;
        System.arraycopy(body, 0, frame, 4, body.length);
        long t0 = System.nanoTime();
        Thread trickle = trickle(s, frame, 150);
        long ms = millisUntilClosedByPeer(s, t0);
        trickle.interrupt();
        assertTrue(ms >= 500 && ms < 3_000, "cut off after " + ms + " ms");
        assertEquals(0, server.keyCount());
    }

    // ---- floods of strangers ----

    @Test
    void strangersInTheirHandshakeNeverLockOutRanks() throws Exception {
        // a small pool (8 per peer, and every test connection comes from 127.0.0.1) with a long handshake
        // timeout, so that only eviction can make room; four authenticated slots
        StoreServer server = server(StoreLimits.DEFAULT.withHandshakeTimeout(Duration.ofSeconds(30))
                .withMaxUnauthenticated(16, 8).withMaxConnections(4));
        List<Socket> strangers = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            strangers.add(raw(server.port()));
        }
        awaitTrue(() -> server.connectionCount() <= 8, "the pool is bounded per peer");
        List<StoreClient> ranks = new ArrayList<>();
        for (int r = 0; r < 4; r++) {
            ranks.add(client(server));
        }
        for (int r = 0; r < 4; r++) {
            ranks.get(r).add("arrived", 1);
        }
        assertEquals(4, ranks.get(0).add("arrived", 0));
        assertEquals(4, server.authenticatedCount());
        // the oldest strangers were closed to make room
        strangers.get(0).setSoTimeout(5_000);
        assertEquals(-1, readOrReset(strangers.get(0)));
        assertTrue(server.connectionCount() <= 4 + 8, server.connectionCount() + " connections");
    }

    @Test
    void aClientTurnedAwayBecauseTheStoreIsFullRetriesUntilARankLeaves() throws Exception {
        StoreServer server = server(StoreLimits.DEFAULT.withMaxConnections(2));
        StoreClient a = client(server);
        client(server);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<StoreClient> third = pool.submit(() -> StoreClient.connect(HOST, server.port(), token, T));
            Thread.sleep(300);
            assertFalse(third.isDone(), "still retrying while the store is full");
            a.close();
            StoreClient c = third.get(10, TimeUnit.SECONDS);
            closeLater.add(c);
            c.set("in", new byte[0]);
        }
    }

    @Test
    void theAcceptLoopSurvivesRunningOutOfFileDescriptors() throws Exception {
        // a store in a JVM limited to 256 descriptors, with a pool larger than that (so that strangers use
        // them all up) and a 1 s handshake timeout; 400 strangers connect
        List<String> java = JavaProcesses.command(StoreHostMain.class, token, "1000", "1024");
        List<String> cmd = List.of("bash", "-c", "ulimit -n 256 && exec \"$@\"", "store-host");
        List<String> full = new ArrayList<>(cmd);
        full.addAll(java);
        Process host = new ProcessBuilder(full).redirectErrorStream(true).start();
        closeLater.add(() -> {
            host.destroyForcibly();
            host.waitFor(10, TimeUnit.SECONDS);
        });
        BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(), StandardCharsets.UTF_8));
        String line = out.readLine();
        while (line != null && !line.startsWith("PORT ")) {
            line = out.readLine();
        }
        assertTrue(line != null, "the store host did not start");
        int port = Integer.parseInt(line.substring(5).trim());
        List<String> log = Collections.synchronizedList(new ArrayList<>());
        Thread.ofVirtual().start(() -> out.lines().forEach(log::add));
        List<Socket> strangers = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            strangers.add(raw(port));
        }
        awaitTrue(() -> log.stream().anyMatch(l -> l.contains("cannot accept a connection")),
                "the store ran out of descriptors");
        for (Socket s : strangers) {
            s.close();
        }
        try (StoreClient c = StoreClient.connect(HOST, port, token, T)) {
            c.set("after-emfile", new byte[] {1});
            assertEquals(1, c.get("after-emfile", Duration.ZERO)[0]);
        }
        assertTrue(host.isAlive());
    }

    // ---- impostors ----

    @Test
    void anImpostorServerLearnsNothingItCanReplay() throws Exception {
        StoreServer real = server(StoreLimits.DEFAULT);
        // the impostor first talks to the real store as a client would, and records its challenge and proof
        byte[] recorded;
        try (Socket s = new Socket(HOST, real.port())) {
            RawStoreProtocol.writeFrame(s, RawStoreProtocol.helloBody(TokenProofs.nonce()));
            recorded = RawStoreProtocol.readFrame(s);
            assertEquals(StoreProtocol.CHALLENGE, recorded[0]);
        }
        try (ServerSocket impostor = new ServerSocket(0, 8, InetAddress.getByName(HOST))) {
            ByteArrayOutputStream heard = new ByteArrayOutputStream();
            Thread listener = Thread.ofVirtual().start(() -> {
                try (Socket s = impostor.accept()) {
                    s.setSoTimeout(5_000);
                    InputStream in = s.getInputStream();
                    byte[] header = in.readNBytes(4);
                    heard.writeBytes(header);
                    heard.writeBytes(in.readNBytes(java.nio.ByteBuffer.wrap(header).getInt()));
                    RawStoreProtocol.writeFrame(s, recorded); // the replay
                    heard.writeBytes(in.readAllBytes()); // whatever the client says next, until it hangs up
                } catch (IOException e) {
                    // the client hung up
                }
            });
            long t0 = System.nanoTime();
            StoreException e = assertThrows(StoreException.class,
                    () -> StoreClient.connect(HOST, impostor.getLocalPort(), token, T));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            listener.join(5_000);
            assertTrue(e.getMessage().startsWith("the service at 127.0.0.1:" + impostor.getLocalPort()
                    + " could not prove that it holds this job's token"), e.getMessage());
            assertTrue(ms < 3_000, "failed at once, not after retrying for the timeout: " + ms + " ms");
            byte[] bytes = heard.toByteArray();
            assertTrue(bytes.length > 0, "the impostor heard the hello");
            String asText = new String(bytes, StandardCharsets.ISO_8859_1);
            assertFalse(asText.contains(token), "the token travelled");
            assertFalse(HexFormat.of().formatHex(bytes).contains(token), "the token travelled");
            assertEquals(4 + RawStoreProtocol.helloBody(TokenProofs.nonce()).length, bytes.length,
                    "the client sent its hello (a nonce) and nothing after the failed proof");
        }
    }

    @Test
    void twoJobsOnOnePortWithDifferentTokens() throws Exception {
        StoreServer jobA = server(StoreLimits.DEFAULT);
        String tokenB = Tokens.generate();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> ranksA = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                int rank = r;
                ranksA.add(pool.submit(() -> {
                    try (StoreClient c = StoreClient.connect(HOST, jobA.port(), token, T)) {
                        for (int round = 0; round < 5; round++) {
                            c.barrier("a", rank, 3, T);
                        }
                    }
                    return null;
                }));
            }
            List<Future<StoreException>> ranksB = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                ranksB.add(pool.submit(() -> assertThrows(StoreException.class,
                        () -> StoreClient.connect(HOST, jobA.port(), tokenB, T))));
            }
            long t0 = System.nanoTime();
            for (Future<StoreException> f : ranksB) {
                String m = f.get(10, TimeUnit.SECONDS).getMessage();
                assertTrue(m.contains("127.0.0.1:" + jobA.port()) && m.contains("different USP4J_TOKEN"), m);
            }
            assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 5_000, "job B failed at once");
            for (Future<?> f : ranksA) {
                f.get(10, TimeUnit.SECONDS); // job A undisturbed
            }
        }
    }

    // ---- idle and dying peers ----

    @Test
    void idleAuthenticatedConnectionsAreClosedAndClientsReconnectOnTheirOwn() throws Exception {
        StoreServer server = server(StoreLimits.DEFAULT.withIdleTimeout(Duration.ofMillis(500)));
        List<Socket> idle = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            Socket s = raw(server.port());
            RawStoreProtocol.authenticate(s, token);
            idle.add(s);
        }
        StoreClient rank = client(server);
        rank.set("before", new byte[] {1});
        awaitTrue(() -> server.connectionCount() == 0, "idle connections closed");
        for (Socket s : idle) {
            s.setSoTimeout(5_000);
            assertEquals(-1, readOrReset(s), "closed by the store");
        }
        rank.set("after", new byte[] {2}); // a new connection to the same store
        assertEquals(1, rank.get("before", Duration.ZERO)[0]);
        assertEquals(2, rank.get("after", Duration.ZERO)[0]);
        assertEquals(1, server.authenticatedCount());
    }

    @Test
    void aRankDyingMidHandshakeLeavesTheOthersUndisturbed() throws Exception {
        StoreServer server = server(StoreLimits.DEFAULT);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> ranks = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                int rank = r;
                ranks.add(pool.submit(() -> {
                    try (StoreClient c = StoreClient.connect(HOST, server.port(), token, T)) {
                        c.barrier("step", rank, 3, T);
                        c.barrier("step", rank, 3, T);
                    }
                    return null;
                }));
            }
            // a fourth process dies after the challenge and one after half a hello, resetting the connection
            for (int i = 0; i < 2; i++) {
                Socket s = new Socket(HOST, server.port());
                if (i == 0) {
                    RawStoreProtocol.writeFrame(s, RawStoreProtocol.helloBody(TokenProofs.nonce()));
                    RawStoreProtocol.readFrame(s);
                } else {
                    s.getOutputStream().write(RawStoreProtocol.helloFrame(TokenProofs.nonce()), 0, 20);
                }
                s.setSoLinger(true, 0); // RST, as when the kernel cleans up after a killed process
                s.close();
            }
            for (Future<?> f : ranks) {
                f.get(10, TimeUnit.SECONDS);
            }
        }
        awaitTrue(() -> server.connectionCount() == 0, "every connection released");
    }

    @Test
    void aStoreRestartedUnderRunningRanksFailsThemWithAClearError() throws Exception {
        StoreLimits limits = StoreLimits.DEFAULT.withIdleTimeout(Duration.ofMillis(400));
        StoreServer first = StoreServer.start(HOST, 0, token, limits);
        int port = first.port();
        StoreClient waiting = StoreClient.connect(HOST, port, token, T);
        StoreClient idle = StoreClient.connect(HOST, port, token, T);
        closeLater.add(waiting);
        closeLater.add(idle);
        idle.set("joined", new byte[0]);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<StoreException> blocked = pool.submit(() -> assertThrows(StoreException.class,
                    () -> waiting.get("never", Duration.ofSeconds(30))));
            Thread.sleep(100);
            first.close();
            StoreServer second = StoreServer.start(HOST, port, token, limits);
            closeLater.add(second);
            String m = blocked.get(5, TimeUnit.SECONDS).getMessage();
            assertTrue(m.startsWith("lost the connection to the store at 127.0.0.1:" + port)
                    && m.contains("restarted"), m);
            Thread.sleep(300); // past half the idle timeout: the next request reconnects, to a new store
            StoreException e = assertThrows(StoreException.class, () -> idle.add("joined", 1));
            assertTrue(e.getMessage().startsWith("the store at 127.0.0.1:" + port + " was restarted"),
                    e.getMessage());
            assertEquals(0, second.keyCount(), "nothing written to the new store by the old job");
        }
    }

    // ---- helpers ----

    /** Sends {@code bytes} one at a time, {@code gapMillis} apart, until done, interrupted or refused. */
    private static Thread trickle(Socket s, byte[] bytes, long gapMillis) {
        return Thread.ofVirtual().start(() -> {
            try {
                OutputStream out = s.getOutputStream();
                for (byte b : bytes) {
                    out.write(b);
                    out.flush();
                    Thread.sleep(gapMillis);
                }
            } catch (IOException | InterruptedException e) {
                // cut off, as expected
            }
        });
    }

    /** Milliseconds from {@code t0} until the peer closed {@code s} (end of stream or reset). */
    private static long millisUntilClosedByPeer(Socket s, long t0) throws IOException {
        s.setSoTimeout(10_000);
        int r = readOrReset(s);
        assertEquals(-1, r, "the store closed the connection without a reply");
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    }

    /** The next byte, or -1 at the end of the stream or on a reset. */
    private static int readOrReset(Socket s) throws IOException {
        try {
            return s.getInputStream().read();
        } catch (SocketTimeoutException e) {
            throw e;
        } catch (SocketException e) {
            return -1; // reset: the store closed while our bytes were unread
        }
    }

    private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not within 10 s: " + what);
            }
            Thread.sleep(20);
        }
    }
}
