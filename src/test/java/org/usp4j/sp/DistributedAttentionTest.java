package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.api.Mesh;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.local.LocalCommunicationException;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The core property: distributed outputs, lse and gradients equal single-rank attention
 * ({@link ReferenceAttention} in float64 on the global tensors) for every ring algorithm and layout, and
 * every rank's bytes equal the strategy's own cost model. Tolerances on the relative Frobenius error: F32 1e-5 (blocks are merged in float32; measured
 * at most 1.7e-7); BF16 and F16 1e-2, against the reference on the same rounded inputs (outputs and
 * gradients are rounded to the 16-bit type and the saved 16-bit output enters the backward's
 * D = rowsum(dO * O); measured at most 2.8e-3 for BF16, 3.8e-4 for F16).
 */
class DistributedAttentionTest {

    record Case(int ulysses, int ring, boolean causal, SequenceLayout layout, int batch, int seq, int heads,
                int kvHeads, int headDim, DType dtype, Double scale, RingAlgorithm algorithm) {
        Case(int ulysses, int ring, boolean causal, SequenceLayout layout, int batch, int seq, int heads,
             int kvHeads, int headDim, DType dtype, Double scale) {
            this(ulysses, ring, causal, layout, batch, seq, heads, kvHeads, headDim, dtype, scale,
                    RingAlgorithms.defaultAlgorithm());
        }

        @Override
        public String toString() {
            return ulysses + "x" + ring + " " + algorithm.name() + (causal ? " causal " : " full ")
                    + layout.name().toLowerCase()
                    + " b" + batch + " S" + seq + " h" + heads + "/" + kvHeads + " d" + headDim + " " + dtype
                    + (scale == null ? "" : " scale " + scale);
        }
    }

