package org.usp4j.launch;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.launch.store.StoreClient;
import org.usp4j.launch.store.Tokens;

/** Ranks (as threads, each with its own environment and connection) meeting through the store. */
@Timeout(60)
class RendezvousTest {

    private final String token = Tokens.generate();

    private LaunchEnvironment rank(int rank, int world, int port, Duration timeout) {
        return new LaunchEnvironment(rank, world, rank, world, "127.0.0.1", port, token, timeout, LaunchSource.USP4J);
    }

    @FunctionalInterface
    interface RankBody<T> {
        T run(int rank) throws Exception;
    }

    private static <T> List<Future<T>> onThreads(ExecutorService pool, int[] ranks, RankBody<T> body) {
        List<Future<T>> futures = new ArrayList<>();
        for (int r : ranks) {
            futures.add(pool.submit(() -> body.run(r)));
        }
        return futures;
    }

    @Test
    void ranksJoinBroadcastTheUniqueIdPassBarriersAndLeave() throws Exception {
        int world = 4;
        int port = freePort();
        byte[][] ids = {new byte[128], new byte[128]};
        new Random(1).nextBytes(ids[0]);
        new Random(2).nextBytes(ids[1]);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<List<byte[]>>> got = onThreads(pool, new int[] {0, 1, 2, 3}, r -> {
                if (r > 0) {
                    Thread.sleep(50L * r); // ranks start at different times, before or after rank 0's store
                }
                try (Rendezvous rdzv = Rendezvous.join(rank(r, world, port, Duration.ofSeconds(20)))) {
                    byte[] first = rdzv.broadcast("nccl/unique-id", () -> ids[0]);
                    rdzv.barrier("after-first");
                    byte[] second = rdzv.broadcast("nccl/unique-id", () -> ids[1]); // a second round, same key
                    rdzv.barrier("after-second");
                    return List.of(first, second);
                }
            });
            for (Future<List<byte[]>> f : got) {
                assertArrayEquals(ids[0], f.get().get(0));
                assertArrayEquals(ids[1], f.get().get(1));
            }
        }
        try (ServerSocket again = new ServerSocket(port, 1, InetAddress.getByName("127.0.0.1"))) {
            assertEquals(port, again.getLocalPort(), "rank 0 stopped the store and freed the port");
        }
    }

    @Test
    void rankZeroGathersEveryRanksValueInRankOrderAndNamesOneThatNeverSends() throws Exception {
        int world = 3;
        int port = freePort();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<List<String>>> got = onThreads(pool, new int[] {0, 1, 2}, r -> {
                try (Rendezvous rdzv = Rendezvous.join(rank(r, world, port, Duration.ofSeconds(2)))) {
                    Thread.sleep(40L * (world - r)); // values arrive out of rank order
                    List<String> first = strings(rdzv.gatherToRoot("figures", ("rank " + r).getBytes(UTF_8)));
                    List<String> second = strings(rdzv.gatherToRoot("figures", ("again " + r).getBytes(UTF_8)));
                    if (r == 0) {
                        RendezvousException e = assertThrows(RendezvousException.class,
                                () -> rdzv.gatherToRoot("late", new byte[] {0}));
                        assertEquals(List.of(1), e.missingRanks(), e.getMessage());
                        assertTrue(e.getMessage().startsWith("rank 0 of 3: could not receive 'late' from rank 1 within"),
                                e.getMessage());
                        rdzv.closeAfterFailure();
                    }
                    return concat(first, second);
                }
            });
            assertEquals(List.of("rank 0", "rank 1", "rank 2", "again 0", "again 1", "again 2"), got.get(0).get());
            assertEquals(List.of("rank 1", "again 1"), got.get(1).get());
            assertEquals(List.of("rank 2", "again 2"), got.get(2).get());
        }
    }

    private static List<String> strings(List<byte[]> values) {
        return values.stream().map(b -> new String(b, UTF_8)).toList();
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    @Test
    void aWorldOfOneNeedsNoLauncherAndNoToken() {
        try (Rendezvous rdzv = Rendezvous.join(LaunchEnvironment.single())) {
            assertArrayEquals(new byte[] {1, 2}, rdzv.broadcast("id", () -> new byte[] {1, 2}));
            rdzv.barrier("b");
            rdzv.store().set("mine", new byte[] {3});
            assertArrayEquals(new byte[] {3}, rdzv.store().get("mine", Duration.ZERO));
            rdzv.close();
            assertThrows(IllegalStateException.class, () -> rdzv.barrier("b"));
        }
    }

    @Test
    void aMissingRankIsNamedOnEveryOtherRank() throws Exception {
        int port = freePort();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            long t0 = System.nanoTime();
            List<Future<RendezvousException>> errors = onThreads(pool, new int[] {0, 1, 3}, r ->
                    assertThrows(RendezvousException.class, () -> Rendezvous.join(rank(r, 4, port,
                            Duration.ofMillis(800)))));
            for (Future<RendezvousException> f : errors) {
                RendezvousException e = f.get();
                assertEquals(List.of(2), e.missingRanks(), e.getMessage());
                assertTrue(e.getMessage().matches("rank [013] of 4: could not join the rendezvous within 800 ms: "
                        + "rank\\(s\\) \\[2] did not arrive"), e.getMessage());
            }
            assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 10_000);
        }
    }

    @Test
    void twoProcessesClaimingOneRankAreRefused() throws Exception {
        int port = freePort();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> outcomes = onThreads(pool, new int[] {0, 1, 1}, r -> {
                try (Rendezvous ignored = Rendezvous.join(rank(r, 3, port, Duration.ofMillis(1500)))) {
                    return "joined";
                } catch (RendezvousException e) {
                    return e.getMessage();
                }
            });
            List<String> messages = new ArrayList<>();
            for (Future<String> f : outcomes) {
                messages.add(f.get());
            }
            assertTrue(messages.stream().anyMatch(m -> m.startsWith("rank 1 of 3: two processes claim rank 1")),
                    messages.toString());
            assertTrue(messages.stream().noneMatch("joined"::equals), "nobody may believe the world complete: "
                    + messages);
        }
    }

    @Test
    void rankZeroLeavingFailsTheOthersAtOnce() throws Exception {
        int port = freePort();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<RendezvousException>> others = new ArrayList<>();
            Future<?> root = pool.submit(() -> {
                // rank 0 joins and leaves without publishing; its last barrier waits only 300 ms
                try (Rendezvous ignored = Rendezvous.join(rank(0, 3, port, Duration.ofMillis(300)))) {
                    return null;
                }
            });
            for (int r = 1; r < 3; r++) {
                int rank = r;
                others.add(pool.submit(() -> {
                    try (Rendezvous rdzv = Rendezvous.join(rank(rank, 3, port, Duration.ofSeconds(30)))) {
                        return assertThrows(RendezvousException.class, () -> rdzv.broadcast("id", () -> null));
                    }
                }));
            }
            long t0 = System.nanoTime();
            root.get(10, TimeUnit.SECONDS);
            for (Future<RendezvousException> f : others) {
                RendezvousException e = f.get(10, TimeUnit.SECONDS);
                assertTrue(e.getMessage().matches("rank [12] of 3: could not receive 'id' from rank 0: lost the "
                        + "connection to the store at 127\\.0\\.0\\.1:" + port + " .*may have exited.*"), e.getMessage());
            }
            assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 10_000, "long before the 30 s wait");
        }
    }

    @Test
    void idleConnectionsDoNotDelayRankZerosClose() throws Exception {
        int port = freePort();
        List<StoreClient> idle = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Long>> closeMillis = onThreads(pool, new int[] {0, 1}, r -> {
                Rendezvous rdzv = Rendezvous.join(rank(r, 2, port, Duration.ofSeconds(20)));
                if (r == 1) {
                    for (int i = 0; i < 20; i++) { // logged-in connections that stay open past the job
                        idle.add(StoreClient.connect("127.0.0.1", port, token, Duration.ofSeconds(10)));
                    }
                }
                rdzv.barrier("idle-connected");
                long t0 = System.nanoTime();
                rdzv.close();
                return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            });
            long rank0 = closeMillis.get(0).get(30, TimeUnit.SECONDS);
            closeMillis.get(1).get(30, TimeUnit.SECONDS);
            assertTrue(rank0 < 3_000, "rank 0 closed after " + rank0 + " ms (it waited 5 s for idle connections)");
        } finally {
            idle.forEach(StoreClient::close);
        }
    }

    @Test
    void configurationProblemsAreClearBeforeAnyWait() throws Exception {
        LaunchEnvironment noToken = new LaunchEnvironment(1, 2, 1, 2, "127.0.0.1", 1234, "", Duration.ofSeconds(5),
                LaunchSource.TORCHRUN);
        String msg = assertThrows(IllegalArgumentException.class, () -> Rendezvous.join(noToken)).getMessage();
        assertTrue(msg.startsWith("USP4J_TOKEN is not set: ranks started by torchrun"), msg);

        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            RendezvousException e = assertThrows(RendezvousException.class,
                    () -> Rendezvous.join(rank(0, 2, taken.getLocalPort(), Duration.ofSeconds(5))));
            assertTrue(e.getMessage().startsWith("rank 0 of 2: cannot host the rendezvous store on 127.0.0.1:"
                    + taken.getLocalPort()), e.getMessage());
        }
        LaunchEnvironment spread = new LaunchEnvironment(0, 4, 0, 2, "localhost", 1234, token, Duration.ofSeconds(5),
                LaunchSource.TORCHRUN);
        String loop = assertThrows(IllegalArgumentException.class, () -> Rendezvous.join(spread)).getMessage();
        assertTrue(loop.contains("resolves to the loopback address") && loop.contains("several nodes"), loop);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        }
    }
}
