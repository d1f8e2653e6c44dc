package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.api.Mesh;
import org.usp4j.comm.TrafficKind;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
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
 * USP on in-process device ranks (P ranks on one GPU, each with its own stream, exchanging through
 * device copies) equals single-device cuDNN SDPA on the whole sequence, forward and backward, and the
 * bytes each rank moved equal the cost model. Relative Frobenius error: out 1e-2, gradients 2e-2 (both
 * sides round to bf16 per block), and the single-device forward and gradients against the float64 reference.
 */
@Tag("gpu")
class UspGpuTest {

    @BeforeEach
    void requireDevice() {
        GpuTests.requireDevice();
    }

    @ParameterizedTest(name = "mesh {0}x{1} causal={2} {3} h={4} hkv={5}")
    @CsvSource({
            "1, 1, true, ZIGZAG, 8, 8",
            "2, 2, true, ZIGZAG, 8, 8",
            "1, 4, true, ZIGZAG, 8, 8",
            "4, 1, true, ZIGZAG, 8, 8",
            "2, 2, false, CONTIGUOUS, 8, 8",
            "1, 4, false, CONTIGUOUS, 8, 2",
            "2, 2, true, CONTIGUOUS, 8, 2"})
    void uspOnDeviceRanksEqualsSingleDeviceSdpa(int u, int r, boolean causal, SequenceLayout layout, long h, long hkv) {
        long b = 1, s = 1024, d = 64;
        Mesh mesh = new Mesh(u, r);
        AttentionOptions options = new AttentionOptions(causal, layout, null);
        try (Arena arena = Arena.ofConfined()) {
            Tensor q = GpuTests.randomHost(arena, DType.BF16, 31, b, s, h, d);
            Tensor k = GpuTests.randomHost(arena, DType.BF16, 32, b, s, hkv, d);
            Tensor v = GpuTests.randomHost(arena, DType.BF16, 33, b, s, hkv, d);
            Tensor dout = GpuTests.randomHost(arena, DType.BF16, 34, b, s, h, d);

            ForwardResult single;
            Gradients singleGrads;
            try (AttentionEngine one = AttentionEngine.inProcess(new UspPlan(new Mesh(1, 1), options), rank -> CudnnBackends.create(0))) {
                single = one.forward(q, k, v, arena);
                singleGrads = one.backward(dout, arena);
            }
            try (AttentionEngine usp = AttentionEngine.inProcess(new UspPlan(mesh, options), rank -> CudnnBackends.create(0))) {
                ForwardResult f = usp.forward(q, k, v, arena);
                List<RankBytes> forwardBytes = usp.lastForward().ranks().stream().map(AttentionEngine.RankPass::bytes)
                        .toList();
                Gradients g = usp.backward(dout, arena);
                check("out", single.out(), f.out(), 1e-2);
                check("lse", single.lse(), f.lse(), 1e-4);
                check("dq", singleGrads.dq(), g.dq(), 2e-2);
                check("dk", singleGrads.dk(), g.dk(), 2e-2);
                check("dv", singleGrads.dv(), g.dv(), 2e-2);
                RankBytes expected = new UspPlan(mesh, options).forwardBytes(new AttentionShapes(b, s, s, h, hkv, d),
                        DType.BF16);
                for (RankBytes rank : forwardBytes) {
                    assertTrue(expected.equals(rank), () -> "forward bytes " + rank + " != cost model " + expected);
                }
            }
            // And the single-device result itself against float64, forward and backward: comparing two cuDNN
            // paths alone is how a wrong dQ once passed here.
            Mask mask = causal ? Mask.CAUSAL : Mask.NONE;
            float scale = (float) (1 / Math.sqrt(d));
            ReferenceAttention ref = new ReferenceAttention();
            Tensor refOut = Tensor.allocate(arena, DType.F32, b, s, h, d);
            Tensor refLse = Tensor.allocate(arena, DType.F32, b, h, s);
            ref.forward(q, k, v, mask, scale, refOut, refLse);
            Tensor refDq = Tensor.allocate(arena, DType.F32, b, s, h, d);
            Tensor refDk = Tensor.allocate(arena, DType.F32, b, s, hkv, d);
            Tensor refDv = Tensor.allocate(arena, DType.F32, b, s, hkv, d);
            ref.backward(q, k, v, refOut, dout, refLse, mask, scale, refDq, refDk, refDv, false);
            check("single-device out vs float64", refOut, single.out(), 1e-2);
            check("single-device dq vs float64", refDq, singleGrads.dq(), 2e-2);
            check("single-device dk vs float64", refDk, singleGrads.dk(), 2e-2);
            check("single-device dv vs float64", refDv, singleGrads.dv(), 2e-2);
        }
    }

    private static void check(String what, Tensor expected, Tensor actual, double tolerance) {
        double err = HostTensors.relativeError(actual, expected);
        assertTrue(err <= tolerance, () -> what + ": relative error " + err + " > " + tolerance);
    }
}
