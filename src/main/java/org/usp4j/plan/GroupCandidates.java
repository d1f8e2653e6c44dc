package org.usp4j.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.usp4j.api.Mesh;

/**
 * The group meshes a plan over P ranks may use: sizes that are powers of two up to P, and P itself (so
 * that the static mesh over all ranks is always a candidate), each with every U x R = size whose U the
 * heads allow. Powers of two keep the groups aligned on rank blocks, as nodes and NVLink domains are.
 */
public final class GroupCandidates {

    private GroupCandidates() {
    }

    /** Candidate sizes for {@code ranks}, ascending. */
    public static List<Integer> sizes(int ranks) {
        if (ranks < 1) {
            throw new IllegalArgumentException("ranks must be >= 1, got " + ranks);
        }
        TreeSet<Integer> sizes = new TreeSet<>();
        for (int p = 1; p <= ranks && p > 0; p *= 2) {
            sizes.add(p);
        }
        sizes.add(ranks);
        return List.copyOf(sizes);
    }

    /** Every mesh of {@code size} ranks the shape allows, Ulysses degree ascending (1 x size first). */
    public static List<Mesh> meshes(int size, StepTimeModel model) {
        List<Mesh> meshes = new ArrayList<>();
        for (int u = 1; u <= size; u++) {
            if (size % u == 0) {
                Mesh m = new Mesh(u, size / u);
                if (model.allows(m)) {
                    meshes.add(m);
                }
            }
        }
        return meshes;
    }

    /** Every candidate mesh for {@code ranks}, by size then Ulysses degree. */
    public static List<Mesh> all(int ranks, StepTimeModel model) {
        List<Mesh> all = new ArrayList<>();
        for (int size : sizes(ranks)) {
            all.addAll(meshes(size, model));
        }
        return all;
    }
}
