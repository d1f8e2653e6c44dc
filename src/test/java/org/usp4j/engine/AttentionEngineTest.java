package org.usp4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.api.Mesh;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;

/**
 * The engine's timed calls on tiny CPU problems: every timed call sends exactly the strategy's cost model
 * bytes per rank (so it ran the whole distributed call), times are positive, misuse is refused, and the
 * engine closes the ranks (and their backends) it was given.
 */
class AttentionEngineTest {

    private static final CpuAttentionKernel KERNEL = new CpuAttentionKernel();
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @ParameterizedTest(name = "mesh {0}x{1} causal={2} h={3} h_kv={4} {5} {6}")
    @CsvSource({"2, 2, true, 4, 4, ring, zigzag", "1, 4, false, 4, 2, ring, contiguous", "4, 1, true, 4, 1, ring, zigzag",
            "1, 1, true, 2, 2, ring, zigzag", "2, 2, true, 4, 2, allgather, striped", "1, 4, true, 4, 1, allgather, zigzag",
            "1, 4, true, 4, 4, ring, striped", "2, 2, true, 4, 2, tokenring, zigzag", "1, 4, true, 4, 1, lightseq, contiguous",
            "2, 2, false, 4, 4, lightseq, contiguous"})
    void eachCallSendsTheCostModelsBytes(int u, int r, boolean causal, long h, long hkv, String algorithm, String layout) {
        Mesh mesh = new Mesh(u, r);
        AttentionProblem p = new AttentionProblem(1, 64, h, hkv, 8, DType.BF16);
        UspPlan plan = new UspPlan(mesh, new AttentionOptions(causal, SequenceLayout.parse(layout), null),
                RingAlgorithms.named(algorithm));
        try (AttentionEngine w = AttentionEngine.inProcess(plan, rank -> new CpuBackend(KERNEL), TIMEOUT)) {
            w.dealRandom(p.shapes(), p.dtype(), 3);
            AttentionEngine.Result m = w.measure(1, 2, true, call -> { });
            assertEquals(2, m.forwardSpans().size());
            assertEquals(2, m.backwardSpans().size());
            for (double s : m.forwardSpans()) {
                assertTrue(s > 0, () -> m.toString());
            }
            assertEquals(mesh.size(), m.ranks().size());
            long fwdMax = 0;
            long bwdMax = 0;
            for (AttentionEngine.RankFigures rank : m.ranks()) {
                RankBytes fwd = plan.forwardBytes(p.shapes(), p.dtype(), rank.rank());
                RankBytes bwd = plan.backwardBytes(p.shapes(), p.dtype(), rank.rank());
                fwdMax = Math.max(fwdMax, fwd.total());
                bwdMax = Math.max(bwdMax, bwd.total());
                assertEquals(fwd, rank.forwardBytes());
                assertEquals(bwd, rank.backwardBytes());
                assertTrue(rank.forwardPairs() > 0 && rank.forwardPairs() == rank.backwardPairs(), rank.toString());
                assertEquals(2, rank.forwardSeconds().size());
            }
            assertEquals(fwdMax, w.lastForward().maxBytesPerRank());
            assertEquals(bwdMax, w.lastBackward().maxBytesPerRank());
        }
    }

    @Test
    void backwardNeedsAForwardOfItsOwn() {
        AttentionProblem p = new AttentionProblem(1, 16, 2, 2, 8, DType.F32);
        try (AttentionEngine w = AttentionEngine.inProcess(new UspPlan(new Mesh(2, 1), AttentionOptions.defaults()),
                rank -> new CpuBackend(KERNEL), TIMEOUT)) {
            assertThrows(IllegalStateException.class, w::forward);
            w.dealRandom(p.shapes(), p.dtype(), 1);
            assertThrows(IllegalStateException.class, w::backward);
            w.forward();
            w.backward();
            assertThrows(IllegalStateException.class, w::backward);
        }
    }

    @Test
    void problemsThatDoNotFitTheMeshAreRefusedBeforeAnyRankWorks() {
        List<CpuBackend> made = new CopyOnWriteArrayList<>();
        AttentionProblem p = new AttentionProblem(1, 12, 4, 4, 8, DType.F32);
        UspPlan plan = new UspPlan(new Mesh(2, 2), new AttentionOptions(true, SequenceLayout.ZIGZAG, null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> plan.validate(p.shapes()));
        assertTrue(e.getMessage().contains("S = 12"), e.getMessage());
        try (AttentionEngine w = AttentionEngine.inProcess(plan, rank -> {
            CpuBackend b = new CpuBackend(KERNEL);
            made.add(b);
            return b;
        }, TIMEOUT)) {
            assertThrows(IllegalArgumentException.class, () -> w.dealRandom(p.shapes(), p.dtype(), 1));
            for (CpuBackend b : made) {
                assertEquals(0, b.liveBytes(), "nothing was dealt");
            }
        }
    }

    @Test
    void headsThatDoNotSplitAreRefusedAndTheBackendsClosed() {
        List<CpuBackend> made = new CopyOnWriteArrayList<>();
        AttentionProblem p = new AttentionProblem(1, 16, 3, 3, 8, DType.F32);
        try (AttentionEngine w = AttentionEngine.inProcess(new UspPlan(new Mesh(2, 1), AttentionOptions.defaults()),
                rank -> {
                    CpuBackend b = new CpuBackend(KERNEL);
                    made.add(b);
                    return b;
                }, TIMEOUT)) {
            assertThrows(IllegalArgumentException.class, () -> w.validate(p.shapes(), p.dtype()));
        }
        assertEquals(2, made.size());
        for (CpuBackend b : made) {
            assertThrows(IllegalStateException.class, b::newAllocator, "backend left open");
        }
    }

    @Test
    void closeReleasesEveryRanksMemoryAndBackend() {
        List<CpuBackend> made = new CopyOnWriteArrayList<>();
        AttentionProblem p = new AttentionProblem(1, 32, 4, 4, 8, DType.F32);
        AttentionEngine w = AttentionEngine.inProcess(new UspPlan(new Mesh(2, 2), AttentionOptions.defaults(),
                RingAlgorithms.named("allgather")), rank -> {
                    CpuBackend b = new CpuBackend(KERNEL);
                    made.add(b);
                    return b;
                }, TIMEOUT);
        w.dealRandom(p.shapes(), p.dtype(), 1);
        w.forward();
        assertTrue(made.get(0).liveBytes() > 0);
        w.close();
        w.close();
        for (CpuBackend b : made) {
            assertEquals(0, b.liveBytes(), "bytes still held");
        }
        assertThrows(IllegalStateException.class, w::forward);
    }
}
