package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.comm.Communicator;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.launch.LaunchSource;
import org.usp4j.launch.Rendezvous;
import org.usp4j.launch.store.Tokens;
import org.usp4j.nccl.NcclException;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Failure handling with {@link FakeNccl} and the real store: a rank that stalls (its heartbeat stops, as
 * when a process dies or freezes) makes the others fail within the timeout with an error naming it, the
 * communicators are aborted, the failure listener is told, and every later call throws; never a hang.
 * With a timeout of 1.5 s the watchdog's round is 150 ms; an error must come after the timeout and at
 * most {@link #SLACK} later (generous: the machine running the tests is small and shared).
 */
@Timeout(60)
class RankFailureTest {

    private static final Duration TIMEOUT = Duration.ofMillis(1500);
    private static final long SLACK = 2_000;

    record Seen(RankFailureException error, long millis, List<RankFailureException> told, List<String> calls) {
    }

    @Test
    void aStalledPeerFailsTheCollectiveWithinTheTimeoutNamingIt() throws Exception {
        FakeNccl nccl = new FakeNccl(3, true);
        CountDownLatch finished = new CountDownLatch(2);
        List<FakeRanks.Outcome<Seen>> outcomes = FakeRanks.run(nccl, 3, TIMEOUT, false, r -> {
            if (r.rank() == 2) {
                r.world().watchdog().freeze(); // no more heartbeats, and it never joins the all-to-all
                finished.await();
                return null;
            }
            try (Arena arena = Arena.ofShared()) {
                Tensor send = HostDeviceBackend.deviceTensor(DType.F32, 3, 4);
                Tensor recv = HostDeviceBackend.deviceTensor(DType.F32, 3, 4);
                long t0 = System.nanoTime();
                r.world().allToAll(send, recv); // enqueued; the (fake) device waits for rank 2
                RankFailureException f = awaitFailure(r.world());
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                RankFailureException again = assertThrows(RankFailureException.class, () -> r.world().barrier());
                assertEquals(f.getMessage(), again.getMessage());
                assertThrows(RankFailureException.class, () -> r.world().allToAll(send, recv));
                finished.countDown();
                return new Seen(f, millis, told(r.failures()),
                        NcclGroupCommunicatorTest.worldEndpoint(nccl, r.rank()).calls);
            }
        });
        for (int rank = 0; rank < 2; rank++) {
            Seen s = outcomes.get(rank).get();
            String m = s.error().getMessage();
            assertEquals(List.of(2), s.error().missingRanks(), m);
            assertTrue(m.startsWith("rank " + rank + " of 3: NCCL allToAll on group world (world ranks [0, 1, 2]) did not "
                    + "complete within 1500 ms"), m);
            assertTrue(m.contains("rank(s) [2] sent no heartbeat for at least"), m);
            assertTrue(s.millis() >= TIMEOUT.toMillis() && s.millis() < TIMEOUT.toMillis() + SLACK, s.millis() + " ms");
            assertEquals(1, s.told().size(), "the listener is told once");
            assertEquals(m, s.told().getFirst().getMessage());
            assertTrue(s.calls().contains("abort"), "the communicator was aborted: " + s.calls());
            assertFalse(s.calls().contains("destroy"), "an aborted communicator is not destroyed as well");
        }
        assertTrue(nccl.live().isEmpty(), "rank 2 destroyed its communicator on close, the others aborted theirs");
    }

    /**
     * The rank's thread is stuck inside the NCCL call (inline stream: the fake receive blocks the caller
     * and keeps the endpoint locked). The watchdog cannot abort under it, but it still tells the listener
     * in time, which is what lets the CLI end the process; once the call returns, it throws the failure.
     */
    @Test
    void aRankStuckInsideNcclIsStillReportedInTime() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        AtomicReference<List<RankFailureException>> told = new AtomicReference<>();
        CountDownLatch finished = new CountDownLatch(1);
        try (ExecutorService test = Executors.newSingleThreadExecutor()) {
            Future<List<FakeRanks.Outcome<Throwable>>> run = test.submit(() -> FakeRanks.run(nccl, 2, TIMEOUT, true, r -> {
                if (r.rank() == 1) {
                    r.world().watchdog().freeze();
                    finished.await();
                    return null;
                }
                told.set(r.failures());
                try (Arena arena = Arena.ofShared()) {
                    Tensor send = HostDeviceBackend.deviceTensor(DType.F32, 2, 4);
                    Tensor recv = HostDeviceBackend.deviceTensor(DType.F32, 2, 4);
                    return assertThrows(RuntimeException.class, () -> r.world().allToAll(send, recv));
                } finally {
                    finished.countDown();
                }
            }));
            long t0 = System.nanoTime();
            while (told.get() == null || told.get().isEmpty()) {
                assertTrue(System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(TIMEOUT.toMillis() + SLACK),
                        "the listener was not told in time");
                Thread.sleep(10);
            }
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            RankFailureException f = told.get().getFirst();
            assertTrue(f.getMessage().contains("NCCL allToAll on group world (world ranks [0, 1]) did not complete "
                    + "within 1500 ms (still inside the NCCL call)"), f.getMessage());
            assertEquals(List.of(1), f.missingRanks());
            assertTrue(millis >= TIMEOUT.toMillis() - 100, millis + " ms");
            nccl.kill(); // the job is torn down: the stuck call returns
            Throwable thrown = run.get().getFirst().get();
            RankFailureException rethrown = assertInstanceOf(RankFailureException.class, thrown);
            assertEquals(f.getMessage(), rethrown.getMessage());
            assertTrue(NcclGroupCommunicatorTest.worldEndpoint(nccl, 0).calls.contains("abort"),
                    "aborted once the call had returned");
        }
    }

    @Test
    void anAsynchronousNcclErrorFailsTheRankAtOnce() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        List<FakeRanks.Outcome<Seen>> outcomes = FakeRanks.run(nccl, 2, TIMEOUT, false, r -> {
            try (Arena arena = Arena.ofShared()) {
                Tensor eight = HostDeviceBackend.deviceTensor(DType.F32, 8);
                Tensor four = HostDeviceBackend.deviceTensor(DType.F32, 4);
                long t0 = System.nanoTime();
                if (r.rank() == 0) {
                    r.world().sendRecv(List.of(eight), 1, List.of(), 1).await();
                    r.compute().synchronize();
                    return null;
                }
                r.world().sendRecv(List.of(), 0, List.of(four), 0); // expects 4 floats, gets 8
                RankFailureException f = awaitFailure(r.world());
                return new Seen(f, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), told(r.failures()),
                        List.of());
            }
        });
        Seen s = outcomes.get(1).get();
        assertTrue(s.error().getMessage().startsWith("rank 1 of 2: NCCL reported an asynchronous error on group world "
                + "(world ranks [0, 1]): fake NCCL: rank 0 sent 32 bytes but rank 1 receives 16 (message truncated)"),
                s.error().getMessage());
        assertFalse(s.error().getMessage().contains("heartbeat"), s.error().getMessage());
        assertTrue(s.millis() < TIMEOUT.toMillis(), "async errors do not wait for the timeout: " + s.millis() + " ms");
        assertEquals(List.of(), s.error().missingRanks());
        assertEquals(1, s.told().size());
    }

    @Test
    void aBarrierNamesTheRankThatDidNotCome() throws Exception {
        FakeNccl nccl = new FakeNccl(3, false);
        CountDownLatch finished = new CountDownLatch(2);
        List<FakeRanks.Outcome<Seen>> outcomes = FakeRanks.run(nccl, 3, TIMEOUT, true, r -> {
            if (r.rank() == 1) {
                finished.await();
                return null;
            }
            long t0 = System.nanoTime();
            RankFailureException f = assertThrows(RankFailureException.class, () -> r.world().barrier());
            finished.countDown();
            return new Seen(f, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), told(r.failures()), List.of());
        });
        for (int rank : new int[] {0, 2}) {
            Seen s = outcomes.get(rank).get();
            assertEquals(List.of(1), s.error().missingRanks());
            assertTrue(s.error().getMessage().contains("rank " + rank + " of 3: barrier on group world (world ranks [0, 1, 2]): rank(s) [1] did "
                    + "not arrive"), s.error().getMessage());
            assertTrue(s.millis() < TIMEOUT.toMillis() + SLACK, s.millis() + " ms");
            assertEquals(1, s.told().size());
        }
    }

    /** Alive (heartbeat fresh) but never making the call: not named, and the message says so. */
    @Test
    void aLiveRankThatSkipsTheCallIsNotBlamed() throws Exception {
        FakeNccl nccl = new FakeNccl(2, true);
        CountDownLatch finished = new CountDownLatch(1);
        List<FakeRanks.Outcome<RankFailureException>> outcomes = FakeRanks.run(nccl, 2, TIMEOUT, false, r -> {
            if (r.rank() == 1) {
                finished.await();
                return null;
            }
            try (Arena arena = Arena.ofShared()) {
                Tensor t = HostDeviceBackend.deviceTensor(DType.F32, 2);
                r.world().allGather(t.slice(0, 0, 1), t);
                RankFailureException f = awaitFailure(r.world());
                finished.countDown();
                return f;
            }
        });
        RankFailureException f = outcomes.getFirst().get();
        assertEquals(List.of(), f.missingRanks());
        assertTrue(f.getMessage().endsWith("every rank's heartbeat is fresh, so a rank did not make the same call "
                + "(or is stuck outside NCCL)"), f.getMessage());
    }

    /**
     * An NCCL error from a grouped call (here ncclGroupEnd, after the group was launched) fails the rank at once:
     * NCCL's rule is to abort every communicator of a failed group, whose launched part is not timed otherwise.
     */
    @Test
    void anNcclErrorInAGroupFailsTheRankAndAbortsItsCommunicators() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        List<FakeRanks.Outcome<List<String>>> outcomes = FakeRanks.run(nccl, 2, TIMEOUT, false, r -> {
            FakeNccl.Endpoint world = NcclGroupCommunicatorTest.worldEndpoint(nccl, r.rank());
            NcclException broken = new NcclException("ncclGroupEnd", 2, "unhandled system error", "socket closed");
            if (r.rank() == 0) {
                world.groupEndFailure = broken;
            }
            try (Arena arena = Arena.ofShared()) {
                Tensor send = HostDeviceBackend.deviceTensor(DType.F32, 2, 4);
                Tensor recv = HostDeviceBackend.deviceTensor(DType.F32, 2, 4);
                int peer = 1 - r.rank();
                if (r.rank() == 1) { // its peer's abort may come before its message: then it times out, as with NCCL
                    r.world().sendRecv(List.of(send), peer, List.of(recv), peer).await();
                    return world.calls;
                }
                RankFailureException f = assertThrows(RankFailureException.class,
                        () -> r.world().sendRecv(List.of(send), peer, List.of(recv), peer));
                assertTrue(f.getMessage().startsWith("rank 0 of 2: NCCL sendRecv (1 to rank 1, 1 from rank 1) on group "
                        + "world (world ranks [0, 1]) failed: ncclGroupEnd failed: ncclSystemError (2)"), f.getMessage());
                assertEquals(broken, f.getCause());
                assertTrue(world.calls.contains("abort"), "aborted at once: " + world.calls);
                assertThrows(RankFailureException.class, () -> r.world().barrier());
                assertEquals(1, told(r.failures()).size(), "the listener is told once");
                return world.calls;
            }
        });
        List<String> calls0 = outcomes.get(0).get();
        outcomes.get(1).get();
        assertEquals(1, calls0.stream().filter("abort"::equals).count(), "aborted once, never destroyed: " + calls0);
        assertFalse(calls0.contains("destroy"), calls0::toString);
    }

    /**
     * The rank thread stuck inside a collective on a split: the watchdog reports in time but aborts none of the
     * rank's communicators, the world included, until that call has returned (NCCL allows no NCCL call in
     * flight during ncclCommAbort); then every one is aborted.
     */
    @Test
    void noCommunicatorOfTheRankIsAbortedWhileItsThreadIsInsideNccl() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        AtomicReference<List<RankFailureException>> told = new AtomicReference<>();
        CountDownLatch finished = new CountDownLatch(1);
        try (ExecutorService test = Executors.newSingleThreadExecutor()) {
            Future<List<FakeRanks.Outcome<Throwable>>> run = test.submit(() -> FakeRanks.run(nccl, 2, TIMEOUT, true, r -> {
                Communicator split = r.world().split(0, r.rank());
                if (r.rank() == 1) {
                    r.world().watchdog().freeze();
                    finished.await();
                    return null;
                }
                told.set(r.failures());
                try (Arena arena = Arena.ofShared()) {
                    Tensor send = HostDeviceBackend.deviceTensor(DType.F32, 2, 4);
                    Tensor recv = HostDeviceBackend.deviceTensor(DType.F32, 2, 4);
                    return assertThrows(RuntimeException.class, () -> split.allToAll(send, recv));
                } finally {
                    finished.countDown();
                }
            }));
            try {
                long t0 = System.nanoTime();
                while (told.get() == null || told.get().isEmpty()) {
                    assertTrue(System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(TIMEOUT.toMillis() + SLACK),
                            "the listener was not told in time");
                    Thread.sleep(10);
                }
                Thread.sleep(TIMEOUT.toMillis() / 2); // five more rounds in which the watchdog retries its aborts
                assertEquals(List.of(), List.copyOf(nccl.abortsUnderACall));
                assertFalse(NcclGroupCommunicatorTest.worldEndpoint(nccl, 0).calls.contains("abort"),
                        "the world was aborted while the rank's thread was inside NCCL on the split");
            } finally {
                nccl.kill(); // the job is torn down: the stuck call returns
            }
            assertInstanceOf(RankFailureException.class, run.get().getFirst().get());
            assertEquals(List.of(), List.copyOf(nccl.abortsUnderACall));
            for (FakeNccl.Endpoint e : nccl.endpoints()) {
                if (e.worldRank == 0) {
                    assertTrue(e.calls.contains("abort") && !e.calls.contains("destroy"), "comm " + e.comm + ": " + e.calls);
                }
            }
        }
    }

    /**
     * A peer that agreed on the split but never calls {@code ncclCommSplit}: the rank fails in time, yet the
     * world is not aborted while the helper thread is still inside {@code ncclCommSplit} on it (with blocking
     * communicators NCCL frees the communicator under the call); it is aborted once the call has returned.
     */
    @Test
    void aSplitThatNeverReturnsIsReportedWithoutAbortingTheParentUnderIt() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        nccl.stallSplitsOf(1);
        List<FakeRanks.Outcome<RankFailureException>> outcomes = FakeRanks.run(nccl, 2, TIMEOUT, true, r -> {
            RankFailureException f = assertThrows(RankFailureException.class, () -> r.world().split(0, r.rank()));
            Thread.sleep(5 * r.world().watchdog().interval().toMillis()); // rounds in which the watchdog retries its abort
            if (r.rank() == 0) {
                assertEquals(List.of(), List.copyOf(nccl.abortsUnderACall), "aborted while ncclCommSplit was inside");
                nccl.kill(); // the job is torn down: the stuck splits return
            }
            return f;
        });
        RankFailureException f = outcomes.get(0).get();
        assertTrue(f.getMessage().startsWith("rank 0 of 2: NCCL ncclCommSplit on group world (world ranks [0, 1]) did "
                + "not complete within 1500 ms (still inside the NCCL call)"), f.getMessage());
        outcomes.get(1).get();
        assertEquals(List.of(), List.copyOf(nccl.abortsUnderACall), "aborted while ncclCommSplit was inside");
        for (int rank = 0; rank < 2; rank++) {
            List<String> calls = NcclGroupCommunicatorTest.worldEndpoint(nccl, rank).calls;
            assertTrue(calls.contains("abort") && !calls.contains("destroy"), "rank " + rank + ": " + calls);
        }
    }

    /** A rank that joined the rendezvous but never creates its communicator: init fails in time, naming it. */
    @Test
    void worldCreationNamesARankThatNeverJoinsNccl() throws Exception {
        int world = 3;
        FakeNccl nccl = new FakeNccl(world, false);
        int port = FakeRanks.freePort();
        String token = Tokens.generate();
        CountDownLatch finished = new CountDownLatch(2);
        try (ExecutorService pool = Executors.newFixedThreadPool(world)) {
            List<Future<Seen>> ranks = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                LaunchEnvironment env = new LaunchEnvironment(r, world, r, world, "127.0.0.1", port, token, TIMEOUT,
                        LaunchSource.USP4J);
                int rank = r;
                ranks.add(pool.submit(() -> {
                    try (Rendezvous rdzv = Rendezvous.join(env); FakeStream compute = FakeStream.inline("compute");
                         FakeStream comm = FakeStream.queued("comm")) {
                        if (rank == 2) {
                            finished.await();
                            return null;
                        }
                        List<RankFailureException> told = new ArrayList<>();
                        long t0 = System.nanoTime();
                        RankFailureException f = assertThrows(RankFailureException.class, () ->
                                NcclGroupCommunicator.createWorld(rdzv, nccl.factory(rank), 0, compute, comm, null, told::add));
                        finished.countDown();
                        return new Seen(f, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), told, List.of());
                    }
                }));
            }
            for (int r = 0; r < 2; r++) {
                Seen s = ranks.get(r).get();
                assertTrue(s.error().getMessage().startsWith("rank " + r + " of 3: NCCL ncclCommInitRank on group world "
                        + "(world ranks [0, 1, 2]) did not complete within 1500 ms (still inside the NCCL call)"),
                        s.error().getMessage());
                assertEquals(List.of(2), s.error().missingRanks());
                assertTrue(s.millis() < TIMEOUT.toMillis() + SLACK, s.millis() + " ms");
            }
            ranks.get(2).get(); // rank 2 left cleanly
        } catch (ExecutionException e) {
            throw new AssertionError(e.getCause());
        } finally {
            nccl.kill(); // the helper threads still waiting in the fake init
        }
    }

    /** Polls the rank's health as a rank thread does after waiting on the device; at most timeout + slack. */
    /** The failures the listener was told of: it is told just after the failure is published, so wait for it. */
    private static List<RankFailureException> told(List<RankFailureException> failures) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SLACK);
        while (failures.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        Thread.sleep(20); // a second, wrong notification would show up here
        return List.copyOf(failures);
    }

    private static RankFailureException awaitFailure(NcclGroupCommunicator c) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT.toMillis() + SLACK);
        while (System.nanoTime() < deadline) {
            try {
                c.checkHealthy();
            } catch (RankFailureException e) {
                return e;
            }
            Thread.sleep(5);
        }
        throw new AssertionError("no failure within " + (TIMEOUT.toMillis() + SLACK) + " ms");
    }
}
