package org.usp4j.plan;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.kernel.PackedReference;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * A hand-made plan of three groups of sizes 2, 2 and 1 (a ring, a Ulysses group and a single rank, all
 * at once) against every sequence attended alone in float64: forward and backward within 1e-4 (F32,
 * relative Frobenius error), lse within 1e-5; plans that miss or repeat a sequence are refused.
 */
class PlanRunnerTest {

    private static final long[] LENGTHS = {12, 8, 5, 20};
    private static final float SCALE = (float) (1 / Math.sqrt(8));

    private static Plan threeGroups() {
        return new Plan(5, List.of(
                new PlannedGroup(List.of(0, 1), new Mesh(1, 2), List.of(1, 3), 0, 0),
                new PlannedGroup(List.of(2, 3), new Mesh(2, 1), List.of(0), 0, 0),
                new PlannedGroup(List.of(4), new Mesh(1, 1), List.of(2), 0, 0)), 0);
    }

    @ParameterizedTest(name = "causal {0}")
    @ValueSource(booleans = {true, false})
    void aPlanOfGroupsOfDifferentSizesEqualsEachSequenceAttendedAlone(boolean causal) {
        SequenceBoundaries seqs = SequenceBoundaries.ofLengths(LENGTHS);
        List<Backend> opened = new ArrayList<>();
        CpuAttentionKernel kernel = new CpuAttentionKernel();
        try (Arena arena = Arena.ofConfined()) {
            Tensor q = random(arena, seqs, 4, 1), k = random(arena, seqs, 2, 2), v = random(arena, seqs, 2, 3);
            Tensor dout = random(arena, seqs, 4, 4);
            PlanRunner.Result r = PlanRunner.run(threeGroups(), causal, null, rank -> {
                Backend b = new CpuBackend(kernel);
                opened.add(b);
                return b;
            }, q, k, v, dout, seqs, arena);
            PackedReference ref = PackedReference.of(arena, q, k, v, dout, seqs, causal, SCALE);
            check(r.forward().out(), ref.out(), 1e-4);
            check(r.forward().lse(), ref.lse(), 1e-5);
            check(r.gradients().dq(), ref.dq(), 1e-4);
            check(r.gradients().dk(), ref.dk(), 1e-4);
            check(r.gradients().dv(), ref.dv(), 1e-4);
            assertEquals(List.of(0, 1, 2, 3, 4), r.ranks().stream().map(PlanRunner.RankRun::rank).toList());
            assertEquals(List.of(0, 0, 1, 1, 2), r.ranks().stream().map(PlanRunner.RankRun::group).toList());
            assertTrue(r.ranks().get(0).figures().bytesSent().total() > 0, "the ring group sent K/V blocks");
            assertEquals(0, r.ranks().get(4).figures().bytesSent().total(), "a single rank sends nothing");
            assertTrue(r.ranks().stream().allMatch(x -> x.figures().forwardPairs() > 0));
        } finally {
            opened.forEach(Backend::close);
        }
    }

    @Test
    void aPlanThatMissesOrRepeatsASequenceIsRefused() {
        SequenceBoundaries seqs = SequenceBoundaries.ofLengths(LENGTHS);
        Plan missing = new Plan(2, List.of(new PlannedGroup(List.of(0, 1), new Mesh(1, 2), List.of(0, 1, 3), 0, 0)), 0);
        Plan twice = new Plan(2, List.of(new PlannedGroup(List.of(0), new Mesh(1, 1), List.of(0, 1, 2), 0, 0),
                new PlannedGroup(List.of(1), new Mesh(1, 1), List.of(2, 3), 0, 0)), 0);
        try (Arena arena = Arena.ofConfined()) {
            Tensor q = random(arena, seqs, 4, 1);
            CpuAttentionKernel kernel = new CpuAttentionKernel();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PlanRunner.run(missing,
                    true, null, r -> new CpuBackend(kernel), q, q, q, null, seqs, arena));
            assertTrue(e.getMessage().contains("sequence 2 is in 0 groups"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> PlanRunner.run(twice, true, null,
                    r -> new CpuBackend(kernel), q, q, q, null, seqs, arena));
            assertTrue(e.getMessage().contains("sequence 2 is in 2 groups"), e.getMessage());
        }
    }

    private static Tensor random(Arena arena, SequenceBoundaries seqs, long heads, long seed) {
        Tensor t = Tensor.allocate(arena, DType.F32, 1, seqs.totalLength(), heads, 8);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    private static void check(Tensor actual, Tensor expected, double tolerance) {
        assertArrayEquals(expected.shape(), actual.shape());
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, "relative error " + error + " above " + tolerance);
    }
}
