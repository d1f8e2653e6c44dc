package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.PackedReference;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Packed variable-length sequences through every registered strategy that supports them (ring,
 * all-gather, TokenRing; LightSeq refuses them in one line): distributed out, lse and
 * gradients equal the per-sequence float64 oracle (each sequence attended alone, no segments), every
 * rank's bytes equal the plan's cost model, and every ring step's mask equals the rule "same sequence,
 * and causal by global position" on every (row, key) pair. Tolerances as in
 * {@code DistributedAttentionTest}: F32 1e-5 relative Frobenius error (2e-5 on the CPU kernel, whose
 * exp2 and sums are float32), lse 1e-6; BF16 1e-2.
 */
class PackedSequencesTest {

    record Case(int ulysses, int ring, boolean causal, SequenceLayout layout, RingAlgorithm algorithm, long[] lengths,
                int heads, int kvHeads, int headDim, DType dtype, boolean cpuKernel) {
        @Override
        public String toString() {
            return ulysses + "x" + ring + " " + algorithm.name() + (causal ? " causal " : " full ") + layout.label()
                    + " lengths " + (lengths.length > 8 ? lengths.length + " sequences" : Arrays.toString(lengths))
                    + " h" + heads + "/" + kvHeads + " d" + headDim + " " + dtype + (cpuKernel ? " cpu kernel" : "");
        }
    }

