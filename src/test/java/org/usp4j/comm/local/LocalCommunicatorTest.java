package org.usp4j.comm.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.Transfer;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

class LocalCommunicatorTest {

    private final Arena arena = Arena.ofShared();

    @AfterEach
    void tearDown() {
        arena.close();
    }

    /** A value that says who sent it, to whom, and which element it is. */
    private static float code(int src, int dst, int i) {
        return src * 1000 + dst * 100 + i;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4})
    void allToAllDeliversBlockJToRankJ(int p) {
        int block = 5;
        try (LocalWorld world = new LocalWorld(p)) {
            world.run((rank, comm) -> {
                Tensor send = Tensor.allocate(arena, DType.F32, p * block);
                Tensor recv = Tensor.allocate(arena, DType.F32, p * block);
                for (int j = 0; j < p; j++) {
                    for (int i = 0; i < block; i++) {
                        send.set(code(rank, j, i), j * block + i);
                    }
                }
                comm.allToAll(send, recv);
                for (int src = 0; src < p; src++) {
                    for (int i = 0; i < block; i++) {
                        assertEquals(code(src, rank, i), recv.get(src * block + i));
                    }
                }
                return null;
            });
            for (int r = 0; r < p; r++) {
                assertEquals((long) (p - 1) * block * 4, world.traffic(r).bytesSent(TrafficKind.ALL_TO_ALL));
                assertEquals(0, world.traffic(r).bytesSent(TrafficKind.P2P));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 4})
    void allGatherConcatenatesInRankOrder(int p) {
        try (LocalWorld world = new LocalWorld(p)) {
            world.run((rank, comm) -> {
                Tensor send = Tensor.allocate(arena, DType.BF16, 2, 3);
                for (int i = 0; i < 6; i++) {
                    send.set(code(rank, 0, i), i / 3, i % 3);
                }
                Tensor recv = Tensor.allocate(arena, DType.BF16, p, 2, 3);
                comm.allGather(send, recv);
                for (int src = 0; src < p; src++) {
                    for (int i = 0; i < 6; i++) {
                        assertEquals(DType.BF16.round(code(src, 0, i)), recv.get(src, i / 3, i % 3));
                    }
                }
                return null;
            });
            for (int r = 0; r < p; r++) {
                assertEquals((long) (p - 1) * 12, world.traffic(r).bytesSent(TrafficKind.ALL_GATHER));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 5})
    void ringSendRecvOverlapsAndCountsOnlyPeerBytes(int p) {
        try (LocalWorld world = new LocalWorld(p)) {
            world.run((rank, comm) -> {
                Tensor a = Tensor.allocate(arena, DType.F32, 8);
                Tensor b = Tensor.allocate(arena, DType.F16, 3);
                for (int i = 0; i < 8; i++) {
                    a.set(code(rank, 0, i), i);
                }
                b.set(rank, 2);
                Tensor a2 = Tensor.allocate(arena, DType.F32, 8);
                Tensor b2 = Tensor.allocate(arena, DType.F16, 3);
                int right = (rank + 1) % p;
                int left = (rank + p - 1) % p;
                // Two exchanges in flight at once, as the ring backward does with K/V and dK/dV.
                Transfer first = comm.sendRecv(List.of(a), right, List.of(a2), left);
                Transfer second = comm.sendRecv(List.of(b), right, List.of(b2), left);
                second.await();
                first.await();
                first.await();
                for (int i = 0; i < 8; i++) {
                    assertEquals(code(left, 0, i), a2.get(i));
                }
                assertEquals(left, b2.get(2));
                return null;
            });
            for (int r = 0; r < p; r++) {
                assertEquals(p == 1 ? 0 : 8 * 4 + 3 * 2, world.traffic(r).bytesSent(TrafficKind.P2P));
            }
        }
    }

    @Test
    void sendRecvReturnsBeforeThePeerHasPosted() {
        try (LocalWorld world = new LocalWorld(2, Duration.ofSeconds(10))) {
            CountDownLatch firstPosted = new CountDownLatch(1);
            world.run((rank, comm) -> {
                Tensor out = Tensor.allocate(arena, DType.F32, 4);
                Tensor in = Tensor.allocate(arena, DType.F32, 4);
                out.set(rank + 1, 3);
                if (rank == 0) {
                    // Had sendRecv waited for rank 1, rank 1 (which waits for this latch) would never post.
                    Transfer t = comm.sendRecv(List.of(out), 1, List.of(in), 1);
                    firstPosted.countDown();
                    t.await();
                } else {
                    assertTrue(firstPosted.await(5, TimeUnit.SECONDS), "rank 0 blocked in sendRecv");
                    comm.sendRecv(List.of(out), 0, List.of(in), 0).await();
                }
                assertEquals(2 - rank, in.get(3));
                return null;
            });
        }
    }

    @Test
    void splitFormsGroupsOrderedByKeyAndSharesTheCounter() {
        int p = 6;
        ConcurrentHashMap<Integer, int[]> seen = new ConcurrentHashMap<>();
        try (LocalWorld world = new LocalWorld(p)) {
            world.run((rank, comm) -> {
                // Two groups of three (color = rank / 3), ordered by descending world rank.
                try (Communicator sub = comm.split(rank / 3, -rank)) {
                    Tensor send = Tensor.allocate(arena, DType.F32, sub.size());
                    Tensor recv = Tensor.allocate(arena, DType.F32, sub.size());
                    for (int j = 0; j < sub.size(); j++) {
                        send.set(rank, j);
                    }
                    sub.allToAll(send, recv);
                    int[] peers = new int[sub.size()];
                    for (int j = 0; j < sub.size(); j++) {
                        peers[j] = (int) recv.get(j);
                    }
                    seen.put(rank, new int[] {sub.rank(), sub.size(), ((LocalCommunicator) sub).worldRank(),
                            peers[0], peers[1], peers[2]});
                    assertSame(comm.traffic(), sub.traffic());
                }
                return null;
            });
            for (int r = 0; r < p; r++) {
                int[] s = seen.get(r);
                int base = r / 3 * 3;
                assertEquals(2 - (r - base), s[0], "sub rank of " + r);
                assertEquals(3, s[1]);
                assertEquals(r, s[2]);
                // Sub rank j is world rank base + 2 - j.
                assertEquals(base + 2, s[3]);
                assertEquals(base + 1, s[4]);
                assertEquals(base, s[5]);
                assertEquals(2 * 4, world.traffic(r).bytesSent(TrafficKind.ALL_TO_ALL));
            }
        }
    }

    @Test
    void aFailingRankMakesTheOthersFailNamingIt() {
        try (LocalWorld world = new LocalWorld(4, Duration.ofSeconds(30))) {
            ConcurrentHashMap<Integer, Throwable> errors = new ConcurrentHashMap<>();
            long start = System.nanoTime();
            IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> world.run((rank, comm) -> {
                if (rank == 2) {
                    throw new IllegalStateException("rank two is broken");
                }
                try {
                    comm.barrier();
                } catch (LocalCommunicationException e) {
                    errors.put(rank, e);
                    throw e;
                }
                return null;
            }));
            double seconds = (System.nanoTime() - start) / 1e9;
            assertEquals("rank two is broken", thrown.getMessage());
            assertTrue(seconds < 5, "others should fail at once, not after the timeout: " + seconds + " s");
            assertEquals(3, errors.size());
            errors.values().forEach(e -> assertTrue(e.getMessage().contains("rank 2 failed"), e.getMessage()));
            assertTrue(world.isAborted());
            assertThrows(IllegalStateException.class, () -> world.run((rank, comm) -> null));
        }
    }

    @Test
    void aRankThatNeverArrivesIsNamedAfterTheTimeout() {
        try (LocalWorld world = new LocalWorld(3, Duration.ofMillis(300))) {
            long start = System.nanoTime();
            LocalCommunicationException e = assertThrows(LocalCommunicationException.class, () -> world.run((rank, comm) -> {
                if (rank != 1) {
                    comm.barrier();
                }
                return null;
            }));
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(e.getMessage().contains("rank(s) [1]") && e.getMessage().contains("never arrived"), e.getMessage());
            assertTrue(seconds < 3, "took " + seconds + " s");
        }
    }

    @Test
    void aMissingSenderIsNamedAfterTheTimeoutAndTheOthersAreReleased() throws InterruptedException {
        try (LocalWorld world = new LocalWorld(2, Duration.ofMillis(300))) {
            CountDownLatch stalled = new CountDownLatch(1);
            LocalCommunicationException e = assertThrows(LocalCommunicationException.class, () -> world.run((rank, comm) -> {
                if (rank == 0) {
                    Tensor in = Tensor.allocate(arena, DType.F32, 4);
                    comm.sendRecv(List.of(), 1, List.of(in), 1).await();
                } else {
                    // Rank 1 stalls (no send) until the world is aborted, then fails at its next wait.
                    stalled.await(2, TimeUnit.SECONDS);
                    comm.barrier();
                }
                return null;
            }));
            assertTrue(e.getMessage().contains("rank 0 timed out") && e.getMessage().contains("waiting for rank 1 to send"),
                    e.getMessage());
        }
    }

    @Test
    void mismatchedSizesAreRefusedNamingBothRanks() {
        try (LocalWorld world = new LocalWorld(2, Duration.ofSeconds(5))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> world.run((rank, comm) -> {
                Tensor t = Tensor.allocate(arena, DType.F32, rank == 0 ? 4 : 6);
                comm.allGather(t, Tensor.allocate(arena, DType.F32, 2 * t.numel()));
                return null;
            }));
            assertTrue(e.getMessage().contains("rank 0") && e.getMessage().contains("rank 1"), e.getMessage());
        }
    }

    @Test
    void badBuffersAndClosedCommunicatorsAreRefused() {
        try (LocalWorld world = new LocalWorld(2)) {
            Communicator c = world.communicator(0);
            Tensor t = Tensor.allocate(arena, DType.F32, 4, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> c.allToAll(t.transpose(0, 1), t));
            assertTrue(e.getMessage().contains("contiguous"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> c.allToAll(t, Tensor.allocate(arena, DType.F32, 15)));
            assertTrue(e.getMessage().contains("F32[15]"), e.getMessage());
            assertThrows(IndexOutOfBoundsException.class, () -> c.sendRecv(List.of(t), 2, List.of(), 0));
            assertThrows(IllegalArgumentException.class, () -> new LocalWorld(0));
            assertThrows(IllegalArgumentException.class, () -> new LocalWorld(2, Duration.ZERO));
            c.close();
            assertThrows(IllegalStateException.class, c::barrier);
        }
    }
}
