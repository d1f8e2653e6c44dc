package org.usp4j.sp;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.api.Mesh;
import org.usp4j.kernel.SequenceBoundaries;

/**
 * Where the packed sequences lie in the R ring blocks of a layout: for every ring rank, the global
 * position of each row of its block and the runs of rows that belong to one sequence. Blocks are in
 * global order under every layout (contiguous, zigzag per sequence, striped), so each sequence is one
 * run of rows in a block. {@link RingStep} builds its masks from this.
 */
final class PackedRingBlocks {

    /** Rows [start, end) of a block belong to sequence {@code sequence}. */
    record SequenceRun(int sequence, int start, int end) {
    }

    private final SequenceBoundaries sequences;
    private final long[][] positions;
    private final List<List<SequenceRun>> runs;

    private PackedRingBlocks(SequenceBoundaries sequences, long[][] positions, List<List<SequenceRun>> runs) {
        this.sequences = sequences;
        this.positions = positions;
        this.runs = runs;
    }

    /** The ring blocks of {@code sequences} dealt by {@code layout} over {@code ringSize} ring ranks. */
    static PackedRingBlocks of(SequenceBoundaries sequences, SequenceLayout layout, int ringSize) {
        Mesh rings = new Mesh(1, ringSize);
        long[][] positions = new long[ringSize][];
        List<List<SequenceRun>> runs = new ArrayList<>(ringSize);
        for (int g = 0; g < ringSize; g++) {
            long[] p = layout.globalPositions(sequences, rings, g);
            positions[g] = p;
            List<SequenceRun> blockRuns = new ArrayList<>();
            int start = 0;
            int current = p.length > 0 ? sequences.sequenceOf(p[0]) : -1;
            for (int i = 1; i <= p.length; i++) {
                int s = i < p.length ? sequences.sequenceOf(p[i]) : -1;
                if (s != current) {
                    blockRuns.add(new SequenceRun(current, start, i));
                    start = i;
                    current = s;
                }
            }
            runs.add(List.copyOf(blockRuns));
        }
        return new PackedRingBlocks(sequences, positions, List.copyOf(runs));
    }

    /**
     * The blocks a ring of {@code ringSize} ranks with blocks of {@code blockRows} rows works on, or null
     * for plain attention (no boundaries, or one sequence).
     */
    static PackedRingBlocks forRing(SequenceBoundaries sequences, SequenceLayout layout, int ringSize,
                                    long blockRows) {
        if (sequences == null || sequences.isSingle()) {
            return null;
        }
        sequences.requireTotal(Math.multiplyExact(blockRows, (long) ringSize));
        return of(sequences, layout, ringSize);
    }

    SequenceBoundaries sequences() {
        return sequences;
    }

    int ringSize() {
        return positions.length;
    }

    long blockLength() {
        return positions[0].length;
    }

    /** The global position of row {@code row} of ring block {@code g}. */
    long position(int g, int row) {
        return positions[g][row];
    }

    /** The sequences of block {@code g}, as runs of rows in block order. */
    List<SequenceRun> runs(int g) {
        return runs.get(g);
    }

    /** The first row in [from, to) of block {@code g} at or after global position {@code position}. */
    int firstAtOrAfter(int g, int from, int to, long position) {
        long[] p = positions[g];
        int lo = from, hi = to;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (p[mid] < position) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }
}