    private static final int[][] MESHES = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 4}, {4, 1}};

    /** Lengths for P ranks: a 1-token sequence, one longer than a shard, and many short ones (S = 16P). */
    private static long[][] lengthSets(int p, SequenceLayout layout) {
        long s = 16L * p;
        if (layout == SequenceLayout.ZIGZAG) { // every length a multiple of 2P
            long u = 2L * p;
            return new long[][] {{u, 5 * u, 2 * u}, {u, u, u, u, u, u, u, u}};
        }
        long[] many = new long[(int) (s / 2)];
        Arrays.fill(many, 2);
        many[0] = 1;
        many[1] = 3;
        return new long[][] {{1, s - 6, 3, 2}, many, {s - 1, 1}};
    }

    static Stream<Case> matrix() {
        List<Case> cases = new ArrayList<>();
        int i = 0;
        for (int[] m : MESHES) {
            int u = m[0], p = m[0] * m[1];
            int h = u >= 4 ? 8 : 4;
            for (String name : RingAlgorithms.names()) {
                if (!RingAlgorithms.named(name).supportsPackedSequences()) {
                    continue;
                }
                for (SequenceLayout layout : SequenceLayout.values()) {
                    for (boolean causal : new boolean[] {true, false}) {
                        long[][] sets = lengthSets(p, layout);
                        long[] lengths = sets[i % sets.length];
                        int[] kv = {h, h / 2, 1}; // MHA, GQA, MQA (replicated for U > h_kv)
                        DType dtype = i % 5 == 4 ? DType.BF16 : DType.F32;
                        cases.add(new Case(m[0], m[1], causal, layout, RingAlgorithms.named(name), lengths, h,
                                kv[i % 3], i % 2 == 0 ? 8 : 12, dtype, i % 3 == 1));
                        i++;
                    }
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("matrix")
    void matchesEachSequenceAttendedAloneAndTheCostModel(Case c) {
        SequenceBoundaries seqs = SequenceBoundaries.ofLengths(c.lengths());
        long s = seqs.totalLength();
        Mesh mesh = new Mesh(c.ulysses(), c.ring());
        AttentionOptions options = new AttentionOptions(c.causal(), c.layout(), null);
        UspPlan plan = new UspPlan(mesh, options, c.algorithm());
        AttentionKernel kernel = c.cpuKernel() ? new CpuAttentionKernel() : new ReferenceAttention();
        try (Arena arena = Arena.ofShared();
             AttentionEngine engine = AttentionEngine.inProcess(plan, r -> new CpuBackend(kernel), Duration.ofSeconds(60))) {
            Tensor q = random(arena, c.dtype(), 1, s, c.heads(), c.headDim());
            Tensor k = random(arena, c.dtype(), 2, s, c.kvHeads(), c.headDim());
            Tensor v = random(arena, c.dtype(), 3, s, c.kvHeads(), c.headDim());
            Tensor dout = random(arena, c.dtype(), 4, s, c.heads(), c.headDim());
            AttentionEngine.Result got = engine.run(q, k, v, dout, seqs, arena);

            PackedReference ref = PackedReference.of(arena, q, k, v, dout, seqs, c.causal(),
                    options.scale(c.headDim()));
            double tolerance = c.dtype() == DType.BF16 ? 1e-2 : c.cpuKernel() ? 2e-5 : 1e-5;
            assertClose("out", got.forward().out(), ref.out(), tolerance);
            assertClose("lse", got.forward().lse(), ref.lse(), c.dtype() == DType.BF16 ? 1e-5 : 1e-6);
            assertClose("dq", got.gradients().dq(), ref.dq(), tolerance);
            assertClose("dk", got.gradients().dk(), ref.dk(), tolerance);
            assertClose("dv", got.gradients().dv(), ref.dv(), tolerance);

            AttentionShapes global = new AttentionShapes(1, s, s, c.heads(), c.kvHeads(), c.headDim());
            RankBytes fwd = plan.forwardBytes(global, c.dtype());
            RankBytes bwd = plan.backwardBytes(global, c.dtype());
            for (AttentionEngine.RankFigures f : got.ranks()) {
                assertEquals(fwd, f.forwardBytes(), "forward bytes of rank " + f.rank());
                assertEquals(bwd, f.backwardBytes(), "backward bytes of rank " + f.rank());
            }
        }
    }

    /** Every step's rows, keys and mask, against "same sequence, and key position <= row position if causal". */
    @Test
    void everyRingStepMaskIsTheSequenceRule() {
        int checked = 0;
        int skipped = 0;
        for (int ring : new int[] {1, 2, 3, 4}) {
            for (SequenceLayout layout : SequenceLayout.values()) {
                List<long[]> sets = new ArrayList<>(Arrays.asList(lengthSets(ring, layout)));
                if (layout != SequenceLayout.ZIGZAG) {
                    sets.add(new long[] {5, 1, 1, 9L * ring - 7});
                }
                for (long[] lengths : sets) {
                    SequenceBoundaries seqs = SequenceBoundaries.ofLengths(lengths);
                    PackedRingBlocks blocks = PackedRingBlocks.of(seqs, layout, ring);
                    for (boolean causal : new boolean[] {true, false}) {
                        AttentionOptions options = new AttentionOptions(causal, layout, null);
                        for (int me = 0; me < ring; me++) {
                            for (int owner = 0; owner < ring; owner++) {
                                RingStep step = RingStep.plan(options, me, owner, blocks);
                                skipped += step.skip() ? 1 : 0;
                                checkStep(step, blocks, causal, me, owner, layout + " R" + ring + " "
                                        + Arrays.toString(lengths) + (causal ? " causal" : "") + " step " + me + "<-"
                                        + owner);
                                checked++;
                            }
                        }
                    }
                }
            }
        }
        assertTrue(checked > 200 && skipped > 0, checked + " steps checked, " + skipped + " skipped");
    }

    private static void checkStep(RingStep step, PackedRingBlocks blocks, boolean causal, int me, int owner, String what) {
        SequenceBoundaries seqs = blocks.sequences();
        int rows = (int) blocks.blockLength();
        if (me == owner) {
            assertTrue(!step.skip() && step.queryStart() == 0 && step.queryLength() == rows, what + ": own block covers every row");
        }
        for (int a = 0; a < rows; a++) {
            for (int b = 0; b < rows; b++) {
                long qp = blocks.position(me, a), kp = blocks.position(owner, b);
                boolean expected = seqs.sequenceOf(qp) == seqs.sequenceOf(kp) && (!causal || kp <= qp);
                boolean inStep = !step.skip() && a >= step.queryStart() && a < step.queryStart() + step.queryLength()
                        && b >= step.keyStart() && b < step.keyStart() + step.keyLength();
                boolean actual = inStep && step.mask().allows(a - step.queryStart(), b - step.keyStart());
                if (expected != actual) {
                    throw new AssertionError(what + ": row " + a + " (position " + qp + ") key " + b + " (position "
                            + kp + "): expected " + expected + ", step " + step);
                }
            }
        }
    }

    @Test
    void zigzagDealsEverySequenceInChunksAndGathersBack() {
        SequenceBoundaries seqs = SequenceBoundaries.ofLengths(8, 16, 8);
        Mesh mesh = new Mesh(2, 2);
        // Ring block g = chunks g and 3-g of every sequence (chunk = length / 4), cut into 2 Ulysses pieces:
        // block 0 = 0 1 6 7 | 8..11 20..23 | 24 25 30 31, block 1 = 2..5 | 12..19 | 26..29.
        assertEquals(List.of(0L, 1L, 6L, 7L, 8L, 9L, 10L, 11L), boxed(SequenceLayout.ZIGZAG.globalPositions(seqs, mesh, 0)));
        assertEquals(List.of(20L, 21L, 22L, 23L, 24L, 25L, 30L, 31L),
                boxed(SequenceLayout.ZIGZAG.globalPositions(seqs, mesh, 1)));
        assertEquals(List.of(2L, 3L, 4L, 5L, 12L, 13L, 14L, 15L), boxed(SequenceLayout.ZIGZAG.globalPositions(seqs, mesh, 2)));
        long[] seen = new long[(int) seqs.totalLength()];
        for (int r = 0; r < mesh.size(); r++) {
            for (long pos : SequenceLayout.ZIGZAG.globalPositions(seqs, mesh, r)) {
                seen[(int) pos]++;
            }
        }
        long[] once = new long[seen.length];
        Arrays.fill(once, 1);
        assertEquals(boxed(once), boxed(seen), "every position dealt exactly once");
    }

    @Test
    void badBoundariesAreOneLineErrorsBeforeAnyWork() {
        assertMessage("cu_seqlens must start at 0, got 2", () -> SequenceBoundaries.of(2, 4));
        assertMessage("cu_seqlens[2] = 4 after cu_seqlens[1] = 4 (sequence 1 would be empty)",
                () -> SequenceBoundaries.of(0, 4, 4, 8));
        assertMessage("strictly increasing", () -> SequenceBoundaries.of(0, 6, 4));
        assertMessage("at least 2 offsets", () -> SequenceBoundaries.of(new int[] {0}));

        AttentionShapes global = new AttentionShapes(1, 32, 32, 4, 4, 8);
        UspPlan zigzag = new UspPlan(new Mesh(2, 2), new AttentionOptions(true, SequenceLayout.ZIGZAG, null));
        assertMessage("sequence 1 has length 12 (positions 8 to 19)",
                () -> zigzag.validate(global, SequenceBoundaries.ofLengths(8, 12, 12)));
        UspPlan contiguous = new UspPlan(new Mesh(2, 2), new AttentionOptions(true, SequenceLayout.CONTIGUOUS, null));
        assertMessage("cu_seqlens ends at 30 but the sequence length s is 32",
                () -> contiguous.validate(global, SequenceBoundaries.ofLengths(10, 20)));
        assertMessage("need batch b = 1, got b = 2", () -> contiguous.validate(new AttentionShapes(2, 32, 32, 4, 4, 8),
                SequenceBoundaries.ofLengths(10, 22)));
        contiguous.validate(global, SequenceBoundaries.ofLengths(1, 31)); // straddles ranks: fine
    }

    @Test
    void anAlgorithmWithoutPackedSupportIsRefusedInOneLine() {
        RingAlgorithm plain = new RingAlgorithm() {
            @Override
            public String name() {
                return "plain";
            }

            @Override
            public Set<SequenceLayout> layouts() {
                return Set.of(SequenceLayout.values());
            }

            @Override
            public SequenceParallelAttention create(Communicator ring, Backend backend, AttentionOptions options) {
                return RingAttention.ALGORITHM.create(ring, backend, options);
            }

            @Override
            public RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize) {
                return RankBytes.none();
            }

            @Override
            public RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize) {
                return RankBytes.none();
            }
        };
        UspPlan plan = new UspPlan(new Mesh(1, 2), AttentionOptions.defaults(), plain);
        AttentionShapes global = new AttentionShapes(1, 32, 32, 4, 4, 8);
        assertMessage("ring algorithm plain does not support packed variable-length sequences (cu_seqlens); ring, "
                + "allgather, tokenring do", () -> plan.validate(global, SequenceBoundaries.ofLengths(16, 16)));
        plan.validate(global, SequenceBoundaries.single(32)); // one sequence is plain attention
        UspPlan lightSeq = new UspPlan(new Mesh(1, 2), AttentionOptions.defaults(), RingAlgorithms.named("lightseq"));
        assertMessage("ring algorithm lightseq does not support packed variable-length sequences (cu_seqlens); ring, "
                + "allgather, tokenring do", () -> lightSeq.validate(global, SequenceBoundaries.ofLengths(16, 16)));
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    private static List<Long> boxed(long[] values) {
        return Arrays.stream(values).boxed().toList();
    }

    private static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        long[] bshd = {1, shape[0], shape[1], shape[2]};
        Tensor t = Tensor.allocate(arena, dtype, bshd);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    private static void assertClose(String name, Tensor actual, Tensor expected, double tolerance) {
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, name + ": relative Frobenius error " + error + " > " + tolerance);
    }
}
