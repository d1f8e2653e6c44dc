package org.usp4j.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.usp4j.api.Mesh;
import org.usp4j.sp.UlyssesAllToAll;
import org.usp4j.tensor.DType;

/**
 * The planner on seeded random batches: every plan keeps the constraints (each sequence in exactly one
 * group, disjoint ranks, group sizes within P, meshes the heads allow, memory within the limit) and is
 * never slower than the greedy plan or the static mesh under the model; on tiny batches the integer
 * program's plan equals the optimum found by trying every plan; a forced time-out falls back to the
 * greedy plan; bad inputs are refused with messages that name them.
 */
class SequencePlannerTest {

    /** A GPU-like profile: fast compute, links slow enough that group size matters. */
    static final CostProfile PROFILE = new CostProfile("test", "made up for tests", 400e12, 300e12, 20e-6, 50e9, 30e-6,
            25e9, 15e-6, 80L << 30, false);
    static final PlanShape GQA = new PlanShape(32, 8, 128, DType.BF16, true);
    static final SequencePlanner.Options GENEROUS = new SequencePlanner.Options(Duration.ofSeconds(20), 12);

    @Test
    void randomBatchesGivePlansThatKeepEveryConstraintAndBeatTheBaselines() {
        Random random = new Random(18);
        for (int trial = 0; trial < 25; trial++) {
            int ranks = 1 + random.nextInt(16);
            int n = 1 + random.nextInt(12);
            long[] lengths = new long[n];
            for (int i = 0; i < n; i++) {
                lengths[i] = Math.clamp(Math.round(Math.exp(8 + 1.5 * random.nextGaussian())), 1, 200_000);
            }
            PlanShape shape = random.nextBoolean() ? GQA : new PlanShape(12, 4, 64, DType.F16, random.nextBoolean());
            StepTimeModel model = new StepTimeModel(PROFILE, shape);
            SequencePlanner.Result r = SequencePlanner.plan(lengths, ranks,
                    model, new SequencePlanner.Options(Duration.ofMillis(300), 12));
            String what = "trial " + trial + ": P=" + ranks + " lengths " + java.util.Arrays.toString(lengths);
            assertValid(r.plan(), lengths, ranks, model, what);
            assertValid(r.greedy(), lengths, ranks, model, what);
            assertTrue(r.plan().predictedSeconds() <= r.greedy().predictedSeconds(), what);
            Plan stat = r.staticBaseline().orElseThrow();
            assertEquals(1, stat.groups().size(), what);
            assertEquals(ranks, stat.groups().getFirst().ranks().size(), what);
            assertTrue(r.plan().predictedSeconds() <= stat.predictedSeconds() * (1 + 1e-12), what);
        }
    }

    @Test
    void theIntegerProgramFindsTheOptimumOnTinyBatches() {
        Random random = new Random(7);
        for (int trial = 0; trial < 6; trial++) {
            int ranks = 2 + random.nextInt(3); // 2..4
            long[] lengths = new long[3 + random.nextInt(2)];
            for (int i = 0; i < lengths.length; i++) {
                lengths[i] = 256L * (1 + random.nextInt(200));
            }
            StepTimeModel model = new StepTimeModel(PROFILE, new PlanShape(4, 2, 64, DType.BF16, true));
            List<Mesh> candidates = GroupCandidates.all(ranks, model);
            double best = bruteForce(lengths, ranks, candidates, model, PROFILE.memoryPerRankBytes());
            MilpPlanner.Outcome solved = MilpPlanner.solve(lengths, ranks, candidates, model, PROFILE.memoryPerRankBytes(),
                    Duration.ofSeconds(30), 16, Optional.empty());
            String what = "trial " + trial + ": P=" + ranks + " lengths " + java.util.Arrays.toString(lengths);
            assertEquals(MilpPlanner.Status.OPTIMAL, solved.status(), what);
            assertValid(solved.plan().orElseThrow(), lengths, ranks, model, what);
            assertEquals(best, solved.plan().orElseThrow().predictedSeconds(), best * 1e-9, what);
        }
    }

    @Test
    void aSolverOutOfTimeFallsBackToTheGreedyPlan() {
        long[] lengths = new LengthDistribution(8, 1.5, 128, 131_072).batch(64 * 16_384, 3);
        StepTimeModel model = new StepTimeModel(PROFILE, GQA);
        SequencePlanner.Result r = SequencePlanner.plan(lengths, 64, model,
                new SequencePlanner.Options(Duration.ofMillis(1), 12));
        assertValid(r.plan(), lengths, 64, model, "forced time-out");
        assertTrue(r.method() != SequencePlanner.Method.SOLVER_OPTIMAL, r.method().toString());
        if (r.method() == SequencePlanner.Method.GREEDY) {
            assertEquals(r.greedy(), r.plan());
        }
        assertTrue(r.plan().predictedSeconds() <= r.greedy().predictedSeconds());
    }

