package org.usp4j.plan;

import java.util.List;
import java.util.Objects;
import org.usp4j.api.Mesh;

/**
 * One SP group of a plan: world ranks {@code ranks} (consecutive, so that its Ulysses groups are runs of
 * U consecutive ranks as {@link Mesh} lays them out), run as one U x R mesh on a sub-communicator of
 * {@code ranks.size()} ranks, over the batch's sequences {@code sequences} (indices into the batch,
 * ascending) packed into one call. Group rank i is world rank {@code ranks.get(i)}.
 *
 * @param predictedSeconds  the cost model's time of this group's forward and backward
 * @param memoryBytesPerRank the cost model's memory per rank of this group's packed call
 */
public record PlannedGroup(List<Integer> ranks, Mesh mesh, List<Integer> sequences, double predictedSeconds,
                           long memoryBytesPerRank) {

    public PlannedGroup {
        ranks = List.copyOf(ranks);
        Objects.requireNonNull(mesh, "mesh");
        sequences = List.copyOf(sequences);
        if (ranks.size() != mesh.size()) {
            throw new IllegalArgumentException("a group on mesh " + StepTimeModel.label(mesh) + " needs " + mesh.size()
                    + " ranks, got " + ranks);
        }
    }

    /** This group's rank of world rank {@code worldRank}, or -1 when it is not a member. */
    public int groupRank(int worldRank) {
        return ranks.indexOf(worldRank);
    }
}
