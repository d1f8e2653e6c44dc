package org.usp4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.usp4j.api.internal.CommunicatorRank;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.sp.AllGatherAttention;
import org.usp4j.sp.LightSeqAttention;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.RingAttention;
import org.usp4j.sp.TokenRingAttention;
import org.usp4j.sp.UspPlan;
import org.usp4j.sp.linear.Lasp2Attention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The layer kinds of the public API on in-process CPU worlds: softmax layers with the all-gather ring
 * algorithm against float64 softmax attention, linear attention layers (LASP-2) against float64 linear
 * attention from its formulas, over the whole sequence, forward and backward; relative Frobenius error
 * F32 1e-4, BF16 2e-2 (inputs, outputs and exchanged data round to bf16). The algorithm each layer runs is
 * the one chosen: every rank's bytes by kind equal that algorithm's cost model (the models differ), the
 * public {@link RingAlgorithm} constants are exactly the {@code --ring-algo} names, and a layout the
 * algorithm cannot run is refused when the layer is made.
 */
class LayerKindsTest {

    private static final long B = 2, S = 32, D = 8;

    @ParameterizedTest(name = "mesh {0}x{1} causal={2} {3} h={4} hkv={5} {6}")
    @CsvSource({
            "1, 4, true, ZIGZAG, 4, 2, F32",
            "2, 2, false, CONTIGUOUS, 4, 4, F32",
            "2, 2, true, CONTIGUOUS, 4, 1, F32",
            "2, 2, true, ZIGZAG, 4, 2, BF16"})
    void allGatherLayersEqualWholeSequenceAttention(int u, int r, boolean causal, SequenceLayout layout, long h,
                                                    long hkv, DType dtype) {
        Mesh mesh = new Mesh(u, r);
        AttentionOptions options = AttentionOptions.defaults().withCausal(causal).withLayout(layout)
                .withRingAlgorithm(RingAlgorithm.ALLGATHER);
        try (Arena arena = Arena.ofShared()) {
            Tensor[] in = inputs(arena, dtype, h, hkv);
            Tensor[] got = runEveryRank(mesh, layout, rank -> rank.newAttention(mesh, options), in, arena);
            compare(GlobalAttention.reference(in[0], in[1], in[2], in[3], options, arena), got, dtype);
        }
    }

    @ParameterizedTest(name = "mesh {0}x{1} causal={2} decay={3} h={4} hkv={5} {6}")
    @CsvSource({
            "1, 1, true, 0.9, 4, 4, F32",
            "1, 4, true, 0.95, 4, 2, F32",
            "2, 2, true, 1, 4, 2, F32",
            "2, 2, false, 1, 4, 4, F32",
            "4, 1, true, 0.9, 4, 1, F32",
            "1, 4, true, 0.9, 4, 4, BF16"})
    void linearLayersEqualWholeSequenceLinearAttention(int u, int r, boolean causal, double decay, long h, long hkv,
                                                       DType dtype) {
        Mesh mesh = new Mesh(u, r);
        LinearAttentionOptions options = causal ? LinearAttentionOptions.causal(decay)
                : LinearAttentionOptions.nonCausal();
        try (Arena arena = Arena.ofShared()) {
            Tensor[] in = inputs(arena, dtype, h, hkv);
            Tensor[] got = runEveryRank(mesh, SequenceLayout.CONTIGUOUS, rank -> rank.newLinearAttention(mesh, options),
                    in, arena);
            compare(GlobalAttention.linearReference(in[0], in[1], in[2], in[3], options, arena), got, dtype);
        }
    }

    @Test
    void aLinearLayerWithAScaleEqualsLinearAttentionWithThatScale() {
        Mesh mesh = new Mesh(2, 2);
        LinearAttentionOptions options = LinearAttentionOptions.causal(0.8).withScale(0.25);
        try (Arena arena = Arena.ofShared()) {
            Tensor[] in = inputs(arena, DType.F32, 4, 2);
            Tensor[] got = runEveryRank(mesh, SequenceLayout.CONTIGUOUS, rank -> rank.newLinearAttention(mesh, options),
                    in, arena);
            compare(GlobalAttention.linearReference(in[0], in[1], in[2], in[3], options, arena), got, DType.F32);
        }
    }

    /** The internal algorithm each public constant must run, named here rather than looked up. */
    private static final Map<RingAlgorithm, org.usp4j.sp.RingAlgorithm> RUNS = Map.of(
            RingAlgorithm.RING, RingAttention.ALGORITHM, RingAlgorithm.ALLGATHER, AllGatherAttention.ALGORITHM,
            RingAlgorithm.TOKENRING, TokenRingAttention.ALGORITHM, RingAlgorithm.LIGHTSEQ, LightSeqAttention.ALGORITHM);

