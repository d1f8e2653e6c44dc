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
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.api.AttentionLayer;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.BackendKind;
import org.usp4j.api.CommunicationException;
import org.usp4j.api.InProcessWorld;
import org.usp4j.api.LinearAttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.ProcessRank;
import org.usp4j.api.RankContext;
import org.usp4j.api.SequenceLayout;
import org.usp4j.api.Usp4j;
import org.usp4j.api.internal.CommunicatorRank;
import org.usp4j.comm.TrafficKind;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * A world over a caller's own NCCL communicator ({@link NcclGroupCommunicator#borrowWorld}), on
 * {@link FakeNccl} with one thread per rank and no store: its barrier and split agreement run over NCCL;
 * USP 2x2 through the public {@link AttentionLayer} equals an in-process CPU world exactly (the same
 * Java kernel, the same arithmetic in the same order; only who moves the bytes differs) and every rank's
 * forward bytes equal the cost model; closing never destroys or aborts the caller's communicator while
 * the splits usp4j made are destroyed exactly once; a stalled peer fails the others at the timeout with
 * a message that says no rank can be named and the caller's communicator is in an unknown state.
 */
@Timeout(120)
class BorrowedWorldTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(20);

    @Test
    void barrierAndSplitsRunOverTheCallersCommunicatorWithoutAStore() throws Exception {
        FakeNccl nccl = new FakeNccl(4, false);
        Mesh mesh = new Mesh(2, 2);
        List<List<List<Integer>>> groups = FakeRanks.values(BorrowedRanks.run(nccl, 4, TIMEOUT, r -> {
            NcclGroupCommunicator world = r.world();
            assertEquals(r.rank(), world.rank());
            assertEquals(4, world.size());
            world.barrier();
            try (MeshGroups g = MeshGroups.split(mesh, world); Arena arena = Arena.ofShared()) {
                NcclGroupCommunicator ulysses = (NcclGroupCommunicator) g.ulysses();
                NcclGroupCommunicator ring = (NcclGroupCommunicator) g.ring();
                // The group moves data: every member's rank, gathered in group order.
                Tensor send = HostDeviceBackend.deviceTensor(DType.F32, 1);
                Tensor recv = HostDeviceBackend.deviceTensor(DType.F32, 2);
                HostDeviceBackend.host(send).dtype().write(HostDeviceBackend.host(send).segment(), 0, r.rank());
                ulysses.allGather(send, recv);
                float[] got = NcclGroupCommunicatorTest.toArray(recv);
                assertEquals(ulysses.worldRanks().get(0), (int) got[0]);
                assertEquals(ulysses.worldRanks().get(1), (int) got[1]);
                ulysses.barrier();
                world.barrier();
                return List.of(ulysses.worldRanks(), ring.worldRanks());
            }
        }));
        for (int r = 0; r < 4; r++) {
            List<Integer> expectedUlysses = new ArrayList<>();
            List<Integer> expectedRing = new ArrayList<>();
            for (int j = 0; j < 4; j++) {
                if (mesh.ringRank(j) == mesh.ringRank(r)) {
                    expectedUlysses.add(j); // j ascending is ulysses-rank order in this mesh
                }
                if (mesh.ulyssesRank(j) == mesh.ulyssesRank(r)) {
                    expectedRing.add(j);
                }
            }
            assertEquals(List.of(expectedUlysses, expectedRing), groups.get(r), "groups of rank " + r);
            List<String> calls = NcclGroupCommunicatorTest.worldEndpoint(nccl, r).calls;
            assertEquals(2, count(calls, "allGather 1xINT32 on comm-" + r), "world barriers over NCCL: " + calls);
            assertEquals(2, count(calls, "allGather 2xINT32 on comm-" + r), "split agreements over NCCL: " + calls);
        }
        assertOwnership(nccl, 4, 2);
    }

    @Test
    void uspThroughThePublicLayerEqualsAnInProcessCpuWorldAndNeverDestroysTheCallersCommunicator() throws Exception {
        Mesh mesh = new Mesh(2, 2);
        AttentionOptions options = AttentionOptions.defaults().withCausal(true).withLayout(SequenceLayout.ZIGZAG);
        long b = 1, s = 32, h = 4, hkv = 2, d = 8;
        DType dtype = DType.F32;
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, dtype, 1, b, s, h, d);
            Tensor k = random(arena, dtype, 2, b, s, hkv, d);
            Tensor v = random(arena, dtype, 3, b, s, hkv, d);
            Tensor dout = random(arena, dtype, 4, b, s, h, d);
            Tensor[] expected = {Tensor.allocate(arena, dtype, q.shape()), Tensor.allocate(arena, dtype, q.shape()),
                    Tensor.allocate(arena, dtype, k.shape()), Tensor.allocate(arena, dtype, v.shape())};
            try (InProcessWorld cpu = Usp4j.cpuWorld(mesh.size())) {
                cpu.run(rank -> {
                    return step(rank, mesh, options, new Tensor[] {q, k, v, dout}, expected,
                            shape -> Tensor.allocate(arena, dtype, shape), t -> t, () -> null);
                });
            }
            Tensor[] got = {Tensor.allocate(arena, dtype, q.shape()), Tensor.allocate(arena, dtype, q.shape()),
                    Tensor.allocate(arena, dtype, k.shape()), Tensor.allocate(arena, dtype, v.shape())};
            FakeNccl nccl = new FakeNccl(mesh.size(), false);
            CpuAttentionKernel kernel = new CpuAttentionKernel();
            List<Map<TrafficKind, Long>> forwardBytes = FakeRanks.values(BorrowedRanks.run(nccl, mesh.size(), TIMEOUT, r -> {
                HostDeviceBackend backend = new HostDeviceBackend(kernel);
                // The rank as Usp4j.ncclRank makes it, but on the fake NCCL and "device" tensors over host memory.
                try (ProcessRank rank = new CommunicatorRank(r.world(), backend, BackendKind.CUDA, HostDeviceBackend.DEVICE,
                        () -> { }, List.of(r.world(), backend))) {
                    return step(rank, mesh, options, new Tensor[] {q, k, v, dout}, got,
                            shape -> HostDeviceBackend.deviceTensor(dtype, shape), HostDeviceBackend::host,
                            () -> r.world().traffic().snapshot());
                }
            }));
            String[] names = {"out", "dq", "dk", "dv"};
            for (int i = 0; i < 4; i++) {
                assertEquals(0, HostTensors.relativeError(got[i], expected[i]), names[i]);
            }
            RankBytes model = new UspPlan(new Mesh(2, 2), org.usp4j.sp.AttentionOptions.defaults())
                    .forwardBytes(new AttentionShapes(b, s, s, h, hkv, d), dtype);
            for (int r = 0; r < mesh.size(); r++) {
                assertEquals(model, new RankBytes(forwardBytes.get(r)), "forward bytes of rank " + r);
            }
            assertOwnership(nccl, mesh.size(), 2);
        }
    }

    @Test
    void aStalledPeerFailsTheOthersWithinTheTimeoutSayingWhatIsUnknown() throws Exception {
        Duration timeout = Duration.ofMillis(1500);
        long slack = 2_000; // the test machine is small and shared
        FakeNccl nccl = new FakeNccl(4, false);
        CountDownLatch finished = new CountDownLatch(3);
        List<FakeRanks.Outcome<long[]>> outcomes = BorrowedRanks.run(nccl, 4, timeout, r -> {
            if (r.rank() == 3) { // alive, but never makes its layer: never joins the split agreement
                finished.await();
                return null;
            }
            try (ProcessRank rank = new CommunicatorRank(r.world(), new HostDeviceBackend(new CpuAttentionKernel()),
                    BackendKind.CUDA, HostDeviceBackend.DEVICE, () -> { }, List.of(r.world()))) {
                long t0 = System.nanoTime();
                CommunicationException e = assertThrows(CommunicationException.class,
                        () -> rank.newAttention(new Mesh(2, 2), AttentionOptions.defaults()));
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                String m = e.getMessage();
                assertTrue(m.startsWith("rank " + r.rank() + " of 4: NCCL split agreement on group world (world ranks "
                        + "[0, 1, 2, 3]) did not complete within 1500 ms"), m);
                assertTrue(m.contains("no heartbeats and the rank(s) that stopped cannot be named"), m);
                assertTrue(m.contains("the caller's communicator is in an unknown state"), m);
                assertTrue(m.contains("ncclCommAbort"), m);
                RankFailureException cause = assertInstanceOf(RankFailureException.class, e.getCause());
                assertEquals(List.of(), cause.missingRanks());
                long told = System.nanoTime(); // the listener is told just after the failure is published
                while (r.failures().isEmpty() && System.nanoTime() - told < TimeUnit.SECONDS.toNanos(2)) {
                    Thread.sleep(5);
                }
                assertEquals(1, r.failures().size(), "the listener is told once");
                assertEquals(m, r.failures().getFirst().getMessage());
                assertThrows(RankFailureException.class, () -> r.world().barrier());
                return new long[] {millis};
            } finally {
                finished.countDown();
            }
        });
        for (int r = 0; r < 3; r++) {
            long millis = outcomes.get(r).get()[0];
            assertTrue(millis >= timeout.toMillis() - 100 && millis < timeout.toMillis() + slack, millis + " ms");
        }
        outcomes.get(3).get();
        for (int r = 0; r < 4; r++) {
            List<String> calls = NcclGroupCommunicatorTest.worldEndpoint(nccl, r).calls;
            assertFalse(calls.contains("abort") || calls.contains("destroy"),
                    "the caller's communicator is left to its owner: " + calls);
        }
        nccl.kill();
    }

    @Test
    void aCudaRankRefusesALinearAttentionLayerBeforeAnyCommunication() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        List<String> messages = FakeRanks.values(BorrowedRanks.run(nccl, 2, TIMEOUT, r -> {
            HostDeviceBackend backend = new HostDeviceBackend(new CpuAttentionKernel());
            try (ProcessRank rank = new CommunicatorRank(r.world(), backend, BackendKind.CUDA, HostDeviceBackend.DEVICE,
                    () -> { }, List.of(r.world(), backend))) {
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> rank.newLinearAttention(new Mesh(1, 2), LinearAttentionOptions.causal(0.9)));
                assertEquals(0, r.world().traffic().totalBytesSent(), "bytes sent before refusing");
                try (AttentionLayer softmax = rank.newAttention(new Mesh(1, 2), AttentionOptions.defaults())) {
                    assertEquals(new Mesh(1, 2), softmax.mesh(), "the rank still makes softmax layers");
                }
                return e.getMessage();
            }
        }));
        for (String m : messages) {
            assertEquals("linear attention layers run on CPU ranks only for now: this rank computes on host-device,"
                    + " which has no linear attention kernel", m);
        }
        assertOwnership(nccl, 2, 2); // the softmax layer's splits only: the refused layer split nothing
    }

    /**
     * One rank's forward and backward on its shard of q, k, v, dout through a layer of {@code rank};
     * the results go to its rows of {@code results} (out, dq, dk, dv). {@code allocate} makes the rank's
     * tensors, {@code host} views one as host memory. Returns what {@code afterForward} saw right after the
     * forward (the rank's bytes sent so far).
     */
    private static <T> T step(RankContext rank, Mesh mesh, AttentionOptions options, Tensor[] global, Tensor[] results,
                              Function<long[], Tensor> allocate, Function<Tensor, Tensor> host, Supplier<T> afterForward) {
        int me = rank.rank();
        long s = global[0].size(1);
        long[] positions = options.layout().globalPositions(s, mesh, me);
        Tensor[] in = new Tensor[4];
        for (int i = 0; i < 4; i++) {
            in[i] = allocate.apply(localShape(global[i], positions.length));
            for (int row = 0; row < positions.length; row++) {
                HostTensors.copy(global[i].slice(1, positions[row], 1), host.apply(in[i]).slice(1, row, 1));
            }
        }
        Tensor[] out = {allocate.apply(in[0].shape()), allocate.apply(in[0].shape()), allocate.apply(in[1].shape()),
                allocate.apply(in[2].shape())};
        T seen;
        try (AttentionLayer layer = rank.newAttention(mesh, options)) {
            layer.forward(in[0], in[1], in[2], out[0]);
            seen = afterForward.get();
            layer.backward(in[3], out[1], out[2], out[3]);
        }
        synchronized (results) { // ranks write disjoint rows; the lock only publishes them
            for (int i = 0; i < 4; i++) {
                for (int row = 0; row < positions.length; row++) {
                    HostTensors.copy(host.apply(out[i]).slice(1, row, 1), results[i].slice(1, positions[row], 1));
                }
            }
        }
        return seen;
    }

    private static long[] localShape(Tensor global, long rows) {
        long[] shape = global.shape().clone();
        shape[1] = rows;
        return shape;
    }

    /**
     * The caller's communicators (comm 0) are live, never destroyed or aborted; every communicator usp4j
     * split off was destroyed exactly once and never aborted; {@code splitsPerRank} of them per rank.
     */
    private static void assertOwnership(FakeNccl nccl, int ranks, int splitsPerRank) {
        List<FakeNccl.Endpoint> live = nccl.live();
        assertEquals(ranks, live.size(), "only the caller's communicators stay: " + live);
        for (FakeNccl.Endpoint e : live) {
            assertEquals(0, e.comm, "a live communicator that is not the caller's: " + e);
            assertFalse(e.calls.contains("destroy") || e.calls.contains("abort"), e.calls.toString());
        }
        List<FakeNccl.Endpoint> splits = nccl.endpoints().stream().filter(e -> e.comm != 0).toList();
        assertEquals(ranks * splitsPerRank, splits.size(), "splits made");
        for (FakeNccl.Endpoint e : splits) {
            assertEquals(1, count(e.calls, "destroy"), e + ": " + e.calls);
            assertEquals(0, count(e.calls, "abort"), e + ": " + e.calls);
        }
    }

    private static long count(List<String> calls, String call) {
        synchronized (calls) {
            return calls.stream().filter(call::equals).count();
        }
    }

    private static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }
}
