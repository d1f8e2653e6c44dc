package org.usp4j.api;

import java.util.List;
import java.util.Objects;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.layout.RankPositions;

/**
 * How a global sequence of length S is dealt to the P = U x R ranks of a {@link Mesh}: which S / P
 * positions each rank holds, in which order. Every rank passes its own positions (its local shard) to
 * {@link AttentionLayer#forward}; the framework deals its data (tokens, position ids for rotary
 * embeddings, labels) with {@link #globalPositions}. Causal masking follows these global positions.
 *
 * <p>The sequence is first cut into R ring blocks; ring rank g's block is then cut into U pieces of
 * S / P positions in Ulysses-rank order.
 */
public enum SequenceLayout {
    /** Ring block g is positions [g S/R, (g+1) S/R). Needs S % P == 0. */
    CONTIGUOUS,
    /**
     * The sequence is cut into 2R chunks and ring block g is chunks g and 2R-1-g, concatenated, so every
     * rank does the same causal work. Needs S % (2P) == 0.
     */
    ZIGZAG;

    /**
     * The number of positions every rank holds.
     *
     * @param seqLen the global sequence length S
     * @param mesh   the mesh
     * @return S / P
     * @throws IllegalArgumentException when S is not positive or does not split over the mesh in this layout
     */
    public long localLength(long seqLen, Mesh mesh) {
        Objects.requireNonNull(mesh, "mesh");
        if (this == ZIGZAG) {
            RankPositions.requireZigzag(seqLen, mesh.size(), mesh);
        } else {
            RankPositions.requireDivisible(seqLen, mesh.size(), mesh);
        }
        return seqLen / mesh.size();
    }

    /**
     * The global position of each of a rank's local positions.
     *
     * @param seqLen the global sequence length S
     * @param mesh   the mesh
     * @param rank   the rank, in [0, P)
     * @return an array of S / P global positions, in local order (ascending within each run)
     * @throws IllegalArgumentException when S does not split over the mesh or {@code rank} is outside it
     */
    public long[] globalPositions(long seqLen, Mesh mesh, int rank) {
        Objects.requireNonNull(mesh, "mesh");
        return positions(SequenceBoundaries.single(seqLen), mesh, rank);
    }

    /**
     * The global position of each of a rank's local positions of packed sequences: contiguous deals the
     * packed stream as it is (a sequence may straddle ranks), zigzag applies its split to every sequence
     * (chunks g and 2R-1-g of each, in sequence order).
     *
     * @param sequences the packed sequences (their global offsets)
     * @param mesh      the mesh
     * @param rank      the rank, in [0, P)
     * @return an array of S / P global positions, in local order
     * @throws IllegalArgumentException when S does not split over the mesh, a zigzag sequence's length is not
     *                                  divisible by 2P, or {@code rank} is outside the mesh
     */
    public long[] globalPositions(PackedSequences sequences, Mesh mesh, int rank) {
        SequenceBoundaries boundaries = SequenceBoundaries.of(Objects.requireNonNull(sequences, "sequences").cuSeqlens());
        return positions(boundaries, Objects.requireNonNull(mesh, "mesh"), rank);
    }

    private long[] positions(SequenceBoundaries sequences, Mesh mesh, int rank) {
        long seqLen = sequences.totalLength();
        localLength(seqLen, mesh);
        if (this == ZIGZAG) {
            RankPositions.requireZigzagSequences(sequences, mesh.size(), mesh);
        }
        int u = mesh.ulyssesRank(rank);
        int g = mesh.ringRank(rank);
        List<RankPositions.Run> runs = switch (this) {
            case CONTIGUOUS -> RankPositions.contiguous(seqLen, mesh.ulysses(), mesh.ring(), u, g);
            case ZIGZAG -> RankPositions.zigzag(sequences, mesh.ulysses(), mesh.ring(), u, g);
        };
        return RankPositions.positions(runs, seqLen / mesh.size());
    }
}