    private static final int[][] MESHES = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 4}, {4, 1}, {2, 3}, {3, 2}, {1, 8}, {8, 1}};
    private static final int[] HEAD_DIMS = {8, 12, 40, 24};

    private static final SequenceLayout[] LAYOUTS = SequenceLayout.values();

    /**
     * Every mesh with every (ring algorithm, causal, layout) triple; head grouping (MHA, GQA, MQA), dtype,
     * head_dim and batch rotate across cases so that each value meets many meshes without the full cross
     * product.
     */
    static Stream<Case> matrix() {
        List<Case> cases = new ArrayList<>();
        int i = 0;
        List<String> algorithms = RingAlgorithms.names();
        int combos = 2 * LAYOUTS.length * algorithms.size();
        for (int[] m : MESHES) {
            int u = m[0];
            int p = m[0] * m[1];
            int h = u == 3 ? 6 : (u >= 4 ? 8 : 4);
            for (int combo = 0; combo < combos; combo++, i++) {
                boolean causal = combo % 2 == 0;
                SequenceLayout layout = LAYOUTS[(combo / 2) % LAYOUTS.length];
                RingAlgorithm algorithm = RingAlgorithms.named(algorithms.get(combo / (2 * LAYOUTS.length)));
                if (!algorithm.layouts().contains(layout)) {
                    continue; // refused by the plan: see theRegistryRefusesAnUnknownNameListingTheKnownOnes
                }
                int[] kvChoices = {h, u == 3 ? 3 : h / 2, 1}; // MHA, GQA (replicated when h_kv < U), MQA
                int hkv = kvChoices[i % 3];
                DType dtype = (i / 2) % 2 == 0 ? DType.F32 : DType.BF16;
                int d = HEAD_DIMS[i % HEAD_DIMS.length];
                int seq = 2 * p * Math.max(1, (i % 2 == 0 ? 32 : 48) / (2 * p));
                int batch = i % 3 == 1 ? 2 : 1;
                Double scale = i % 5 == 3 ? 0.3 : null;
                cases.add(new Case(m[0], m[1], causal, layout, batch, seq, h, hkv, d, dtype, scale, algorithm));
            }
        }
        // Replication at the widest Ulysses degrees, and F16.
        cases.add(new Case(8, 1, true, SequenceLayout.ZIGZAG, 1, 32, 8, 2, 12, DType.F32, null));
        cases.add(new Case(4, 2, true, SequenceLayout.ZIGZAG, 2, 32, 8, 2, 20, DType.BF16, null));
        cases.add(new Case(2, 2, false, SequenceLayout.CONTIGUOUS, 1, 32, 4, 1, 16, DType.F16, 0.5));
        cases.add(new Case(2, 2, true, SequenceLayout.STRIPED, 1, 32, 4, 1, 16, DType.F16, null,
                AllGatherAttention.ALGORITHM));
        cases.add(new Case(4, 2, true, SequenceLayout.STRIPED, 2, 32, 8, 2, 20, DType.BF16, null,
                AllGatherAttention.ALGORITHM));
        // TokenRing (zigzag) and LightSeq (contiguous) causal on every ring size, with and without Ulysses,
        // each dtype meeting each head grouping; non-causal on two meshes; LightSeq's split step on odd blocks.
        int[][] rings = {{1, 2}, {1, 3}, {1, 4}, {1, 8}, {2, 2}, {2, 3}, {2, 4}};
        int j = 0;
        for (RingAlgorithm algorithm : List.of(TokenRingAttention.ALGORITHM, LightSeqAttention.ALGORITHM)) {
            SequenceLayout layout = algorithm == LightSeqAttention.ALGORITHM ? SequenceLayout.CONTIGUOUS
                    : SequenceLayout.ZIGZAG;
            for (int[] m : rings) {
                for (DType dtype : List.of(DType.F32, DType.BF16)) {
                    int[] kvChoices = {4, 2, 1};
                    cases.add(new Case(m[0], m[1], true, layout, 1 + j % 2, 16 * m[0] * m[1], 4, kvChoices[j % 3],
                            HEAD_DIMS[j % HEAD_DIMS.length], dtype, null, algorithm));
                    j++;
                }
            }
            cases.add(new Case(2, 2, false, layout, 1, 32, 4, 2, 8, DType.F32, null, algorithm));
            cases.add(new Case(1, 3, false, layout, 2, 24, 4, 1, 8, DType.BF16, 0.3, algorithm));
        }
        cases.add(new Case(1, 2, true, SequenceLayout.CONTIGUOUS, 1, 14, 4, 2, 8, DType.F32, null,
                LightSeqAttention.ALGORITHM)); // 7-row blocks: the owner keeps 4 rows, its helper takes 3
        cases.add(new Case(2, 4, true, SequenceLayout.CONTIGUOUS, 2, 40, 4, 1, 12, DType.BF16, null,
                LightSeqAttention.ALGORITHM)); // 10-row ring blocks after the exchange: 5 and 5
        cases.add(new Case(1, 2, true, SequenceLayout.CONTIGUOUS, 1, 2, 2, 1, 4, DType.F32, null,
                LightSeqAttention.ALGORITHM)); // one-row blocks: the helper's half is empty
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("matrix")
    void matchesSingleRankAttentionAndTheCostModel(Case c) {
        double tolerance = c.dtype() == DType.F32 ? 1e-5 : 1e-2;
        Mesh mesh = new Mesh(c.ulysses(), c.ring());
        AttentionOptions options = new AttentionOptions(c.causal(), c.layout(), c.scale());
        UspPlan plan = new UspPlan(mesh, options, c.algorithm());
        try (Arena arena = Arena.ofConfined();
             AttentionEngine attention = AttentionEngine.inProcess(plan,
                     r -> new CpuBackend(new ReferenceAttention()), Duration.ofSeconds(30))) {
            Tensor q = random(arena, c.dtype(), 1, c.batch(), c.seq(), c.heads(), c.headDim());
            Tensor k = random(arena, c.dtype(), 2, c.batch(), c.seq(), c.kvHeads(), c.headDim());
            Tensor v = random(arena, c.dtype(), 3, c.batch(), c.seq(), c.kvHeads(), c.headDim());
            Tensor dout = random(arena, c.dtype(), 4, c.batch(), c.seq(), c.heads(), c.headDim());

            ForwardResult got = attention.forward(q, k, v, arena);
            Gradients grads = attention.backward(dout, arena);

            // The oracle: float64 attention over the whole sequence, on the same (rounded) values.
            Tensor qf = toF32(arena, q), kf = toF32(arena, k), vf = toF32(arena, v), df = toF32(arena, dout);
            Tensor out = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor lse = Tensor.allocate(arena, DType.F32, c.batch(), c.heads(), c.seq());
            Mask mask = c.causal() ? Mask.CAUSAL : Mask.NONE;
            float scale = options.scale(c.headDim());
            ReferenceAttention ref = new ReferenceAttention();
            ref.forward(qf, kf, vf, mask, scale, out, lse);
            Tensor dq = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor dk = Tensor.allocate(arena, DType.F32, k.shape());
            Tensor dv = Tensor.allocate(arena, DType.F32, v.shape());
            ref.backward(qf, kf, vf, out, df, lse, mask, scale, dq, dk, dv, false);

            assertEquals(c.dtype(), got.out().dtype());
            assertEquals(DType.F32, got.lse().dtype());
            assertClose("out", got.out(), out, tolerance);
            assertClose("lse", got.lse(), lse, c.dtype() == DType.F32 ? 1e-6 : 1e-5);
            assertClose("dq", grads.dq(), dq, tolerance);
            assertClose("dk", grads.dk(), dk, tolerance);
            assertClose("dv", grads.dv(), dv, tolerance);

            AttentionShapes global = new AttentionShapes(c.batch(), c.seq(), c.seq(), c.heads(), c.kvHeads(),
                    c.headDim());
            for (int r = 0; r < mesh.size(); r++) {
                assertEquals(plan.forwardBytes(global, c.dtype(), r), attention.lastForward().ranks().get(r).bytes(),
                        "forward bytes of rank " + r);
                assertEquals(plan.backwardBytes(global, c.dtype(), r), attention.lastBackward().ranks().get(r).bytes(),
                        "backward bytes of rank " + r);
            }
        }
    }

    @Test
    void stridedGlobalInputsAndADoutOfAnotherDtypeGiveTheSameResults() {
        Mesh mesh = new Mesh(2, 2);
        AttentionOptions options = new AttentionOptions(true, SequenceLayout.ZIGZAG, null);
        try (Arena arena = Arena.ofConfined();
             AttentionEngine attention = AttentionEngine.inProcess(new UspPlan(mesh, options),
                     r -> new CpuBackend(new ReferenceAttention()), Duration.ofSeconds(60))) {
            // q, k, v as head slices of wider tensors (strided along the sequence), dout in F32.
            Tensor wide = random(arena, DType.BF16, 5, 2, 32, 10, 8);
            Tensor q = wide.slice(2, 0, 4);
            Tensor k = wide.slice(2, 4, 2);
            Tensor v = wide.slice(2, 6, 2);
            Tensor dout32 = random(arena, DType.F32, 6, 2, 32, 4, 8);
            Tensor dout = Tensor.allocate(arena, DType.BF16, dout32.shape());
            HostTensors.copy(dout32, dout);
            Tensor[] packed = new Tensor[3];
            Tensor[] views = {q, k, v};
            for (int i = 0; i < 3; i++) {
                packed[i] = Tensor.allocate(arena, DType.BF16, views[i].shape());
                HostTensors.copy(views[i], packed[i]);
            }
            ForwardResult fromViews = attention.forward(q, k, v, arena);
            Gradients gradsFromViews = attention.backward(dout32, arena);
            ForwardResult fromPacked = attention.forward(packed[0], packed[1], packed[2], arena);
            Gradients gradsFromPacked = attention.backward(dout, arena);
            assertEquals(0, HostTensors.relativeError(fromViews.out(), fromPacked.out()));
            assertEquals(0, HostTensors.relativeError(fromViews.lse(), fromPacked.lse()));
            assertEquals(0, HostTensors.relativeError(gradsFromViews.dq(), gradsFromPacked.dq()));
            assertEquals(0, HostTensors.relativeError(gradsFromViews.dk(), gradsFromPacked.dk()));
            assertEquals(0, HostTensors.relativeError(gradsFromViews.dv(), gradsFromPacked.dv()));
            assertEquals(DType.BF16, gradsFromViews.dq().dtype());
        }
    }

    @Test
    void costModelsMatchTheirFormulasOnAWorkedExample() {
        // b=1, S=4096, h=16, h_kv=16, d=64, bf16, U=2, R=2: s_loc = 1024.
        AttentionShapes global = new AttentionShapes(1, 4096, 4096, 16, 16, 64);
        UspPlan ring = new UspPlan(new Mesh(2, 2), AttentionOptions.defaults(), RingAttention.ALGORITHM);
        RankBytes f = ring.forwardBytes(global, DType.BF16);
        long allToAll = 1L * 1024 * 64 * 2 * (2 * 16 + 2 * 16) / 2; // (U-1)/U b s_loc d e (2h + 2h_kv)
        assertEquals(allToAll, f.get(TrafficKind.ALL_TO_ALL));
        assertEquals(2L * 1 * 1024 * 16 * 64 * 2, f.get(TrafficKind.P2P)); // 2 b s_loc h_kv d e
        assertEquals(allToAll + f.get(TrafficKind.P2P), f.total());
        RankBytes b = ring.backwardBytes(global, DType.BF16);
        assertEquals(allToAll, b.get(TrafficKind.ALL_TO_ALL));
        assertEquals(f.get(TrafficKind.P2P) + 2L * 2 * 1024 * 16 * 64 * 4, b.get(TrafficKind.P2P));
        // All-gather: 2 b (S/P) h_kv d e forward, float32 dK/dV reduce-scattered backward.
        UspPlan gather = new UspPlan(new Mesh(2, 2), AttentionOptions.defaults(), AllGatherAttention.ALGORITHM);
        RankBytes gf = gather.forwardBytes(global, DType.BF16);
        assertEquals(allToAll, gf.get(TrafficKind.ALL_TO_ALL));
        assertEquals(2L * 1 * 1024 * 16 * 64 * 2, gf.get(TrafficKind.ALL_GATHER));
        assertEquals(0, gf.get(TrafficKind.P2P));
        RankBytes gb = gather.backwardBytes(global, DType.BF16);
        assertEquals(2L * 1 * 1024 * 16 * 64 * 4, gb.get(TrafficKind.REDUCE_SCATTER));
        assertEquals(0, gb.get(TrafficKind.ALL_GATHER));
        // TokenRing: the query block one way, (R-1) b s h d e, and block out (e) plus lse (4) back.
        UspPlan token = new UspPlan(new Mesh(2, 2), AttentionOptions.defaults(), TokenRingAttention.ALGORITHM);
        long q = 1L * 2048 * 8 * 64; // b, ring block s = U s_loc = 2048 rows, h/U = 8 heads, d
        long l = 1L * 8 * 2048;
        assertEquals(allToAll + (q * 2 + q * 2 + l * 4), token.forwardBytes(global, DType.BF16).total());
        assertEquals(allToAll + (3 * q * 2 + l * 4 + q * 4), token.backwardBytes(global, DType.BF16).total());
        // LightSeq causal on R = 4 (D = 2 ring steps, D' = 1 unsplit): rank 3 sends its queries at step 1 and
        // half of them at the split step 2; rank 0 helps at step 1 and takes half a block at step 2.
        AttentionOptions causal = new AttentionOptions(true, SequenceLayout.CONTIGUOUS, null);
        UspPlan light = new UspPlan(new Mesh(1, 4), causal, LightSeqAttention.ALGORITHM);
        long x = 1L * 1024 * 16 * 64; // K block: s = 1024, h_kv = 16
        long qq = 1L * 1024 * 16 * 64;
        long ll = 16L * 1024;
        assertEquals(2 * 2 * x * 2 + qq * 2 + qq / 2 * 2, light.forwardBytes(global, DType.BF16, 3).get(TrafficKind.P2P));
        assertEquals(2 * 2 * x * 2 + (qq * 2 + ll * 4) + (qq / 2 * 2 + ll / 2 * 4),
                light.forwardBytes(global, DType.BF16, 0).get(TrafficKind.P2P));
        assertEquals(2 * 2 * x * 2 + qq / 2 * 2, light.forwardBytes(global, DType.BF16, 2).get(TrafficKind.P2P));
        assertEquals(2 * 2 * x * 2 + 2 * (2 * x * 4) + (3 * qq * 2 + ll * 4) + (3 * qq / 2 * 2 + ll / 2 * 4),
                light.backwardBytes(global, DType.BF16, 3).get(TrafficKind.P2P));
        assertEquals(2 * 2 * x * 2 + qq * 4 + qq / 2 * 4, light.backwardBytes(global, DType.BF16, 0).get(TrafficKind.P2P));
        IllegalStateException perRank = assertThrows(IllegalStateException.class,
                () -> light.forwardBytes(global, DType.BF16));
        assertTrue(perRank.getMessage().contains("differ between ranks"), perRank.getMessage());
        // Non-causal LightSeq is the plain ring, the same on every rank.
        assertEquals(new UspPlan(new Mesh(1, 4), AttentionOptions.defaults()).forwardBytes(global, DType.BF16),
                new UspPlan(new Mesh(1, 4), AttentionOptions.defaults(), LightSeqAttention.ALGORITHM)
                        .forwardBytes(global, DType.BF16));
        // MQA with U = 4: the exchange carries U replicated KV heads.
        UspPlan mqa = new UspPlan(new Mesh(4, 1), AttentionOptions.defaults());
        assertEquals(3L * 16 * 8 * 4 * (2 * 2 + 2 * 1),
                mqa.forwardBytes(new AttentionShapes(1, 64, 64, 8, 1, 8), DType.F32).get(TrafficKind.ALL_TO_ALL));
        assertThrows(IllegalArgumentException.class,
                () -> mqa.forwardBytes(new AttentionShapes(1, 30, 30, 8, 1, 8), DType.F32));
    }

    @Test
    void theRegistryRefusesAnUnknownNameListingTheKnownOnes() {
        assertEquals(List.of("ring", "allgather", "tokenring", "lightseq"), RingAlgorithms.names());
        assertEquals(AllGatherAttention.ALGORITHM, RingAlgorithms.named("AllGather"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RingAlgorithms.named("spiral"));
        assertEquals("unknown ring algorithm 'spiral' (known: ring, allgather, tokenring, lightseq)", e.getMessage());
    }

    @Test
    void aRankWhoseKernelFailsFailsTheCallWithoutHanging() {
        AttentionKernel broken = withForwardHook(() -> {
            throw new IllegalStateException("kernel failure on this rank");
        });
        Mesh mesh = new Mesh(2, 2);
        try (Arena arena = Arena.ofConfined();
             AttentionEngine attention = AttentionEngine.inProcess(
                     new UspPlan(mesh, new AttentionOptions(true, SequenceLayout.ZIGZAG, null)),
                     r -> new CpuBackend(r == 3 ? broken : new ReferenceAttention()), Duration.ofSeconds(20))) {
            Tensor q = random(arena, DType.F32, 1, 1, 16, 4, 8);
            long start = System.nanoTime();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> attention.forward(q, q, q, arena));
            assertEquals("kernel failure on this rank", e.getMessage());
            assertTrue((System.nanoTime() - start) / 1e9 < 10, "the other ranks must be released by the abort");
            IllegalStateException after = assertThrows(IllegalStateException.class, () -> attention.forward(q, q, q, arena));
            assertTrue(after.getMessage().contains("aborted by rank 3"), after.getMessage());
        }
    }

    @Test
    void aRankThatStallsIsNamedAfterTheTimeout() {
        AttentionKernel slow = withForwardHook(() -> {
            try {
                Thread.sleep(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        try (Arena arena = Arena.ofConfined();
             // Ulysses: the output all-to-all cannot complete without rank 1. (A ring would not wait: the
             // stalled rank posts its K/V before computing and the background copy delivers it.)
             AttentionEngine attention = AttentionEngine.inProcess(new UspPlan(new Mesh(2, 1), AttentionOptions.defaults()),
                     r -> new CpuBackend(r == 1 ? slow : new ReferenceAttention()), Duration.ofMillis(300))) {
            Tensor q = random(arena, DType.F32, 1, 1, 8, 2, 4);
            long start = System.nanoTime();
            LocalCommunicationException e = assertThrows(LocalCommunicationException.class,
                    () -> attention.forward(q, q, q, arena));
            assertTrue(e.getMessage().contains("rank 0 timed out") && e.getMessage().contains("rank(s) [1]"),
                    e.getMessage());
            assertTrue((System.nanoTime() - start) / 1e9 < 1.9, "must fail after the 0.3 s timeout, not the stall");
        }
    }

    /** The reference kernel with {@code hook} run before every forward block. */
    private static AttentionKernel withForwardHook(Runnable hook) {
        ReferenceAttention ref = new ReferenceAttention();
        return new AttentionKernel() {
            @Override
            public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
                hook.run();
                ref.forward(q, k, v, mask, scale, out, lse);
            }

            @Override
            public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask,
                                 float scale, Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
                ref.backward(q, k, v, out, dout, lse, mask, scale, dq, dk, dv, accumulate);
            }
        };
    }

    static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    private static Tensor toF32(Arena arena, Tensor t) {
        Tensor f = Tensor.allocate(arena, DType.F32, t.shape());
        HostTensors.copy(t, f);
        return f;
    }

    private static void assertClose(String name, Tensor actual, Tensor expected, double tolerance) {
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, name + ": relative Frobenius error " + error + " > " + tolerance);
    }
}
