package org.usp4j.kernel;

/**
 * Which keys a query row of one kernel call may see, as a small value that both backends read.
 * Causal masks are diagonals: row i sees key column j when {@code j <= i + diagonal}. Diagonal 0 is
 * the usual top-left causal block (the diagonal included); -1 excludes the diagonal (a striped ring
 * step whose keys come from a later rank); a positive diagonal lets the rows see that many keys more
 * (a query block that starts later than its keys). Rows that see no key get out = 0 and lse = -inf.
 *
 * <p>New kinds (sliding windows, varlen sequence boundaries) become new components with their own
 * {@link #allows} terms; kernels that cannot express one refuse it in their {@code validate}.
 */
public record Mask(boolean causal, long diagonal) {

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

    /** Causal with row i seeing keys j &lt;= i + diagonal. */
    public static Mask causal(long diagonal) {
        return diagonal == 0 ? CAUSAL : new Mask(true, diagonal);
    }

    public boolean allows(long queryRow, long keyColumn) {
        return !causal || keyColumn <= queryRow + diagonal;
    }

    /** How many leading keys of {@code keys} row {@code queryRow} sees. */
    public long visibleKeys(long queryRow, long keys) {
        return causal ? Math.clamp(queryRow + diagonal + 1, 0, keys) : keys;
    }

    @Override
    public String toString() {
        return !causal ? "none" : diagonal == 0 ? "causal" : "causal(diagonal " + diagonal + ")";
    }
}
