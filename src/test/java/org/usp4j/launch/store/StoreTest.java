package org.usp4j.launch.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.launch.JavaProcesses;

/** The rendezvous store over real loopback sockets: operations, concurrency, limits, auth and failures. */
@Timeout(60)
class StoreTest {

    private static final String HOST = "127.0.0.1";
    private static final Duration T = Duration.ofSeconds(10);

    private String token;
    private StoreServer server;
    private final List<AutoCloseable> closeLater = new ArrayList<>();

    @BeforeEach
    void start() {
        token = Tokens.generate();
        server = StoreServer.start(HOST, 0, token);
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : closeLater) {
            c.close();
        }
        server.close();
    }

    private StoreClient client() {
        StoreClient c = StoreClient.connect(HOST, server.port(), token, T);
        closeLater.add(c);
        return c;
    }

    @Test
    void setGetAddDeleteRoundTrip() {
        StoreClient a = client();
        StoreClient b = client();
        byte[] id = new byte[128];
        new Random(7).nextBytes(id);
        a.set("nccl/unique-id", id);
        assertArrayEquals(id, b.get("nccl/unique-id", Duration.ZERO));
        a.set("nccl/unique-id", new byte[0]);
        assertEquals(0, b.get("nccl/unique-id", Duration.ZERO).length, "set replaces");

        assertEquals(3, a.add("counter", 3));
        assertEquals(-2, b.add("counter", -5));
        assertEquals("-2", new String(a.get("counter", Duration.ZERO), StandardCharsets.US_ASCII));

        a.set("p/1", new byte[] {1});
        a.set("p/2", new byte[] {2});
        a.set("q/1", new byte[] {3});
        assertEquals(List.of("p/3", "x"), b.missing(List.of("p/1", "p/3", "q/1", "x")));
        assertTrue(b.delete("q/1"));
        assertFalse(b.delete("q/1"));
        assertEquals(2, b.deletePrefix("p/"));
        assertEquals(2, server.keyCount(), "counter and nccl/unique-id remain");
    }

    @Test
    void manyConcurrentClients() throws Exception {
        int n = 48;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<byte[]>> results = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int rank = i;
                results.add(pool.submit(() -> {
                    try (StoreClient c = StoreClient.connect(HOST, server.port(), token, T)) {
                        c.add("arrivals", 1);
                        c.set("value/" + rank, ("from " + rank).getBytes(StandardCharsets.UTF_8));
                        // blocks until the neighbour (maybe not connected yet) has set its value
                        byte[] next = c.get("value/" + (rank + 1) % n, T);
                        for (int round = 0; round < 3; round++) {
                            c.barrier("b", rank, n, T);
                        }
                        return next;
                    }
                }));
            }
            for (int i = 0; i < n; i++) {
                assertEquals("from " + (i + 1) % n, new String(results.get(i).get(), StandardCharsets.UTF_8));
            }
        }
        try (StoreClient c = client()) {
            assertEquals(n, c.add("arrivals", 0));
        }
    }

    @Test
    void barrierHoldsEveryRankUntilTheLastArrives() throws Exception {
        int n = 8;
        int rounds = 5;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<List<Long>>> seen = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int rank = i;
                seen.add(pool.submit(() -> {
                    List<Long> counts = new ArrayList<>();
                    try (StoreClient c = StoreClient.connect(HOST, server.port(), token, T)) {
                        for (int round = 0; round < rounds; round++) {
                            Thread.sleep(rank * 5L); // arrive in a different order each time
                            c.add("entered/" + round, 1);
                            c.barrier("step", rank, n, T);
                            // after the barrier every rank of this round has entered
                            counts.add(c.add("entered/" + round, 0));
                        }
                    }
                    return counts;
                }));
            }
            for (Future<List<Long>> f : seen) {
                assertEquals(List.of((long) n, (long) n, (long) n, (long) n, (long) n), f.get());
            }
        }
        // each round's keys are removed by the next: only the last round's n arrivals + count + done remain
        assertEquals(rounds + n + 2, server.keyCount(), "entered/0..4 and the last barrier round");
    }

    @Test
    void getWaitsForALaterSet() throws Exception {
        StoreClient waiter = client();
        StoreClient setter = client();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<byte[]> got = pool.submit(() -> waiter.get("late", T));
            Thread.sleep(200);
            assertFalse(got.isDone(), "get returned before the key was set");
            setter.set("late", new byte[] {42});
            assertArrayEquals(new byte[] {42}, got.get(5, TimeUnit.SECONDS));
        }
    }

    @Test
    void getAndWaitTimeOutAndTheConnectionStaysUsable() {
        StoreClient c = client();
        long t0 = System.nanoTime();
        StoreTimeoutException e = assertThrows(StoreTimeoutException.class,
                () -> c.get("never", Duration.ofMillis(300)));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms >= 290 && ms < 3_000, "timed out after " + ms + " ms");
        assertTrue(e.getMessage().contains("'never' was not set within 300 ms"), e.getMessage());
        assertEquals(List.of("never"), e.missing());

        c.set("a", new byte[0]);
        StoreTimeoutException w = assertThrows(StoreTimeoutException.class,
                () -> c.waitFor(List.of("a", "b", "c"), Duration.ofMillis(100)));
        assertEquals(List.of("b", "c"), w.missing());
        c.set("b", new byte[0]);
        c.set("c", new byte[0]);
        c.waitFor(List.of("a", "b", "c"), Duration.ZERO);
    }

    @Test
    void barrierTimeoutNamesTheRanksThatDidNotArrive() throws Exception {
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<StoreTimeoutException>> errors = new ArrayList<>();
            for (int rank : new int[] {0, 2, 3}) { // rank 1 of 4 never comes
                errors.add(pool.submit(() -> {
                    try (StoreClient c = StoreClient.connect(HOST, server.port(), token, T)) {
                        return assertThrows(StoreTimeoutException.class,
                                () -> c.barrier("init", rank, 4, Duration.ofMillis(400)));
                    }
                }));
            }
            for (Future<StoreTimeoutException> f : errors) {
                StoreTimeoutException e = f.get();
                assertEquals(List.of("1"), e.missing());
                assertTrue(e.getMessage().contains("rank(s) [1] of 4 did not arrive"), e.getMessage());
            }
        }
    }

    @Test
    void theFirstRankToGiveUpAbortsTheRoundForEveryone() throws Exception {
        StoreClient impatient = client();
        StoreClient patient = client();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            long t0 = System.nanoTime();
            Future<StoreTimeoutException> first = pool.submit(() -> assertThrows(StoreTimeoutException.class,
                    () -> impatient.barrier("b", 0, 3, Duration.ofMillis(300))));
            Future<StoreTimeoutException> second = pool.submit(() -> assertThrows(StoreTimeoutException.class,
                    () -> patient.barrier("b", 1, 3, Duration.ofSeconds(20))));
            StoreTimeoutException a = first.get();
            StoreTimeoutException b = second.get();
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(ms < 5_000, "the patient rank failed after " + ms + " ms, not after its own 20 s");
            assertEquals(List.of("2"), a.missing());
            assertEquals(List.of("2"), b.missing());
            assertTrue(b.getMessage().startsWith("barrier 'b' timed out after 300 ms on rank 0: rank(s) [2] of 3 did "
                    + "not arrive (seen by rank 1;"), b.getMessage());
            // the missing rank comes late: the round is over, it fails at once with the same diagnosis
            long t1 = System.nanoTime();
            StoreTimeoutException late = assertThrows(StoreTimeoutException.class,
                    () -> client().barrier("b", 2, 3, Duration.ofSeconds(20)));
            assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t1) < 2_000);
            assertEquals(List.of("2"), late.missing());
        }
    }

    @Test
    void wrongTokenIsRefusedAtOnce() {
        long t0 = System.nanoTime();
        StoreException e = assertThrows(StoreException.class,
                () -> StoreClient.connect(HOST, server.port(), "not-" + token, T));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(e.getMessage().startsWith("the service at 127.0.0.1:" + server.port()
                + " could not prove that it holds this job's token"), e.getMessage());
        assertTrue(ms < 3_000, "a refusal is not retried until the timeout; took " + ms + " ms");
        client().set("still", new byte[0]); // the server goes on serving the right token
    }

    @Test
    void requestsBeforeTheHandshakeAreRefusedAndDisconnected() throws Exception {
        try (Socket s = new Socket(HOST, server.port())) {
            s.setSoTimeout(5_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            byte[] set = new StoreProtocol.Body(StoreProtocol.SET).string("k").value(new byte[] {1}).bytes();
            out.writeInt(set.length);
            out.write(set);
            out.flush();
            assertEquals("not a usp4j store client", readRefusal(s));
            assertEquals(-1, s.getInputStream().read(), "connection closed after the refusal");
        }
        assertEquals(0, server.keyCount());
    }

    @Test
    void silentConnectionsAreDroppedAfterTheHandshakeTimeout() throws Exception {
        try (StoreServer strict = StoreServer.start(HOST, 0, token,
                StoreLimits.DEFAULT.withHandshakeTimeout(Duration.ofMillis(300)));
             Socket s = new Socket(HOST, strict.port())) {
            s.setSoTimeout(5_000);
            long t0 = System.nanoTime();
            assertEquals(-1, s.getInputStream().read());
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(ms >= 250 && ms < 3_000, "dropped after " + ms + " ms");
        }
    }

    @Test
    void oversizedKeysAndValuesAreRefusedBeforeSending() {
        try (StoreServer small = StoreServer.start(HOST, 0, token, StoreLimits.DEFAULT.withMaxValueBytes(1024));
             StoreClient c = StoreClient.connect(HOST, small.port(), token, T)) {
            assertEquals(1024, c.maxValueBytes(), "the client learns the server's limit");
            IllegalArgumentException v = assertThrows(IllegalArgumentException.class,
                    () -> c.set("big", new byte[1025]));
            assertEquals("value of 1025 bytes for key 'big' exceeds the store's limit of 1024 bytes", v.getMessage());
            IllegalArgumentException k = assertThrows(IllegalArgumentException.class,
                    () -> c.get("k".repeat(1025), Duration.ZERO));
            assertTrue(k.getMessage().startsWith("store key of 1025 bytes exceeds the limit of 1024 bytes"),
                    k.getMessage());
            assertThrows(IllegalArgumentException.class, () -> c.waitFor(List.of(""), Duration.ZERO));
            c.set("fits", new byte[1024]);
            assertEquals(1024, c.get("fits", Duration.ZERO).length);
        }
    }

    @Test
    void oversizedFramesAreRefusedWithoutAllocatingThem() throws Exception {
        // before authentication: a frame claiming 1 GiB
        try (Socket s = new Socket(HOST, server.port())) {
            s.setSoTimeout(5_000);
            new DataOutputStream(s.getOutputStream()).writeInt(1 << 30);
            assertTrue(readRefusal(s).startsWith("frame of 1073741824 bytes refused"));
            assertEquals(-1, s.getInputStream().read());
        }
        // after authentication: a frame beyond the limit, and a value field longer than its frame
        for (boolean lyingField : new boolean[] {false, true}) {
            try (Socket s = new Socket(HOST, server.port())) {
                s.setSoTimeout(5_000);
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                RawStoreProtocol.authenticate(s, token);
                if (lyingField) {
                    byte[] body = new StoreProtocol.Body(StoreProtocol.SET).string("k").i32(Integer.MAX_VALUE).bytes();
                    out.writeInt(body.length);
                    out.write(body);
                    out.flush();
                    assertTrue(readRefusal(s).startsWith("value of 2147483647 bytes refused"));
                } else {
                    out.writeInt(StoreLimits.DEFAULT.maxFrameBytes() + 1);
                    out.flush();
                    assertTrue(readRefusal(s).startsWith("frame of " + (StoreLimits.DEFAULT.maxFrameBytes() + 1)));
                }
                assertEquals(-1, s.getInputStream().read());
            }
        }
        client().set("healthy", new byte[0]);
    }

    @Test
    void aFullStoreRefusesTheSetAndKeepsServing() {
        try (StoreServer small = StoreServer.start(HOST, 0, token, StoreLimits.DEFAULT.withMaxStoreBytes(100));
             StoreClient c = StoreClient.connect(HOST, small.port(), token, T)) {
            c.set("a", new byte[60]);
            StoreException e = assertThrows(StoreException.class, () -> c.set("b", new byte[60]));
            assertTrue(e.getMessage().contains("the store is full"), e.getMessage());
            c.set("a", new byte[90]); // replacing counts the difference only
            assertTrue(c.delete("a"));
            c.set("b", new byte[60]);
            StoreException notNumber = assertThrows(StoreException.class, () -> c.add("b", 1));
            assertTrue(notNumber.getMessage().contains("not a decimal counter"), notNumber.getMessage());
            assertEquals(1, c.add("n", 1));
        }
    }

    @Test
    void connectRetriesUntilTheServerIsUp() throws Exception {
        int port = freePort();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<StoreClient> early = pool.submit(() -> StoreClient.connect(HOST, port, token, T));
            Thread.sleep(400);
            try (StoreServer late = StoreServer.start(HOST, port, token);
                 StoreClient c = early.get(10, TimeUnit.SECONDS)) {
                c.set("k", new byte[] {1});
                assertEquals(1, late.keyCount());
            }
        }
    }

    @Test
    void connectGivesUpAfterItsTimeout() throws Exception {
        int port = freePort();
        long t0 = System.nanoTime();
        StoreException e = assertThrows(StoreException.class,
                () -> StoreClient.connect(HOST, port, token, Duration.ofMillis(400)));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(ms >= 390 && ms < 3_000, "gave up after " + ms + " ms");
        assertTrue(e.getMessage().startsWith("could not connect to the store at 127.0.0.1:" + port + " within 400 ms"),
                e.getMessage());
    }

    @Test
    void closingTheServerFailsPendingWaitsAndFreesThePort() throws Exception {
        List<StoreClient> clients = List.of(client(), client(), client());
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<StoreException>> failures = new ArrayList<>();
            for (StoreClient c : clients) {
                failures.add(pool.submit(() -> assertThrows(StoreException.class,
                        () -> c.get("never", Duration.ofSeconds(30)))));
            }
            Thread.sleep(200);
            int port = server.port();
            long t0 = System.nanoTime();
            server.close();
            server.close(); // idempotent
            for (Future<StoreException> f : failures) {
                StoreException e = f.get(5, TimeUnit.SECONDS);
                assertTrue(e.getMessage().contains("store at 127.0.0.1:" + port), e.getMessage());
            }
            assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 5_000);
            StoreException after = assertThrows(StoreException.class, () -> clients.get(0).add("x", 1));
            assertTrue(after.getMessage().contains("the connection broke earlier"), after.getMessage());
            try (StoreServer again = StoreServer.start(HOST, port, token)) {
                assertEquals(port, again.port(), "the port was freed");
            }
        }
    }

    @Test
    void aKilledStoreProcessFailsItsClientsWithinTheTimeout() throws Exception {
        Process host = new ProcessBuilder(JavaProcesses.command(StoreHostMain.class, token))
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(host.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            assertTrue(line != null && line.startsWith("PORT "), "host said: " + line);
            int port = Integer.parseInt(line.substring(5).trim());
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<StoreException>> failures = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    StoreClient c = StoreClient.connect(HOST, port, token, T);
                    closeLater.add(c);
                    c.add("joined", 1);
                    failures.add(pool.submit(() -> assertThrows(StoreException.class,
                            () -> c.get("never", Duration.ofSeconds(30)))));
                }
                Thread.sleep(200);
                long t0 = System.nanoTime();
                host.destroyForcibly(); // SIGKILL: no shutdown hook, the kernel closes the sockets
                for (Future<StoreException> f : failures) {
                    StoreException e = f.get(10, TimeUnit.SECONDS);
                    assertTrue(e.getMessage().startsWith("lost the connection to the store at 127.0.0.1:" + port),
                            e.getMessage());
                    assertTrue(e.getMessage().contains("may have exited"), e.getMessage());
                }
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertTrue(ms < 5_000, "clients noticed after " + ms + " ms, not within the 30 s wait");
            }
        } finally {
            host.destroyForcibly();
            host.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aStalledStoreFailsRequestsAfterTheIoTimeout() throws Exception {
        // answers the hello, then never anything else
        try (ServerSocket stalled = new ServerSocket(0, 1, java.net.InetAddress.getByName(HOST))) {
            Thread.ofVirtual().start(() -> {
                try (Socket s = stalled.accept()) {
                    RawStoreProtocol.answerAsServer(s, token, 1);
                    Thread.sleep(30_000);
                } catch (IOException | InterruptedException e) {
                    // test over
                }
            });
            try (StoreClient c = StoreClient.connect(HOST, stalled.getLocalPort(), token, Duration.ofMillis(500))) {
                long t0 = System.nanoTime();
                StoreException e = assertThrows(StoreException.class, () -> c.add("n", 1));
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertTrue(ms >= 450 && ms < 3_000, "failed after " + ms + " ms");
                assertTrue(e.getMessage().contains("did not answer (add to 'n') within 500 ms"), e.getMessage());
                assertTrue(e.getCause() instanceof SocketTimeoutException);
            }
        }
    }

    @Test
    void badArgumentsAndUseAfterClose() {
        assertThrows(IllegalArgumentException.class, () -> StoreServer.start(HOST, 70_000, token));
        assertThrows(IllegalArgumentException.class, () -> StoreServer.start(HOST, 0, " "));
        assertThrows(IllegalArgumentException.class, () -> StoreServer.start(HOST, 0, "x".repeat(2000)));
        assertThrows(IllegalArgumentException.class, () -> StoreClient.connect(HOST, 0, token, T));
        assertThrows(IllegalArgumentException.class, () -> StoreClient.connect(HOST, server.port(), token, Duration.ZERO));
        StoreException bind = assertThrows(StoreException.class, () -> StoreServer.start("192.0.2.1", 0, token));
        assertTrue(bind.getMessage().startsWith("cannot bind the store to 192.0.2.1:0"), bind.getMessage());
        StoreException inUse = assertThrows(StoreException.class, () -> StoreServer.start(HOST, server.port(), token));
        assertTrue(inUse.getMessage().contains(":" + server.port()), inUse.getMessage());

        StoreClient c = client();
        assertThrows(IllegalArgumentException.class, () -> c.get("k", Duration.ofMillis(-1)));
        assertThrows(IllegalArgumentException.class, () -> c.barrier("b", 3, 3, T));
        c.close();
        c.close();
        IllegalStateException closed = assertThrows(IllegalStateException.class, () -> c.set("k", new byte[0]));
        assertTrue(closed.getMessage().contains("closed"));
    }

    // ---- raw protocol helpers ----

    private static String readRefusal(Socket s) throws IOException {
        return RawStoreProtocol.readRefusal(s);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName(HOST))) {
            return s.getLocalPort();
        }
    }
}
