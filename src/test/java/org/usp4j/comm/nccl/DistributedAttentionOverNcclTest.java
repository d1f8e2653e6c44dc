package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.engine.ProcessRanks;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.launch.LaunchedRank;
import org.usp4j.launch.Rendezvous;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The multi-process run's own path (each rank shards the global inputs, runs USP over the NCCL
 * communicator, the results are all-gathered and rank 0 unshards them; figures through the store) over
 * P fake-NCCL ranks on threads: rank 0's global results equal the in-process run exactly (both run the
 * same reference kernel on the same blocks in the same order; {@code sp.DistributedAttentionTest} checks
 * that run against single-rank attention), every rank's bytes equal the cost model, forward plus
 * backward, and the gather itself is not counted.
 */
@Timeout(120)
class DistributedAttentionOverNcclTest {

    record Case(int ulysses, int ring, boolean causal, SequenceLayout layout, int heads, int kvHeads, DType dtype,
                boolean backward) {
        @Override
        public String toString() {
            return ulysses + "x" + ring + (causal ? " causal " : " full ") + layout + " h" + heads + "/" + kvHeads + " "
                    + dtype + (backward ? " forward+backward" : " forward");
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case(2, 2, true, SequenceLayout.ZIGZAG, 4, 2, DType.BF16, true),
                new Case(1, 3, false, SequenceLayout.CONTIGUOUS, 2, 2, DType.F32, false),
                new Case(2, 1, true, SequenceLayout.CONTIGUOUS, 2, 1, DType.F16, true));
    }

    /** A rank of the fake world as the distributed run sees one. */
    private record FakeRank(Rendezvous rendezvous, Communicator world, Backend backend) implements LaunchedRank {
        @Override
        public int device() {
            return HostDeviceBackend.DEVICE;
        }
    }

    /** What the attention command does on a launched rank: the plan's checks first, then one engine run. */
    static AttentionEngine.Result runOn(LaunchedRank rank, Mesh mesh, AttentionOptions options, Tensor q, Tensor k,
                                        Tensor v, Tensor dout, Arena arena) {
        UspPlan plan = new UspPlan(mesh, options);
        plan.validate(AttentionShapes.of(q, k, v));
        try (AttentionEngine engine = new AttentionEngine(new ProcessRanks(rank), plan)) {
            return engine.run(q, k, v, dout, arena);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rankZeroGetsTheInProcessResultAndEveryRanksBytes(Case c) throws Exception {
        Mesh mesh = new Mesh(c.ulysses(), c.ring());
        AttentionOptions options = new AttentionOptions(c.causal(), c.layout(), null);
        int b = 2, s = 8 * mesh.size(), d = 8;
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, c.dtype(), 11, b, s, c.heads(), d);
            Tensor k = random(arena, c.dtype(), 12, b, s, c.kvHeads(), d);
            Tensor v = random(arena, c.dtype(), 13, b, s, c.kvHeads(), d);
            Tensor dout = c.backward() ? random(arena, c.dtype(), 14, b, s, c.heads(), d) : null;
            ForwardResult expected;
            Gradients expectedGrads = null;
            try (AttentionEngine local = AttentionEngine.inProcess(new UspPlan(mesh, options),
                    r -> new CpuBackend(new ReferenceAttention()), Duration.ofSeconds(30))) {
                expected = local.forward(q, k, v, arena);
                if (c.backward()) {
                    expectedGrads = local.backward(dout, arena);
                }
            }
            FakeNccl nccl = new FakeNccl(mesh.size(), false);
            List<AttentionEngine.Result> results = FakeRanks.values(FakeRanks.run(nccl, mesh.size(),
                    Duration.ofSeconds(30), true, r -> {
                        try (HostDeviceBackend backend = new HostDeviceBackend(new ReferenceAttention())) {
                            return runOn(new FakeRank(r.rendezvous(), r.world(), backend), mesh,
                                    options, q, k, v, dout, arena);
                        }
                    }));

            AttentionEngine.Result root = results.get(0);
            assertEquals(0, HostTensors.relativeError(root.forward().out(), expected.out()), "out");
            assertEquals(0, HostTensors.relativeError(root.forward().lse(), expected.lse()), "lse");
            assertEquals(c.dtype(), root.forward().out().dtype());
            if (c.backward()) {
                assertEquals(0, HostTensors.relativeError(root.gradients().dq(), expectedGrads.dq()), "dq");
                assertEquals(0, HostTensors.relativeError(root.gradients().dk(), expectedGrads.dk()), "dk");
                assertEquals(0, HostTensors.relativeError(root.gradients().dv(), expectedGrads.dv()), "dv");
            } else {
                assertNull(root.gradients());
            }

            UspPlan plan = new UspPlan(mesh, options);
            AttentionShapes global = new AttentionShapes(b, s, s, c.heads(), c.kvHeads(), d);
            RankBytes model = plan.forwardBytes(global, c.dtype());
            if (c.backward()) {
                model = model.plus(plan.backwardBytes(global, c.dtype()));
            }
            assertEquals(mesh.size(), root.ranks().size());
            for (int r = 0; r < mesh.size(); r++) {
                AttentionEngine.RankFigures f = root.ranks().get(r);
                assertEquals(r, f.rank());
                assertEquals(model, f.bytesSent(), "bytes of rank " + r + " as rank 0 reports them");
                assertTrue(f.forwardSeconds().getFirst() > 0
                        && (c.backward() == (!f.backwardSeconds().isEmpty() && f.backwardSeconds().getFirst() > 0)),
                        f.toString());
            }
            for (int r = 1; r < mesh.size(); r++) {
                AttentionEngine.Result other = results.get(r);
                assertNull(other.forward(), "only rank 0 gets the results");
                assertEquals(List.of(r), other.ranks().stream().map(AttentionEngine.RankFigures::rank).toList());
                assertEquals(model, other.ranks().get(0).bytesSent(), "rank " + r + "'s own bytes");
            }
            // The gather went over NCCL: one all-gather per result on every rank's world endpoint.
            long gathers = nccl.endpoints().stream().filter(e -> e.comm == 0)
                    .mapToLong(e -> e.calls.stream().filter(call -> call.startsWith("allGather")).count()).sum();
            assertEquals((long) mesh.size() * (c.backward() ? 5 : 2), gathers);
            assertEquals(0, model.get(TrafficKind.ALL_GATHER), "USP itself never all-gathers");
        }
    }