    @Test
    void memoryDecidesTheGroupSize() {
        StepTimeModel model = new StepTimeModel(PROFILE, GQA);
        long alone = model.cost(65_536, new Mesh(1, 8)).memoryBytes();
        // Room for the long sequence on 8 ranks but not on 4: it must get a group of 8.
        StepTimeModel tight = new StepTimeModel(PROFILE.withMemoryPerRank(alone + alone / 4), GQA);
        long[] lengths = {65_536, 1024};
        SequencePlanner.Result r = SequencePlanner.plan(lengths, 16, tight, GENEROUS);
        assertValid(r.plan(), lengths, 16, tight, "tight memory");
        for (PlannedGroup g : r.plan().groups()) {
            if (g.sequences().contains(0)) {
                assertTrue(g.mesh().size() >= 8, g.toString());
            }
        }
    }

    @Test
    void badInputsAreRefusedWithTheirNames() {
        StepTimeModel model = new StepTimeModel(PROFILE, GQA);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SequencePlanner.plan(new long[0], 8, model, GENEROUS))
                .getMessage().contains("no sequences"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> SequencePlanner.plan(new long[] {5, 0}, 8, model, GENEROUS)).getMessage().contains("sequence 1"));
        assertThrows(IllegalArgumentException.class, () -> SequencePlanner.plan(new long[] {5}, 0, model, GENEROUS));
        StepTimeModel small = new StepTimeModel(PROFILE.withMemoryPerRank(64L << 20), GQA);
        String msg = assertThrows(IllegalArgumentException.class,
                () -> SequencePlanner.plan(new long[] {1024, 1_000_000, 2048, 3_000_000}, 8, small, GENEROUS)).getMessage();
        assertTrue(msg.contains("#1 (1000000 tokens") && msg.contains("#3 (3000000 tokens") && !msg.contains("#0"), msg);
    }

    @Test
    void theModelIsTheFormulaWrittenOut() {
        CostProfile p = new CostProfile("t", "t", 1e12, 5e11, 1e-3, 1e9, 2e-3, 4e9, 3e-3, 1L << 40, false);
        PlanShape shape = new PlanShape(8, 2, 64, DType.BF16, true);
        StepTimeModel model = new StepTimeModel(p, shape);
        long s = 4096;
        double pairs = s * (s + 1.0) / 2;
        double fwd = 4.0 * 8 * pairs * 64;
        Mesh one = new Mesh(1, 1);
        StepTimeModel.SequenceCost c1 = model.cost(s, one);
        assertEquals(fwd / 1e12 + 2.5 * fwd / 5e11, c1.computeSeconds(), 1e-12);
        assertEquals(0, c1.allToAllSeconds());
        assertEquals(0, c1.p2pSeconds());
        assertEquals(2e-3, model.callSeconds(one), 1e-15); // two kernel calls
        // U = 4 > h_kv = 2: KV heads replicated to 4; forward + backward each send (U-1)/U of q, out, k, v.
        Mesh u4 = new Mesh(4, 2);
        long sLoc = s / 8;
        double a2a = 2.0 * 3 * sLoc * 64 * 2 * (2 * 8 / 4 + 2 * 4 / 4);
        double ring = 2 * (2.0 * (2 - 1) * sLoc * 4 * 64 * 2) + 2 * 2 * sLoc * 4 * 64 * 4;
        StepTimeModel.SequenceCost c = model.cost(s, u4);
        assertEquals(c1.computeSeconds() / 8, c.computeSeconds(), 1e-12);
        assertEquals(a2a / 1e9, c.allToAllSeconds(), 1e-12);
        assertEquals(ring / 4e9, c.p2pSeconds(), 1e-12);
        assertEquals(8 * 2e-3 + 3 * 3e-3 + 4 * 1e-3, model.callSeconds(u4), 1e-12);
        assertEquals(c.allToAllSeconds() + Math.max(c.computeSeconds(), c.p2pSeconds()) + model.callSeconds(u4),
                model.groupSeconds(u4, s), 1e-12);
        assertEquals(4112, model.paddedLength(4100, u4)); // a multiple of 2P = 16 for zigzag
    }

    @Test
    void bucketsKeepEqualLengthsTogetherAndCostNoSequenceBelowItsLength() {
        long[] lengths = new LengthDistribution(7, 1.8, 1, 100_000).batch(500_000, 1);
        List<LengthBuckets.Bucket> buckets = LengthBuckets.of(lengths, 10);
        assertTrue(buckets.size() <= 10);
        Set<Integer> seen = new HashSet<>();
        for (LengthBuckets.Bucket b : buckets) {
            for (int i : b.members()) {
                assertTrue(seen.add(i));
                assertTrue(lengths[i] <= b.longest());
            }
        }
        assertEquals(lengths.length, seen.size());
        assertEquals(3, LengthBuckets.of(new long[] {5, 9, 5, 9, 7}, 10).size());
    }

    /** The constraints every plan must keep. */
    static void assertValid(Plan plan, long[] lengths, int ranks, StepTimeModel model, String what) {
        int[] seen = new int[lengths.length];
        Set<Integer> ranksUsed = new HashSet<>();
        double slowest = 0;
        int total = 0;
        for (PlannedGroup g : plan.groups()) {
            assertEquals(g.mesh().size(), g.ranks().size(), what);
            total += g.ranks().size();
            for (int r : g.ranks()) {
                assertTrue(r >= 0 && r < ranks, what + ": rank " + r);
                assertTrue(ranksUsed.add(r), what + ": rank " + r + " in two groups");
            }
            UlyssesAllToAll.validateHeads(model.shape().heads(), model.shape().kvHeads(), g.mesh().ulysses());
            assertTrue(!g.sequences().isEmpty(), what);
            long[] own = g.sequences().stream().mapToLong(i -> lengths[i]).toArray();
            g.sequences().forEach(i -> seen[i]++);
            assertTrue(model.groupMemoryBytes(g.mesh(), own) <= model.profile().memoryPerRankBytes(), what);
            assertEquals(model.groupSeconds(g.mesh(), own), g.predictedSeconds(), 1e-15, what);
            slowest = Math.max(slowest, g.predictedSeconds());
        }
        assertTrue(total <= ranks, what);
        for (int i = 0; i < seen.length; i++) {
            assertEquals(1, seen[i], what + ": sequence " + i);
        }
        assertEquals(slowest, plan.predictedSeconds(), 0, what);
    }

    /** The best plan over every multiset of candidate meshes within P ranks and every assignment to them. */
    private static double bruteForce(long[] lengths, int ranks, List<Mesh> candidates, StepTimeModel model, long memory) {
        double[] best = {Double.POSITIVE_INFINITY};
        chooseGroups(new ArrayList<>(), 0, ranks, candidates, lengths, model, memory, best);
        return best[0];
    }

    private static void chooseGroups(List<Mesh> chosen, int from, int ranksLeft, List<Mesh> candidates, long[] lengths,
                                     StepTimeModel model, long memory, double[] best) {
        if (!chosen.isEmpty()) {
            assignAll(chosen, new int[lengths.length], 0, lengths, model, memory, best);
        }
        if (chosen.size() == lengths.length) {
            return;
        }
        for (int k = from; k < candidates.size(); k++) {
            Mesh m = candidates.get(k);
            if (m.size() <= ranksLeft) {
                chosen.add(m);
                chooseGroups(chosen, k, ranksLeft - m.size(), candidates, lengths, model, memory, best);
                chosen.removeLast();
            }
        }
    }

    private static void assignAll(List<Mesh> groups, int[] groupOf, int i, long[] lengths, StepTimeModel model, long memory,
                                  double[] best) {
        if (i == lengths.length) {
            double slowest = 0;
            for (int g = 0; g < groups.size(); g++) {
                List<Long> own = new ArrayList<>();
                for (int k = 0; k < lengths.length; k++) {
                    if (groupOf[k] == g) {
                        own.add(lengths[k]);
                    }
                }
                long[] arr = own.stream().mapToLong(Long::longValue).toArray();
                if (model.groupMemoryBytes(groups.get(g), arr) > memory) {
                    return;
                }
                slowest = Math.max(slowest, model.groupSeconds(groups.get(g), arr));
            }
            best[0] = Math.min(best[0], slowest);
            return;
        }
        for (int g = 0; g < groups.size(); g++) {
            groupOf[i] = g;
            assignAll(groups, groupOf, i + 1, lengths, model, memory, best);
        }
    }
}
