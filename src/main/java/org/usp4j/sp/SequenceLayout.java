package org.usp4j.sp;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.BiConsumer;
import org.usp4j.kernel.SequenceBoundaries;
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

    /**
     * {@code length} consecutive local positions from {@code localStart} are the global positions
     * {@code globalStart}, {@code globalStart + step}, ... ({@code step} 1 but for striped blocks).
     */
    public record Run(long localStart, long globalStart, long length, long step) {
    }

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
        int p = mesh.size();
        if (seqLen <= 0) {
            throw new IllegalArgumentException("sequence length must be positive, got " + seqLen);
        }
        if (this != ZIGZAG && seqLen % p != 0) {
            throw new IllegalArgumentException("sequence length S = " + seqLen + " is not divisible by P = " + p
                    + " ranks of mesh " + mesh);
        }
        if (this == ZIGZAG && seqLen % (2L * p) != 0) {
            throw new IllegalArgumentException("zigzag layout needs S % (2P) == 0, got S = " + seqLen + " and 2P = "
                    + 2L * p + " (mesh " + mesh + ")");
        }
    }

    /**
     * Throws if packed sequences with these boundaries cannot be dealt over {@code mesh}: contiguous and
     * striped deal the packed stream (S % P == 0, sequences may straddle ranks); zigzag splits every
     * sequence into 2R chunks, so each length must be divisible by 2P (as TransformerEngine and
     * ring-flash-attention require), and the message names the first that is not.
     */
    public void validate(SequenceBoundaries sequences, Mesh mesh) {
        validate(sequences.totalLength(), mesh);
        if (this == ZIGZAG && !sequences.isSingle()) {
            long twoP = 2L * mesh.size();
            for (int i = 0; i < sequences.count(); i++) {
                if (sequences.length(i) % twoP != 0) {
                    throw new IllegalArgumentException("zigzag layout needs every sequence length divisible by 2P = "
                            + twoP + " (mesh " + mesh + "), but sequence " + i + " has length " + sequences.length(i)
                            + " (positions " + sequences.start(i) + " to " + (sequences.end(i) - 1) + ")");
                }
            }
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
        long local = sequences.totalLength() / mesh.size();
        long from = mesh.ulyssesRank(rank) * local; // this rank's piece of its ring block
        if (this == STRIPED) {
            int ring = mesh.ring();
            return List.of(new Run(0, mesh.ringRank(rank) + ring * from, local, ring));
        }
        List<Run> runs = new ArrayList<>(2);
        long blockPos = 0; // position within the ring block's concatenation
        for (long[] part : ringBlock(sequences, mesh.ring(), mesh.ringRank(rank))) {
            long start = Math.max(from, blockPos);
            long end = Math.min(from + local, blockPos + part[1]);
            if (start < end) {
                runs.add(new Run(start - from, part[0] + (start - blockPos), end - start, 1));
            }
            blockPos += part[1];
        }
        return runs;
    }

    /** Global position of every local position of {@code rank}. */
    public long[] globalPositions(long seqLen, Mesh mesh, int rank) {
        return globalPositions(SequenceBoundaries.single(seqLen), mesh, rank);
    }

    /** Global position of every local position of {@code rank}, for packed sequences. */
    public long[] globalPositions(SequenceBoundaries sequences, Mesh mesh, int rank) {
        long[] positions = new long[Math.toIntExact(sequences.totalLength() / mesh.size())];
        for (Run run : runs(sequences, mesh, rank)) {
            for (long i = 0; i < run.length(); i++) {
                positions[(int) (run.localStart() + i)] = run.globalStart() + i * run.step();
            }
        }
        return positions;
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

    /** Ring rank g's block as (global start, length) parts in block order (contiguous and zigzag). */
    private List<long[]> ringBlock(SequenceBoundaries sequences, int ring, int g) {
        if (this == CONTIGUOUS) {
            long block = sequences.totalLength() / ring;
            return List.of(new long[] {g * block, block});
        }
        List<long[]> parts = new ArrayList<>(2 * sequences.count());
        for (int i = 0; i < sequences.count(); i++) {
            long chunk = sequences.length(i) / (2L * ring);
            parts.add(new long[] {sequences.start(i) + g * chunk, chunk});
            parts.add(new long[] {sequences.start(i) + (2L * ring - 1 - g) * chunk, chunk});
        }
        return parts;
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