    @ParameterizedTest
    @EnumSource(RingAlgorithm.class)
    void everyRingAlgorithmEqualsWholeSequenceAttentionAndSendsItsOwnBytes(RingAlgorithm algorithm) {
        Mesh mesh = new Mesh(2, 2);
        AttentionOptions options = AttentionOptions.defaults().withCausal(true).withRingAlgorithm(algorithm);
        try (Arena arena = Arena.ofShared()) {
            Tensor[] in = inputs(arena, DType.F32, 4, 2);
            Tensor[] got = runEveryRank(mesh, options.layout(), rank -> rank.newAttention(mesh, options), in, arena);
            compare(GlobalAttention.reference(in[0], in[1], in[2], in[3], options, arena), got, DType.F32);
        }
        org.usp4j.sp.AttentionOptions causal = new org.usp4j.sp.AttentionOptions(true,
                org.usp4j.sp.SequenceLayout.CONTIGUOUS, null);
        assertBytes(new UspPlan(new Mesh(2, 2), causal, RUNS.get(algorithm)), mesh,
                rank -> rank.newAttention(mesh, options));
    }

    @Test
    void aLinearLayerSendsLasp2sBytesAndTheChoiceIsSeenInThem() {
        Mesh mesh = new Mesh(2, 2);
        Mesh internal = new Mesh(2, 2);
        UspPlan lasp2 = Lasp2Attention.plan(internal, org.usp4j.sp.linear.LinearAttentionOptions.of(true, 0.9, null));
        assertBytes(lasp2, mesh, rank -> rank.newLinearAttention(mesh, LinearAttentionOptions.causal(0.9)));
        org.usp4j.sp.AttentionOptions causal = new org.usp4j.sp.AttentionOptions(true,
                org.usp4j.sp.SequenceLayout.CONTIGUOUS, null);
        AttentionShapes global = new AttentionShapes(B, S, S, 4, 2, D);
        RankBytes ring = new UspPlan(internal, causal, RingAttention.ALGORITHM).forwardBytes(global, DType.F32);
        assertNotEquals(ring, new UspPlan(internal, causal, AllGatherAttention.ALGORITHM).forwardBytes(global, DType.F32));
        assertNotEquals(ring, lasp2.forwardBytes(global, DType.F32));
    }

    @Test
    void aLayoutItsAlgorithmCannotRunIsRefusedWhenTheLayerIsMade() {
        try (InProcessWorld world = Usp4j.cpuWorld(2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> world.run(rank ->
                    rank.newAttention(new Mesh(1, 2), AttentionOptions.defaults().withCausal(true)
                            .withLayout(SequenceLayout.ZIGZAG).withRingAlgorithm(RingAlgorithm.LIGHTSEQ))));
            assertEquals("ring algorithm lightseq does not support the zigzag layout (it supports [CONTIGUOUS])",
                    e.getMessage());
        }
    }

    @Test
    void theRingAlgorithmConstantsAreTheCommandLinesNames() {
        assertEquals(RingAlgorithms.names(), Arrays.stream(RingAlgorithm.values())
                        .map(a -> a.name().toLowerCase(Locale.ROOT)).toList(),
                "every --ring-algo name needs a RingAlgorithm constant of that name in upper case, in registry order");
        AttentionOptions d = AttentionOptions.defaults();
        assertEquals(RingAlgorithm.RING, d.ringAlgorithm());
        AttentionOptions all = d.withCausal(true).withRingAlgorithm(RingAlgorithm.ALLGATHER);
        assertEquals(RingAlgorithm.ALLGATHER, all.ringAlgorithm());
        assertTrue(all.causal(), "the other options stay");
        assertNotEquals(d.withCausal(true), all);
        assertEquals(d.withCausal(true), all.withRingAlgorithm(RingAlgorithm.RING));
        assertEquals(all.hashCode(), d.withRingAlgorithm(RingAlgorithm.ALLGATHER).withCausal(true).hashCode());
        assertEquals("causal, contiguous, scale 1/sqrt(d), ring algorithm allgather", all.toString());
        assertEquals("causal, contiguous, scale 1/sqrt(d)", d.withCausal(true).toString());
    }

    @Test
    void linearOptionsAreValues() {
        LinearAttentionOptions none = LinearAttentionOptions.nonCausal();
        assertFalse(none.causal());
        assertEquals(1, none.decay(), 0);
        assertEquals(1, none.scale(), 0);
        LinearAttentionOptions c = LinearAttentionOptions.causal(0.99).withScale(0.125);
        assertTrue(c.causal());
        assertEquals(0.99, c.decay(), 0);
        assertEquals(0.125, c.scale(), 0);
        assertEquals(c, LinearAttentionOptions.causal(0.99).withScale(0.125));
        assertEquals(c.hashCode(), LinearAttentionOptions.causal(0.99).withScale(0.125).hashCode());
        assertNotEquals(c, LinearAttentionOptions.causal(0.99));
        assertNotEquals(LinearAttentionOptions.causal(1), none);
        assertEquals("linear, causal, decay 0.99, scale 0.125", c.toString());
        assertEquals("linear, causal, scale 1.0", LinearAttentionOptions.causal(1).toString());
        assertEquals("linear, non-causal, scale 1.0", none.toString());
    }

