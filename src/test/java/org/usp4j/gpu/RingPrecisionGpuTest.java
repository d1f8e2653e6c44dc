package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.usp4j.api.Mesh;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Ring attention's precision must not decay with the ring size (the most common complaint about ring
 * implementations): on R = 1, 2, 4, 8 in-process device ranks, bf16, causal zigzag, forward and
 * backward, every output's relative error against float64 stays within tolerance, and at R = 8 is at
 * most 1.5 times its R = 1 value. Each ring step's partial results merge and accumulate in float32.
 */
@Tag("gpu")
class RingPrecisionGpuTest {

    private static final int[] RINGS = {1, 2, 4, 8};
    private static final double GROWTH_LIMIT = 1.5;

    @BeforeEach
    void requireDevice() {
        GpuTests.requireDevice();
    }

    @Test
    void errorAgainstFloat64DoesNotGrowWithRingSize() {
        long b = 1, s = 2048, h = 4, hkv = 2, d = 64; // the float64 reference is single-threaded
        AttentionOptions options = new AttentionOptions(true, SequenceLayout.ZIGZAG, null);
        try (Arena arena = Arena.ofConfined()) {
            Tensor q = GpuTests.randomHost(arena, DType.BF16, 41, b, s, h, d);
            Tensor k = GpuTests.randomHost(arena, DType.BF16, 42, b, s, hkv, d);
            Tensor v = GpuTests.randomHost(arena, DType.BF16, 43, b, s, hkv, d);
            Tensor dout = GpuTests.randomHost(arena, DType.BF16, 44, b, s, h, d);

            float scale = (float) (1 / Math.sqrt(d));
            ReferenceAttention ref = new ReferenceAttention();
            Tensor refOut = Tensor.allocate(arena, DType.F32, b, s, h, d);
            Tensor refLse = Tensor.allocate(arena, DType.F32, b, h, s);
            ref.forward(q, k, v, Mask.CAUSAL, scale, refOut, refLse);
            Tensor refDq = Tensor.allocate(arena, DType.F32, b, s, h, d);
            Tensor refDk = Tensor.allocate(arena, DType.F32, b, s, hkv, d);
            Tensor refDv = Tensor.allocate(arena, DType.F32, b, s, hkv, d);
            ref.backward(q, k, v, refOut, dout, refLse, Mask.CAUSAL, scale, refDq, refDk, refDv, false);

            Map<Integer, double[]> errors = new LinkedHashMap<>();
            for (int r : RINGS) {
                try (AttentionEngine ring = AttentionEngine.inProcess(new UspPlan(new Mesh(1, r), options),
                        rank -> CudnnBackends.create(0))) {
                    ForwardResult f = ring.forward(q, k, v, arena);
                    Gradients g = ring.backward(dout, arena);
                    errors.put(r, new double[] {HostTensors.relativeError(f.out(), refOut),
                            HostTensors.relativeError(g.dq(), refDq), HostTensors.relativeError(g.dk(), refDk),
                            HostTensors.relativeError(g.dv(), refDv)});
                }
            }
            String[] names = {"out", "dq", "dk", "dv"};
            StringBuilder table = new StringBuilder("ring precision vs float64 (bf16, causal zigzag, s=" + s + "):");
            errors.forEach((r, e) -> table.append(String.format(Locale.ROOT, "%n  R=%d out %.2e dq %.2e dk %.2e dv %.2e",
                    r, e[0], e[1], e[2], e[3])));
            System.out.println(table);
            double[] first = errors.get(1);
            double[] last = errors.get(8);
            for (int i = 0; i < names.length; i++) {
                for (double[] e : errors.values()) {
                    assertTrue(e[i] <= (i == 0 ? 1e-2 : 2e-2), names[i] + " out of tolerance: " + table);
                }
                assertTrue(last[i] <= GROWTH_LIMIT * first[i], names[i] + " grows more than " + GROWTH_LIMIT
                        + "x from R=1 to R=8: " + table);
            }
        }
    }
}
