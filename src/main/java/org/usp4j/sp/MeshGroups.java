package org.usp4j.sp;

import java.util.Objects;
import org.usp4j.api.Mesh;
import org.usp4j.comm.Communicator;

/**
 * One rank's two sub-communicators of a {@link Mesh}: its Ulysses group (ordered by Ulysses rank) and
 * its ring (ordered by ring rank). Closing closes both; the world communicator is the caller's.
 */
public record MeshGroups(Mesh mesh, Communicator ulysses, Communicator ring) implements AutoCloseable {

    public MeshGroups {
        Objects.requireNonNull(mesh, "mesh");
        Objects.requireNonNull(ulysses, "ulysses");
        Objects.requireNonNull(ring, "ring");
        if (ulysses.size() != mesh.ulysses() || ring.size() != mesh.ring()) {
            throw new IllegalArgumentException("groups of sizes " + ulysses.size() + " (ulysses) and " + ring.size()
                    + " (ring) do not match mesh " + mesh);
        }
    }

    /** Splits {@code world} (of mesh.size() ranks) into the mesh's groups. Collective over the world. */
    public static MeshGroups split(Mesh mesh, Communicator world) {
        if (world.size() != mesh.size()) {
            throw new IllegalArgumentException("mesh " + mesh + " needs " + mesh.size() + " ranks, the world has "
                    + world.size());
        }
        int r = world.rank();
        Communicator ulysses = world.split(mesh.ringRank(r), mesh.ulyssesRank(r));
        Communicator ring = world.split(mesh.ulyssesRank(r), mesh.ringRank(r));
        return new MeshGroups(mesh, ulysses, ring);
    }

    @Override
    public void close() {
        ulysses.close();
        ring.close();
    }
}
