package org.usp4j.dist.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.backend.Backend;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.dist.DistributedAttention;
import org.usp4j.dist.DistributedBench;
import org.usp4j.dist.Rendezvous;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.CostModel;
import org.usp4j.sp.Mesh;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.tensor.DType;

/**
 * The multi-process benchmark's path over four fake-NCCL ranks (mesh 2x2, causal zigzag): rank 0 gets
 * every rank's timed calls and the bytes each sent per call, equal to the cost model for both passes;
 * the other ranks get their own; a call's span is its slowest rank's time.
 */
@Timeout(120)
class DistributedBenchOverNcclTest {

    private record FakeRank(Rendezvous rendezvous, Communicator world, Backend backend) implements DistributedAttention.Rank {
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
        List<DistributedBench.Measurement> results = FakeRanks.values(FakeRanks.run(new FakeNccl(4, false), 4,
                Duration.ofSeconds(30), true, r -> {
                    try (HostDeviceBackend backend = new HostDeviceBackend(new ReferenceAttention())) {
                        return DistributedBench.run(new FakeRank(r.rendezvous(), r.world(), backend), mesh, options,
                                problem, 7, 1, 2, true);
                    }
                }));
        Map<TrafficKind, Long> forward = CostModel.forward(1, 32, 4, 2, 8, DType.BF16, mesh).asMap();
        Map<TrafficKind, Long> backward = CostModel.backward(1, 32, 4, 2, 8, DType.BF16, mesh).asMap();
        DistributedBench.Measurement root = results.get(0);
        assertEquals(4, root.ranks().size());
        for (int r = 0; r < 4; r++) {
            DistributedBench.RankTimes t = root.ranks().get(r);
            assertEquals(r, t.rank());
            assertEquals(2, t.forwardSeconds().size(), "timed calls, warm-up excluded");
            assertEquals(2, t.backwardSeconds().size());
            assertEquals(forward, t.forwardBytes(), "forward bytes of rank " + r);
            assertEquals(backward, t.backwardBytes(), "backward bytes of rank " + r);
        }
        for (int i = 0; i < 2; i++) {
            double max = 0;
            for (DistributedBench.RankTimes t : root.ranks()) {
                max = Math.max(max, t.forwardSeconds().get(i));
            }
            assertEquals(max, root.forwardSpans().get(i));
            assertTrue(root.backwardSpans().get(i) > 0);
        }
        for (int r = 1; r < 4; r++) {
            assertEquals(List.of(r), results.get(r).ranks().stream().map(DistributedBench.RankTimes::rank).toList());
        }
    }
}
