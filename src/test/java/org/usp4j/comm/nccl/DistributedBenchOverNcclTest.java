package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.engine.ProcessRanks;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.launch.LaunchedRank;
import org.usp4j.launch.Rendezvous;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;

/**
 * The multi-process benchmark's path over four fake-NCCL ranks (mesh 2x2, causal zigzag): rank 0 gets
 * every rank's timed calls and the bytes each sent per call, equal to the cost model for both passes;
 * the other ranks get their own; a call's span is its slowest rank's time.
 */
@Timeout(120)
class DistributedBenchOverNcclTest {

    private record FakeRank(Rendezvous rendezvous, Communicator world, Backend backend) implements LaunchedRank {
        @Override
        public int device() {
            return HostDeviceBackend.DEVICE;
        }
    }

    @Test
    void everyRanksTimesAndBytesReachRankZero() throws Exception {
        Mesh mesh = new Mesh(2, 2);
        AttentionProblem problem = new AttentionProblem(1, 32, 4, 2, 8, DType.BF16);
        AttentionOptions options = new AttentionOptions(true, SequenceLayout.ZIGZAG, null);
        UspPlan plan = new UspPlan(mesh, options);
        List<AttentionEngine.Result> results = FakeRanks.values(FakeRanks.run(new FakeNccl(4, false), 4,
                Duration.ofSeconds(30), true, r -> {
                    try (HostDeviceBackend backend = new HostDeviceBackend(new ReferenceAttention());
                         AttentionEngine engine = new AttentionEngine(new ProcessRanks(
                                 new FakeRank(r.rendezvous(), r.world(), backend)), plan)) {
                        engine.dealRandom(problem.shapes(), problem.dtype(), 7);
                        return engine.measure(1, 2, true, call -> { });
                    }
                }));
        RankBytes forward = plan.forwardBytes(problem.shapes(), problem.dtype());
        RankBytes backward = plan.backwardBytes(problem.shapes(), problem.dtype());
        AttentionEngine.Result root = results.get(0);
        assertEquals(4, root.ranks().size());
        for (int r = 0; r < 4; r++) {
            AttentionEngine.RankFigures t = root.ranks().get(r);
            assertEquals(r, t.rank());
            assertEquals(2, t.forwardSeconds().size(), "timed calls, warm-up excluded");
            assertEquals(2, t.backwardSeconds().size());
            assertEquals(forward, t.forwardBytes(), "forward bytes of rank " + r);
            assertEquals(backward, t.backwardBytes(), "backward bytes of rank " + r);
        }
        for (int i = 0; i < 2; i++) {
            double max = 0;
            for (AttentionEngine.RankFigures t : root.ranks()) {
                max = Math.max(max, t.forwardSeconds().get(i));
            }
            assertEquals(max, root.forwardSpans().get(i));
            assertTrue(root.backwardSpans().get(i) > 0);
        }
        for (int r = 1; r < 4; r++) {
            assertEquals(List.of(r), results.get(r).ranks().stream().map(AttentionEngine.RankFigures::rank).toList());
        }
    }
}
