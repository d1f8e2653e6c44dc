package org.usp4j.plan;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import org.usp4j.api.Mesh;

/**
 * The fallback planner: for every candidate mesh, as many groups of it as the ranks allow, filled longest
 * sequence first, each into the group whose time grows least (LPT list scheduling) within the memory
 * limit; the best of these uniform plans. With P ranks as one group it is the static mesh, so it is never
 * worse than the static baseline.
 */
final class GreedyPlanner {

    private GreedyPlanner() {
    }

    /** The best uniform plan, or empty when no candidate mesh holds the batch within {@code memoryLimit}. */
    static Optional<Plan> plan(long[] lengths, int ranks, List<Mesh> candidates, StepTimeModel model, long memoryLimit) {
        Integer[] order = new Integer[lengths.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> lengths[a] != lengths[b] ? Long.compare(lengths[b], lengths[a]) : Integer.compare(a, b));
        Plan best = null;
        for (Mesh mesh : candidates) {
            int count = Math.min(ranks / mesh.size(), lengths.length);
            int[] groupOf = fill(lengths, order, mesh, count, model, memoryLimit);
            if (groupOf == null) {
                continue;
            }
            Plan p = Plan.of(ranks, Collections.nCopies(count, mesh), groupOf, lengths, model);
            if (best == null || p.predictedSeconds() < best.predictedSeconds()) {
                best = p;
            }
        }
        return Optional.ofNullable(best);
    }

    private static int[] fill(long[] lengths, Integer[] order, Mesh mesh, int count, StepTimeModel model, long memoryLimit) {
        double[] compute = new double[count];
        double[] allToAll = new double[count];
        double[] p2p = new double[count];
        long[] memory = new long[count];
        int[] groupOf = new int[lengths.length];
        double fixed = model.callSeconds(mesh);
        for (int i : order) {
            StepTimeModel.SequenceCost c = model.cost(lengths[i], mesh);
            int chosen = -1;
            double chosenTime = Double.POSITIVE_INFINITY;
            for (int g = 0; g < count; g++) {
                if (memory[g] + c.memoryBytes() > memoryLimit) {
                    continue;
                }
                double t = StepTimeModel.combine(compute[g] + c.computeSeconds(), allToAll[g] + c.allToAllSeconds(),
                        p2p[g] + c.p2pSeconds(), fixed);
                if (t < chosenTime) {
                    chosen = g;
                    chosenTime = t;
                }
            }
            if (chosen < 0) {
                return null;
            }
            compute[chosen] += c.computeSeconds();
            allToAll[chosen] += c.allToAllSeconds();
            p2p[chosen] += c.p2pSeconds();
            memory[chosen] += c.memoryBytes();
            groupOf[i] = chosen;
        }
        return groupOf;
    }
}
