package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.api.Mesh;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The memory estimate against what the CPU backend really allocates: every rank's measured peak is
 * covered, and the estimate is not so loose that it would refuse runs that fit.
 */
class MemoryEstimateTest {

    private static final Logger LOG = LogManager.getLogger(MemoryEstimateTest.class);
    /** How far above the measured peak the estimate may be. */
    private static final double MAX_SLACK = 2.5;

    @ParameterizedTest(name = "{0}x{1} {2} h={3} h_kv={4} backward={5} {6} {7}")
    @CsvSource({
        "1, 1, F32, 4, 4, false, ring, ZIGZAG",
        "1, 1, F32, 4, 4, true, ring, ZIGZAG",
        "2, 1, BF16, 4, 2, true, ring, ZIGZAG",
        "1, 2, F32, 4, 4, true, ring, ZIGZAG",
        "2, 2, BF16, 4, 1, true, ring, ZIGZAG",
        "4, 1, F32, 4, 2, true, ring, CONTIGUOUS",
        "2, 2, F16, 8, 8, false, ring, ZIGZAG",
        "1, 4, BF16, 2, 2, true, ring, STRIPED",
        "1, 2, F32, 4, 4, true, allgather, ZIGZAG",
        "2, 2, BF16, 4, 2, true, allgather, CONTIGUOUS",
        "1, 4, F32, 2, 2, false, allgather, STRIPED",
    })
    void coversEveryRanksMeasuredPeak(int u, int r, DType dtype, int h, int hkv, boolean backward, String algorithm,
                                      SequenceLayout layout) {
        long b = 2;
        long s = 64;
        long d = 16;
        UspPlan plan = new UspPlan(new Mesh(u, r), new AttentionOptions(true, layout, null),
                RingAlgorithms.named(algorithm));
        List<CpuBackend> backends = new CopyOnWriteArrayList<>();
        try (Arena arena = Arena.ofShared();
             AttentionEngine engine = AttentionEngine.inProcess(plan, rank -> {
                 CpuBackend backend = new CpuBackend(new ReferenceAttention());
                 backends.add(backend);
                 return backend;
             })) {
            Tensor q = Tensor.allocate(arena, dtype, b, s, h, d);
            Tensor k = Tensor.allocate(arena, dtype, b, s, hkv, d);
            Tensor v = Tensor.allocate(arena, dtype, b, s, hkv, d);
            HostTensors.fillNormal(q, 1);
            HostTensors.fillNormal(k, 2);
            HostTensors.fillNormal(v, 3);
            Tensor dout = null;
            if (backward) {
                dout = Tensor.allocate(arena, dtype, b, s, h, d);
                HostTensors.fillNormal(dout, 4);
            }
            engine.run(q, k, v, dout, arena);
        }
        assertEquals(u * r, backends.size());
        MemoryEstimate estimate = MemoryEstimate.of(new AttentionShapes(b, s, s, h, hkv, d), dtype, plan, backward);
        long maxPeak = backends.stream().mapToLong(CpuBackend::peakBytes).max().orElseThrow();
        long minPeak = backends.stream().mapToLong(CpuBackend::peakBytes).min().orElseThrow();
        LOG.debug("{}x{} {} h={} h_kv={} backward={} {} {}: estimate {} per rank, measured peaks {}..{}", u, r, dtype,
                h, hkv, backward, algorithm, layout, estimate.perRankBytes(), minPeak, maxPeak);
        assertTrue(estimate.perRankBytes() >= maxPeak, "estimate " + estimate.perRankBytes()
                + " below the measured peak " + maxPeak);
        assertTrue(estimate.perRankBytes() <= MAX_SLACK * minPeak, "estimate " + estimate.perRankBytes()
                + " more than " + MAX_SLACK + " x the measured peak " + minPeak);
        assertEquals(u * r * estimate.perRankBytes() + estimate.resultBytes(), estimate.totalBytes());
    }
}
