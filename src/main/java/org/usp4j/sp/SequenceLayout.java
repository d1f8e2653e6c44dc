package org.usp4j.sp;

import java.util.List;
import java.util.Locale;
import java.util.function.BiConsumer;
import org.usp4j.api.Mesh;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.layout.RankPositions;
import org.usp4j.layout.RankPositions.Run;
import org.usp4j.tensor.Tensor;

/**
 * How a global sequence of length S is dealt to the P = U x R ranks of a {@link Mesh}. First the
 * sequence is dealt into R ring blocks of S/R positions; ring rank g's block is then cut into U pieces of
 * S/P positions in Ulysses-rank order. After the Ulysses all-to-all, every member of a ring group
 * therefore holds its whole ring block, and the ring algorithms work on blocks.
 * <ul>
 *   <li>{@link #CONTIGUOUS}: ring block g is positions [g S/R, (g+1) S/R).</li>
 *   <li>{@link #ZIGZAG}: the sequence is cut into 2R chunks; ring block g is chunks g and 2R-1-g,
 *       concatenated. Causal work is then equal on every ring rank. Needs S % (2P) == 0.</li>
 *   <li>{@link #STRIPED} (Striped Attention): position i belongs to ring block i mod R, so causal work
 *       is balanced token by token; block g is positions g, g + R, g + 2R, ... With U = 1 position i
 *       is on rank i mod P.</li>
 * </ul>
 * Packed variable-length sequences ({@link SequenceBoundaries}): contiguous and striped deal the packed
 * stream as it is (a sequence may straddle ranks); zigzag applies its split to every sequence.
 */
public enum SequenceLayout {
    CONTIGUOUS,
    ZIGZAG,
    STRIPED;

