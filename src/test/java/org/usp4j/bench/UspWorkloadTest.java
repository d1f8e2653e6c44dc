package org.usp4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.comm.TrafficKind;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.CostModel;
import org.usp4j.sp.Mesh;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.tensor.DType;

/**
 * The benchmark harness on tiny CPU problems: every timed call sends exactly the cost model's bytes per
 * rank (so it ran the whole distributed call), times are positive, misuse is refused, and the workload
 * closes the backends it was given.
 */
class UspWorkloadTest {

    private static final CpuAttentionKernel KERNEL = new CpuAttentionKernel();

    @ParameterizedTest(name = "mesh {0}x{1} causal={2} h={3} h_kv={4}")
    @CsvSource({"2, 2, true, 4, 4", "1, 4, false, 4, 2", "4, 1, true, 4, 1", "1, 1, true, 2, 2"})
    void eachCallSendsTheCostModelsBytes(int u, int r, boolean causal, long h, long hkv) {
        Mesh mesh = new Mesh(u, r);
        AttentionProblem p = new AttentionProblem(1, 64, h, hkv, 8, DType.BF16);
        AttentionOptions options = new AttentionOptions(causal, causal ? SequenceLayout.ZIGZAG : SequenceLayout.CONTIGUOUS,
                null);
        CostModel.RankBytes fwd = CostModel.forward(1, 64, h, hkv, 8, DType.BF16, mesh);
        CostModel.RankBytes bwd = CostModel.backward(1, 64, h, hkv, 8, DType.BF16, mesh);
        try (UspWorkload w = UspWorkload.open(mesh, options, p, rank -> new CpuBackend(KERNEL), 3)) {
            for (int call = 0; call < 2; call++) {
                UspWorkload.Measurement f = w.forward();
                UspWorkload.Measurement b = w.backward();
                assertTrue(f.seconds() > 0 && b.seconds() > 0, () -> f + " " + b);
                assertEquals(mesh.size(), f.bytesSent().size());
                for (Map<TrafficKind, Long> rank : f.bytesSent()) {
                    assertEquals(fwd.asMap(), rank);
                }
                for (Map<TrafficKind, Long> rank : b.bytesSent()) {
                    assertEquals(bwd.asMap(), rank);
                }
                assertEquals(fwd.total(), f.maxBytesPerRank());
                assertEquals(bwd.total(), b.maxBytesPerRank());
            }
        }
    }

    @Test
    void backwardNeedsAForwardOfItsOwn() {
        AttentionProblem p = new AttentionProblem(1, 16, 2, 2, 8, DType.F32);
        try (UspWorkload w = UspWorkload.open(new Mesh(2, 1), AttentionOptions.defaults(), p,
                rank -> new CpuBackend(KERNEL), 1)) {
            assertThrows(IllegalStateException.class, w::backward);
            w.forward();
            w.backward();
            assertThrows(IllegalStateException.class, w::backward);
        }
    }

    @Test
    void problemsThatDoNotFitTheMeshAreRefusedBeforeAnyBackendIsMade() {
        AtomicInteger made = new AtomicInteger();
        AttentionProblem p = new AttentionProblem(1, 12, 4, 4, 8, DType.F32);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> UspWorkload.open(new Mesh(2, 2),
                new AttentionOptions(true, SequenceLayout.ZIGZAG, null), p, rank -> {
                    made.incrementAndGet();
                    return new CpuBackend(KERNEL);
                }, 1));
        assertTrue(e.getMessage().contains("S = 12"), e.getMessage());
        assertEquals(0, made.get());
    }

    @Test
    void headsThatDoNotSplitAreRefusedAndTheBackendsClosed() {
        List<CpuBackend> made = new java.util.concurrent.CopyOnWriteArrayList<>();
        AttentionProblem p = new AttentionProblem(1, 16, 3, 3, 8, DType.F32);
        assertThrows(IllegalArgumentException.class, () -> UspWorkload.open(new Mesh(2, 1), AttentionOptions.defaults(),
                p, rank -> {
                    CpuBackend b = new CpuBackend(KERNEL);
                    made.add(b);
                    return b;
                }, 1));
        assertEquals(2, made.size());
        for (CpuBackend b : made) {
            assertThrows(IllegalStateException.class, b::newAllocator, "backend left open");
        }
    }

    @Test
    void closeReleasesEveryRanksMemoryAndBackend() {
        List<CpuBackend> made = new java.util.concurrent.CopyOnWriteArrayList<>();
        AttentionProblem p = new AttentionProblem(1, 32, 4, 4, 8, DType.F32);
        UspWorkload w = UspWorkload.open(new Mesh(2, 2), AttentionOptions.defaults(), p, rank -> {
            CpuBackend b = new CpuBackend(KERNEL);
            made.add(b);
            return b;
        }, 1);
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
