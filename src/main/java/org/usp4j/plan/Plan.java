package org.usp4j.plan;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.OptionalInt;
import org.usp4j.api.Mesh;

/**
 * An SP plan for one step: disjoint groups of ranks, each with its own mesh, and every sequence of the
 * batch in exactly one group. The step takes as long as its slowest group. An engine runs it by splitting
 * its world communicator with colour {@link #groupOf} (ranks in no group sit the step out) and key the
 * world rank, and running each group's mesh over its own sub-communicator, all groups at once.
 */
public record Plan(int worldSize, List<PlannedGroup> groups, double predictedSeconds) {

    public Plan {
        groups = List.copyOf(groups);
    }

    /**
     * Lays out {@code meshes} (one per group) on consecutive rank blocks, largest first (power-of-two groups
     * then start at multiples of their size), with sequence i in group {@code groupOfSequence[i]}; groups
     * that got no sequence are dropped. Times and memory come from {@code model}.
     */
    public static Plan of(int worldSize, List<Mesh> meshes, int[] groupOfSequence, long[] lengths, StepTimeModel model) {
        if (groupOfSequence.length != lengths.length) {
            throw new IllegalArgumentException("one group per sequence: " + groupOfSequence.length + " for "
                    + lengths.length + " sequences");
        }
        List<List<Integer>> members = new ArrayList<>();
        for (int g = 0; g < meshes.size(); g++) {
            members.add(new ArrayList<>());
        }
        for (int i = 0; i < lengths.length; i++) {
            members.get(groupOfSequence[i]).add(i);
        }
        List<Integer> used = new ArrayList<>();
        for (int g = 0; g < meshes.size(); g++) {
            if (!members.get(g).isEmpty()) {
                used.add(g);
            }
        }
        used.sort(Comparator.comparingInt((Integer g) -> -meshes.get(g).size()).thenComparingInt(g -> g));
        List<PlannedGroup> groups = new ArrayList<>();
        int next = 0;
        double slowest = 0;
        for (int g : used) {
            Mesh mesh = meshes.get(g);
            List<Integer> ranks = new ArrayList<>();
            for (int r = 0; r < mesh.size(); r++) {
                ranks.add(next + r);
            }
            next += mesh.size();
            if (next > worldSize) {
                throw new IllegalArgumentException("the groups need " + next + " ranks or more, the world has " + worldSize);
            }
            long[] own = members.get(g).stream().mapToLong(i -> lengths[i]).toArray();
            double seconds = model.groupSeconds(mesh, own);
            slowest = Math.max(slowest, seconds);
            groups.add(new PlannedGroup(ranks, mesh, members.get(g), seconds, model.groupMemoryBytes(mesh, own)));
        }
        return new Plan(worldSize, groups, slowest);
    }

    /** The index of the group that world rank {@code rank} belongs to, empty when it sits the step out. */
    public OptionalInt groupOf(int rank) {
        for (int g = 0; g < groups.size(); g++) {
            if (groups.get(g).groupRank(rank) >= 0) {
                return OptionalInt.of(g);
            }
        }
        return OptionalInt.empty();
    }

    /** Ranks the groups use. */
    public int ranksUsed() {
        return groups.stream().mapToInt(g -> g.ranks().size()).sum();
    }

    /** The largest predicted memory per rank over the groups. */
    public long peakMemoryBytesPerRank() {
        return groups.stream().mapToLong(PlannedGroup::memoryBytesPerRank).max().orElse(0);
    }
}
