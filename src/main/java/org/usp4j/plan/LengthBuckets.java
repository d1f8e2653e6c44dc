package org.usp4j.plan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Sequences grouped by length for the integer program, which then decides how many of each bucket go
 * to each group instead of deciding sequence by sequence. Equal lengths always share a bucket; with more
 * distinct lengths than {@code maxBuckets}, the bucket that wastes most (sum over members of
 * max^2 - s^2: each member is costed as the bucket's longest, and compute grows with s^2) is split in two
 * until there are {@code maxBuckets}. So the costs the program sees are exact for few distinct lengths
 * and never below the truth otherwise.
 */
final class LengthBuckets {

    /** Members' indices, longest first; {@code longest} is what the program costs each of them as. */
    record Bucket(int[] members, long longest) {
        int count() {
            return members.length;
        }
    }

    private LengthBuckets() {
    }

    static List<Bucket> of(long[] lengths, int maxBuckets) {
        if (maxBuckets < 1) {
            throw new IllegalArgumentException("maxBuckets must be >= 1, got " + maxBuckets);
        }
        Integer[] order = new Integer[lengths.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingLong((Integer i) -> -lengths[i]).thenComparingInt(i -> i));
        // Runs of equal lengths, longest first: the finest bucketing there is.
        List<int[]> runs = new ArrayList<>();
        int start = 0;
        for (int k = 1; k <= order.length; k++) {
            if (k == order.length || lengths[order[k]] != lengths[order[start]]) {
                runs.add(new int[] {start, k});
                start = k;
            }
        }
        // Buckets are ranges of runs [from, to); split the most wasteful until maxBuckets or single runs.
        List<int[]> ranges = new ArrayList<>();
        ranges.add(new int[] {0, runs.size()});
        while (ranges.size() < Math.min(maxBuckets, runs.size())) {
            int worst = -1;
            double worstWaste = -1;
            for (int b = 0; b < ranges.size(); b++) {
                int[] r = ranges.get(b);
                if (r[1] - r[0] < 2) {
                    continue;
                }
                double w = waste(lengths, order, runs, r[0], r[1]);
                if (w > worstWaste) {
                    worst = b;
                    worstWaste = w;
                }
            }
            int[] r = ranges.remove(worst);
            int cut = bestCut(lengths, order, runs, r[0], r[1]);
            ranges.add(worst, new int[] {cut, r[1]});
            ranges.add(worst, new int[] {r[0], cut});
        }
        List<Bucket> buckets = new ArrayList<>();
        for (int[] r : ranges) {
            int from = runs.get(r[0])[0];
            int to = runs.get(r[1] - 1)[1];
            int[] members = new int[to - from];
            for (int k = from; k < to; k++) {
                members[k - from] = order[k];
            }
            buckets.add(new Bucket(members, lengths[members[0]]));
        }
        return buckets;
    }

    /** The cut between runs that leaves the least waste in the two halves. */
    private static int bestCut(long[] lengths, Integer[] order, List<int[]> runs, int from, int to) {
        int best = from + 1;
        double bestWaste = Double.POSITIVE_INFINITY;
        for (int cut = from + 1; cut < to; cut++) {
            double w = waste(lengths, order, runs, from, cut) + waste(lengths, order, runs, cut, to);
            if (w < bestWaste) {
                best = cut;
                bestWaste = w;
            }
        }
        return best;
    }

    private static double waste(long[] lengths, Integer[] order, List<int[]> runs, int from, int to) {
        double max = lengths[order[runs.get(from)[0]]];
        double sum = 0;
        for (int k = runs.get(from)[0]; k < runs.get(to - 1)[1]; k++) {
            double s = lengths[order[k]];
            sum += max * max - s * s;
        }
        return sum;
    }
}