    /**
     * One layer's forward and backward through CommunicatorRanks over a LocalWorld (whose traffic counters
     * the API does not show): every rank's bytes by kind equal the plan's model for that rank.
     */
    private static void assertBytes(UspPlan model, Mesh mesh, Function<RankContext, SequenceParallelLayer> make) {
        AttentionShapes global = new AttentionShapes(B, S, S, 4, 2, D);
        CpuAttentionKernel kernel = new CpuAttentionKernel();
        try (Arena arena = Arena.ofShared(); LocalWorld world = new LocalWorld(mesh.size(), Duration.ofSeconds(60))) {
            Tensor[] in = inputs(arena, DType.F32, global.heads(), global.kvHeads());
            List<List<Map<TrafficKind, Long>>> bytes = world.run((r, comm) -> {
                CpuBackend backend = new CpuBackend(kernel);
                try (ProcessRank rank = new CommunicatorRank(comm, backend, BackendKind.CPU, -1, List.of(backend));
                     SequenceParallelLayer layer = make.apply(rank)) {
                    Tensor[] local = shards(in, SequenceLayout.CONTIGUOUS, mesh, r, arena);
                    Map<TrafficKind, Long> start = comm.traffic().snapshot();
                    layer.forward(local[0], local[1], local[2], local[4]);
                    Map<TrafficKind, Long> forward = comm.traffic().snapshot();
                    layer.backward(local[3], local[5], local[6], local[7]);
                    return List.of(minus(forward, start), minus(comm.traffic().snapshot(), forward));
                }
            });
            for (int r = 0; r < mesh.size(); r++) {
                assertEquals(model.forwardBytes(global, DType.F32, r), new RankBytes(bytes.get(r).get(0)),
                        model + ": forward bytes of rank " + r);
                assertEquals(model.backwardBytes(global, DType.F32, r), new RankBytes(bytes.get(r).get(1)),
                        model + ": backward bytes of rank " + r);
            }
        }
    }

    private static Map<TrafficKind, Long> minus(Map<TrafficKind, Long> later, Map<TrafficKind, Long> earlier) {
        Map<TrafficKind, Long> d = new EnumMap<>(TrafficKind.class);
        later.forEach((kind, n) -> d.put(kind, n - earlier.getOrDefault(kind, 0L)));
        return d;
    }

    /** Global q, k, v, dout: [B, S, h, D] and [B, S, h_kv, D] of standard normal values. */
    private static Tensor[] inputs(Arena arena, DType dtype, long h, long hkv) {
        return new Tensor[] {GlobalAttention.random(arena, dtype, 1, B, S, h, D),
                GlobalAttention.random(arena, dtype, 2, B, S, hkv, D), GlobalAttention.random(arena, dtype, 3, B, S, hkv, D),
                GlobalAttention.random(arena, dtype, 4, B, S, h, D)};
    }

    /** A rank's q, k, v, dout shards and fresh out, dq, dk, dv of their shapes. */
    private static Tensor[] shards(Tensor[] global, SequenceLayout layout, Mesh mesh, int rank, Arena arena) {
        Tensor[] t = new Tensor[8];
        for (int i = 0; i < 4; i++) {
            t[i] = GlobalAttention.shard(global[i], layout, mesh, rank, arena);
        }
        int[] like = {0, 0, 1, 2};
        for (int i = 0; i < 4; i++) {
            t[4 + i] = Tensor.allocate(arena, global[0].dtype(), t[like[i]].shape());
        }
        return t;
    }

    /** Every rank's forward and backward through its layer; out, dq, dk, dv gathered into global order. */
    private static Tensor[] runEveryRank(Mesh mesh, SequenceLayout layout, Function<RankContext, SequenceParallelLayer> make,
                                         Tensor[] global, Arena arena) {
        Tensor[] results = {Tensor.allocate(arena, global[0].dtype(), global[0].shape()),
                Tensor.allocate(arena, global[0].dtype(), global[0].shape()),
                Tensor.allocate(arena, global[0].dtype(), global[1].shape()),
                Tensor.allocate(arena, global[0].dtype(), global[2].shape())};
        try (InProcessWorld world = Usp4j.cpuWorld(mesh.size())) {
            world.run(rank -> {
                Tensor[] local = shards(global, layout, mesh, rank.rank(), arena);
                try (SequenceParallelLayer layer = make.apply(rank)) {
                    assertEquals(mesh, layer.mesh());
                    layer.forward(local[0], local[1], local[2], local[4]);
                    assertTrue(layer.hasSavedState());
                    layer.backward(local[3], local[5], local[6], local[7]);
                    assertFalse(layer.hasSavedState());
                }
                for (int i = 0; i < 4; i++) {
                    GlobalAttention.unshard(local[4 + i], results[i], layout, mesh, rank.rank());
                }
                return null;
            });
        }
        return results;
    }

    private static void compare(GlobalAttention.Reference ref, Tensor[] got, DType dtype) {
        double tol = dtype == DType.F32 ? 1e-4 : 2e-2;
        InProcessWorldTest.check("out", ref.out(), got[0], tol);
        InProcessWorldTest.check("dq", ref.dq(), got[1], tol);
        InProcessWorldTest.check("dk", ref.dk(), got[2], tol);
        InProcessWorldTest.check("dv", ref.dv(), got[3], tol);
    }
}
