package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.api.Mesh;
import org.usp4j.comm.TrafficKind;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.engine.ProcessRanks;
import org.usp4j.gpu.GpuTests;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.launch.LaunchEnvironment;
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
 * A real NCCL world of one process on GPU 0 ({@code ncclCommInitRank} through the rendezvous, splits,
 * the watchdog, clean shutdown) running the multi-process path of USP 1x1 (shard, attend, all-gather,
 * unshard) equals single-device cuDNN SDPA on the whole sequence, forward and backward, and sends no
 * bytes. Tolerances as in {@code UspGpuTest} (both sides round to bf16 per block); the single-device
 * result is also checked against float64.
 */
@Tag("gpu")
@Timeout(300)
class NcclWorldGpuTest {

    @BeforeEach
    void requireDevice() {
        GpuTests.requireDevice();
        assumeTrue(NcclProcessRank.unavailableReason().isEmpty(),
                () -> "no NCCL rank here: " + NcclProcessRank.unavailableReason().orElse(""));
    }

    @ParameterizedTest(name = "causal={0} {1} h={2} hkv={3}")
    @CsvSource({"true, ZIGZAG, 8, 8", "false, CONTIGUOUS, 8, 2"})
    void oneRankNcclWorldEqualsSingleDeviceSdpa(boolean causal, SequenceLayout layout, long h, long hkv) {
        long b = 1, s = 1024, d = 64;
        AttentionOptions options = new AttentionOptions(causal, layout, null);
        Mesh mesh = new Mesh(1, 1);
        List<RankFailureException> failures = new CopyOnWriteArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            Tensor q = GpuTests.randomHost(arena, DType.BF16, 41, b, s, h, d);
            Tensor k = GpuTests.randomHost(arena, DType.BF16, 42, b, s, hkv, d);
            Tensor v = GpuTests.randomHost(arena, DType.BF16, 43, b, s, hkv, d);
            Tensor dout = GpuTests.randomHost(arena, DType.BF16, 44, b, s, h, d);
            ForwardResult single;
            Gradients singleGrads;
            try (AttentionEngine one = AttentionEngine.inProcess(new UspPlan(mesh, options), rank -> CudnnBackends.create(0))) {
                single = one.forward(q, k, v, arena);
                singleGrads = one.backward(dout, arena);
            }

            AttentionEngine.Result result;
            try (NcclProcessRank rank = NcclProcessRank.open(LaunchEnvironment.single(), failures::add)) {
                assertEquals(0, rank.device());
                assertEquals(1, rank.world().size());
                try (AttentionEngine engine = new AttentionEngine(new ProcessRanks(rank), new UspPlan(mesh, options))) {
                    result = engine.run(q, k, v, dout, arena);
                }
                rank.checkHealthy();
            }
            assertEquals(List.of(), failures, "the watchdog stayed quiet");
            check("out", single.out(), result.forward().out(), 1e-2);
            check("lse", single.lse(), result.forward().lse(), 1e-4);
            check("dq", singleGrads.dq(), result.gradients().dq(), 2e-2);
            check("dk", singleGrads.dk(), result.gradients().dk(), 2e-2);
            check("dv", singleGrads.dv(), result.gradients().dv(), 2e-2);
            AttentionEngine.RankFigures figures = result.ranks().get(0);
            assertEquals(RankBytes.none(), figures.bytesSent(), "a world of one sends nothing");
            assertTrue(figures.forwardSeconds().getFirst() > 0 && figures.backwardSeconds().getFirst() > 0,
                    figures.toString());

            Tensor refOut = Tensor.allocate(arena, DType.F32, b, s, h, d);
            Tensor refLse = Tensor.allocate(arena, DType.F32, b, h, s);
            new ReferenceAttention().forward(q, k, v, causal ? Mask.CAUSAL : Mask.NONE, (float) (1 / Math.sqrt(d)),
                    refOut, refLse);
            check("NCCL world out vs float64", refOut, result.forward().out(), 1e-2);
        }
    }

    private static void check(String what, Tensor expected, Tensor actual, double tolerance) {
        double err = HostTensors.relativeError(actual, expected);
        assertTrue(err <= tolerance, () -> what + ": relative error " + err + " > " + tolerance);
    }
}
