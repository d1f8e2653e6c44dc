package org.usp4j.layout;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.kernel.SequenceBoundaries;

/**
 * Which global positions a rank of a U x R mesh holds. The sequence is dealt into R ring blocks; ring
 * rank g's block is then cut into U pieces of S / P positions in Ulysses-rank order. Callers check the
 * lengths first ({@link #requireDivisible}, {@link #requireZigzag}, {@link #requireZigzagSequences}); {@code mesh} is only named in the
 * messages.
 */
public final class RankPositions {

    /**
     * {@code length} consecutive local positions from {@code localStart} are the global positions
     * {@code globalStart}, {@code globalStart + step}, ... ({@code step} 1 but for striped blocks).
     */
    public record Run(long localStart, long globalStart, long length, long step) {
    }

    private RankPositions() {
    }

    /** Throws unless {@code seqLen} is positive and divisible by the mesh's {@code ranks}. */
    public static void requireDivisible(long seqLen, int ranks, Object mesh) {
        requirePositive(seqLen);
        if (seqLen % ranks != 0) {
            throw new IllegalArgumentException("sequence length S = " + seqLen + " is not divisible by P = " + ranks
                    + " ranks of mesh " + mesh);
        }
    }

    /** Throws unless {@code seqLen} is positive and zigzag can deal it over {@code ranks}: S % (2P) == 0. */
    public static void requireZigzag(long seqLen, int ranks, Object mesh) {
        requirePositive(seqLen);
        if (seqLen % (2L * ranks) != 0) {
            throw new IllegalArgumentException("zigzag layout needs S % (2P) == 0, got S = " + seqLen + " and 2P = "
                    + 2L * ranks + " (mesh " + mesh + ")");
        }
    }

    /**
     * Throws unless zigzag can split every one of packed sequences over {@code ranks}: each length divisible
     * by 2P (as TransformerEngine and ring-flash-attention require); the message names the first that is not.
     */
    public static void requireZigzagSequences(SequenceBoundaries sequences, int ranks, Object mesh) {
        if (sequences.isSingle()) {
            return;
        }
        long twoP = 2L * ranks;
        for (int i = 0; i < sequences.count(); i++) {
            if (sequences.length(i) % twoP != 0) {
                throw new IllegalArgumentException("zigzag layout needs every sequence length divisible by 2P = "
                        + twoP + " (mesh " + mesh + "), but sequence " + i + " has length " + sequences.length(i)
                        + " (positions " + sequences.start(i) + " to " + (sequences.end(i) - 1) + ")");
            }
        }
    }

    private static void requirePositive(long seqLen) {
        if (seqLen <= 0) {
            throw new IllegalArgumentException("sequence length must be positive, got " + seqLen);
        }
    }

    /** Contiguous: ring block g is positions [g S/R, (g+1) S/R). */
    public static List<Run> contiguous(long seqLen, int ulysses, int ring, int ulyssesRank, int ringRank) {
        long block = seqLen / ring;
        return cut(List.of(new long[] {ringRank * block, block}), seqLen / ((long) ulysses * ring), ulyssesRank);
    }

    /** Zigzag: ring block g is chunks g and 2R-1-g of every sequence (of 2R chunks), in sequence order. */
    public static List<Run> zigzag(SequenceBoundaries sequences, int ulysses, int ring, int ulyssesRank,
                                   int ringRank) {
        List<long[]> parts = new ArrayList<>(2 * sequences.count());
        for (int i = 0; i < sequences.count(); i++) {
            long chunk = sequences.length(i) / (2L * ring);
            parts.add(new long[] {sequences.start(i) + ringRank * chunk, chunk});
            parts.add(new long[] {sequences.start(i) + (2L * ring - 1 - ringRank) * chunk, chunk});
        }
        return cut(parts, sequences.totalLength() / ((long) ulysses * ring), ulyssesRank);
    }

    /** Striped: ring block g is positions g, g + R, g + 2R, ... */
    public static List<Run> striped(long seqLen, int ulysses, int ring, int ulyssesRank, int ringRank) {
        long local = seqLen / ((long) ulysses * ring);
        return List.of(new Run(0, ringRank + ring * (ulyssesRank * local), local, ring));
    }

    /** Ulysses rank {@code u}'s piece of {@code local} positions of a ring block given as (start, length) parts. */
    private static List<Run> cut(List<long[]> block, long local, int u) {
        long from = u * local;
        List<Run> runs = new ArrayList<>(2);
        long blockPos = 0; // position within the ring block's concatenation
        for (long[] part : block) {
            long start = Math.max(from, blockPos);
            long end = Math.min(from + local, blockPos + part[1]);
            if (start < end) {
                runs.add(new Run(start - from, part[0] + (start - blockPos), end - start, 1));
            }
            blockPos += part[1];
        }
        return runs;
    }

    /** Every global position of {@code local} positions dealt as {@code runs}, in local order. */
    public static long[] positions(List<Run> runs, long local) {
        long[] positions = new long[Math.toIntExact(local)];
        for (Run run : runs) {
            for (long i = 0; i < run.length(); i++) {
                positions[(int) (run.localStart() + i)] = run.globalStart() + i * run.step();
            }
        }
        return positions;
    }
}