    /** The command-line spelling: "contiguous", "zigzag", "striped". */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses a {@link #label()} (any case). */
    public static SequenceLayout parse(String name) {
        for (SequenceLayout layout : values()) {
            if (layout.label().equals(name.toLowerCase(Locale.ROOT))) {
                return layout;
            }
        }
        throw new IllegalArgumentException("unknown sequence layout '" + name
                + "' (expected contiguous, zigzag or striped)");
    }

    /** Throws if a sequence of {@code seqLen} cannot be dealt over {@code mesh} in this layout. */
    public void validate(long seqLen, Mesh mesh) {
        if (this == ZIGZAG) {
            RankPositions.requireZigzag(seqLen, mesh.size(), mesh);
        } else {
            RankPositions.requireDivisible(seqLen, mesh.size(), mesh);
        }
    }

    /**
     * Throws if packed sequences with these boundaries cannot be dealt over {@code mesh}: contiguous and
     * striped deal the packed stream (S % P == 0, sequences may straddle ranks); zigzag splits every
     * sequence into 2R chunks, so each length must be divisible by 2P.
     */
    public void validate(SequenceBoundaries sequences, Mesh mesh) {
        validate(sequences.totalLength(), mesh);
        if (this == ZIGZAG) {
            RankPositions.requireZigzagSequences(sequences, mesh.size(), mesh);
        }
    }

    /** S / P: the positions every rank holds. */
    public long localLength(long seqLen, Mesh mesh) {
        validate(seqLen, mesh);
        return seqLen / mesh.size();
    }

    /** The global positions of {@code rank}'s local positions, as runs in local order. */
    public List<Run> runs(long seqLen, Mesh mesh, int rank) {
        return runs(SequenceBoundaries.single(seqLen), mesh, rank);
    }

    /**
     * The global positions of {@code rank}'s local positions of packed sequences, as runs in local order
     * (zigzag takes chunks g and 2R-1-g of every sequence, in sequence order).
     */
    public List<Run> runs(SequenceBoundaries sequences, Mesh mesh, int rank) {
        validate(sequences, mesh);
        int u = mesh.ulyssesRank(rank);
        int g = mesh.ringRank(rank);
        return switch (this) {
            case CONTIGUOUS -> RankPositions.contiguous(sequences.totalLength(), mesh.ulysses(), mesh.ring(), u, g);
            case ZIGZAG -> RankPositions.zigzag(sequences, mesh.ulysses(), mesh.ring(), u, g);
            case STRIPED -> RankPositions.striped(sequences.totalLength(), mesh.ulysses(), mesh.ring(), u, g);
        };
    }

    /** Global position of every local position of {@code rank}. */
    public long[] globalPositions(long seqLen, Mesh mesh, int rank) {
        return globalPositions(SequenceBoundaries.single(seqLen), mesh, rank);
    }

    /** Global position of every local position of {@code rank}, for packed sequences. */
    public long[] globalPositions(SequenceBoundaries sequences, Mesh mesh, int rank) {
        return RankPositions.positions(runs(sequences, mesh, rank), sequences.totalLength() / mesh.size());
    }

    /**
     * Copies {@code rank}'s positions of {@code global} (sequence along {@code seqDim}) into
     * {@code local}, one strided copy per run.
     */
    public void shard(Tensor global, Tensor local, int seqDim, Mesh mesh, int rank, BiConsumer<Tensor, Tensor> copy) {
        shard(global, local, seqDim, mesh, rank, SequenceBoundaries.single(global.size(seqDim)), copy);
    }

    /** As above, for packed sequences with these boundaries. */
    public void shard(Tensor global, Tensor local, int seqDim, Mesh mesh, int rank, SequenceBoundaries sequences,
                      BiConsumer<Tensor, Tensor> copy) {
        requireLocal(global, local, seqDim, mesh, sequences);
        for (Run run : runs(sequences, mesh, rank)) {
            copy.accept(stepped(global, seqDim, run), local.slice(seqDim, run.localStart(), run.length()));
        }
    }

    /** The inverse of {@link #shard}: writes {@code rank}'s local positions back into {@code global}. */
    public void unshard(Tensor local, Tensor global, int seqDim, Mesh mesh, int rank, BiConsumer<Tensor, Tensor> copy) {
        unshard(local, global, seqDim, mesh, rank, SequenceBoundaries.single(global.size(seqDim)), copy);
    }

    /** As above, for packed sequences with these boundaries. */
    public void unshard(Tensor local, Tensor global, int seqDim, Mesh mesh, int rank, SequenceBoundaries sequences,
                        BiConsumer<Tensor, Tensor> copy) {
        requireLocal(global, local, seqDim, mesh, sequences);
        for (Run run : runs(sequences, mesh, rank)) {
            copy.accept(local.slice(seqDim, run.localStart(), run.length()), stepped(global, seqDim, run));
        }
    }

    /** The positions of {@code run} in {@code global}: a slice, or a strided view for a striped run. */
    private static Tensor stepped(Tensor global, int seqDim, Run run) {
        if (run.step() == 1) {
            return global.slice(seqDim, run.globalStart(), run.length());
        }
        long[] shape = global.shape();
        long[] strides = global.strides();
        long offset = global.offset() + run.globalStart() * strides[seqDim];
        shape[seqDim] = run.length();
        strides[seqDim] *= run.step();
        return global.withGeometry(shape, strides, offset);
    }

    private void requireLocal(Tensor global, Tensor local, int seqDim, Mesh mesh, SequenceBoundaries sequences) {
        if (seqDim >= 0 && seqDim < global.rank()) {
            sequences.requireTotal(global.size(seqDim));
        }
        if (global.rank() != local.rank() || seqDim < 0 || seqDim >= global.rank()) {
            throw new IllegalArgumentException("cannot deal " + global.describe() + " to " + local.describe()
                    + " along dimension " + seqDim);
        }
        long expected = localLength(global.size(seqDim), mesh);
        for (int i = 0; i < global.rank(); i++) {
            long want = i == seqDim ? expected : global.size(i);
            if (local.size(i) != want) {
                throw new IllegalArgumentException("local tensor " + local.describe() + " does not fit a 1/"
                        + mesh.size() + " share of " + global.describe() + " along dimension " + seqDim);
            }
        }
    }
}