    @Test
    void aWorldThatDoesNotMatchTheMeshIsRefusedBeforeAnyCommunication() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        FakeNccl nccl2 = new FakeNccl(2, false); // a fake world is made once
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, DType.F32, 1, 1, 16, 2, 8);
            List<FakeRanks.Outcome<Object>> outcomes = FakeRanks.run(nccl, 2, Duration.ofSeconds(30), true, r -> {
                try (HostDeviceBackend backend = new HostDeviceBackend(new ReferenceAttention())) {
                    return runOn(new FakeRank(r.rendezvous(), r.world(), backend), new Mesh(2, 2),
                            new AttentionOptions(false, SequenceLayout.CONTIGUOUS, null), q, q, q, null, arena);
                }
            });
            for (FakeRanks.Outcome<Object> o : outcomes) {
                assertTrue(o.error() instanceof IllegalArgumentException, String.valueOf(o.error()));
                assertEquals("mesh 2x2 needs 4 ranks, but the world has 2", o.error().getMessage());
            }
            Tensor k = random(arena, DType.F32, 2, 1, 16, 3, 8);
            outcomes = FakeRanks.run(nccl2, 2, Duration.ofSeconds(30), true, r -> {
                try (HostDeviceBackend backend = new HostDeviceBackend(new ReferenceAttention())) {
                    return runOn(new FakeRank(r.rendezvous(), r.world(), backend), new Mesh(2, 1),
                            new AttentionOptions(false, SequenceLayout.CONTIGUOUS, null), q, k, k, null, arena);
                }
            });
            for (FakeRanks.Outcome<Object> o : outcomes) {
                assertTrue(o.error() instanceof IllegalArgumentException, String.valueOf(o.error()));
                assertTrue(o.error().getMessage().contains("3"), o.error().getMessage());
            }
        }
        for (FakeNccl fake : List.of(nccl, nccl2)) {
            assertEquals(2, fake.endpoints().size(), "the world of 2, and no split");
            for (FakeNccl.Endpoint e : fake.endpoints()) {
                assertEquals(List.of("destroy"), e.calls, "no NCCL call after bad input but the clean end");
            }
        }
    }

    @Test
    void aRankThatNeverComesMakesTheOthersFailWithinTheTimeoutNamingIt() throws Exception {
        Duration timeout = Duration.ofMillis(1500);
        FakeNccl nccl = new FakeNccl(4, false);
        CountDownLatch othersDone = new CountDownLatch(3);
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, DType.F32, 1, 1, 16, 2, 8);
            List<FakeRanks.Outcome<Long>> outcomes = FakeRanks.run(nccl, 4, timeout, true, r -> {
                if (r.rank() == 3) {
                    r.world().watchdog().freeze(); // as if its process froze: no heartbeat, no call
                    othersDone.await();
                    return 0L;
                }
                long t0 = System.nanoTime();
                try (HostDeviceBackend backend = new HostDeviceBackend(new ReferenceAttention())) {
                    runOn(new FakeRank(r.rendezvous(), r.world(), backend), new Mesh(2, 2),
                            new AttentionOptions(true, SequenceLayout.ZIGZAG, null), q, q, q, null, arena);
                    return -1L;
                } finally {
                    othersDone.countDown();
                    assertTrue(System.nanoTime() - t0 < timeout.toNanos() + TimeUnit.SECONDS.toNanos(3), "bounded");
                }
            });
            for (int rank = 0; rank < 3; rank++) {
                Throwable e = outcomes.get(rank).error();
                assertTrue(e instanceof RankFailureException, String.valueOf(e));
                assertEquals(List.of(3), ((RankFailureException) e).missingRanks(), e.getMessage());
                assertTrue(e.getMessage().startsWith("rank " + rank + " of 4: split of group world"), e.getMessage());
                assertTrue(e.getMessage().contains("rank(s) [3] did not arrive within 1500 ms"), e.getMessage());
            }
        }
    }

    @Test
    void aRankTakesTheDeviceOfItsLocalRankOrSharesTheVisibleOnes() {
        assertEquals(3, NcclProcessRank.deviceFor(3, 8));
        assertEquals(0, NcclProcessRank.deviceFor(0, 1));
        assertEquals(0, NcclProcessRank.deviceFor(3, 1)); // CUDA_VISIBLE_DEVICES=0 for every process
        assertEquals(1, NcclProcessRank.deviceFor(3, 2));
        assertThrows(IllegalArgumentException.class, () -> NcclProcessRank.deviceFor(0, 0));
    }

    private static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }
}
