package org.usp4j.kernel;

/**
 * Which keys a query row of one kernel call may see, as a small value that both backends read.
 * Causal masks are diagonals: row i sees key column j when {@code j <= i + diagonal}. Diagonal 0 is
 * the usual top-left causal block (the diagonal included); -1 excludes the diagonal (a striped ring
 * step whose keys come from a later rank); a positive diagonal lets the rows see that many keys more
 * (a query block that starts later than its keys). Rows that see no key get out = 0 and lse = -inf.
 *
 * <p>Packed variable-length sequences add {@link #segments()}: a row then sees only the keys of its
 * own segment, and of those only what the diagonal allows (null: the whole block is one sequence).
 * {@link #segmentMask} is the plain mask of one segment's rows and keys cut out of the block, so a
 * kernel can run a segmented mask as one plain call per segment ({@link SegmentedAttention}).
 *
 * <p>New kinds (sliding windows) become new components with their own {@link #allows} terms; kernels
 * that cannot express one refuse it in their {@code validate}.
 */
public record Mask(boolean causal, long diagonal, SequenceSegments segments) {

    /** Every row sees every key. */
    public static final Mask NONE = new Mask(false, 0);

    /** Top-left causal: row i sees keys j &lt;= i. */
    public static final Mask CAUSAL = new Mask(true, 0);

    public Mask {
        if (!causal && diagonal != 0) {
            throw new IllegalArgumentException("a non-causal mask has no diagonal, got " + diagonal);
        }
        if (Math.abs(diagonal) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("mask diagonal " + diagonal + " is out of range");
        }
    }

    /** A mask over one sequence (no segments). */
    public Mask(boolean causal, long diagonal) {
        this(causal, diagonal, null);
    }

    /** Causal with row i seeing keys j &lt;= i + diagonal. */
    public static Mask causal(long diagonal) {
        return diagonal == 0 ? CAUSAL : new Mask(true, diagonal);
    }

    /** This mask, restricted to {@code segments} (null: none). */
    public Mask withSegments(SequenceSegments segments) {
        return new Mask(causal, diagonal, segments);
    }

    /** Whether rows are kept to their own packed sequence's keys. */
    public boolean segmented() {
        return segments != null;
    }

    /**
     * The plain mask of segment {@code i} on its own rows and keys (row 0 = the segment's first row, key
     * 0 its first key): the diagonal moves by the segment's row start minus its key start.
     */
    public Mask segmentMask(int i) {
        return causal ? causal(diagonal + segments.queryStart(i) - segments.keyStart(i)) : NONE;
    }

    public boolean allows(long queryRow, long keyColumn) {
        return (!causal || keyColumn <= queryRow + diagonal)
                && (segments == null || segments.allows(queryRow, keyColumn));
    }

    /** How many leading keys of {@code keys} row {@code queryRow} sees, for a mask without segments. */
    public long visibleKeys(long queryRow, long keys) {
        if (segments != null) {
            throw new IllegalStateException("a segmented mask's visible keys are not a prefix: " + this);
        }
        return causal ? Math.clamp(queryRow + diagonal + 1, 0, keys) : keys;
    }

    @Override
    public String toString() {
        String base = !causal ? "none" : diagonal == 0 ? "causal" : "causal(diagonal " + diagonal + ")";
        return segments == null ? base : base + " within " + segments;
    }
}
