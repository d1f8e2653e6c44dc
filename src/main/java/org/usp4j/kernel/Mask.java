package org.usp4j.kernel;

/**
 * Which keys a query row may see. {@link #CAUSAL} is top-left aligned: query row i sees key column
 * j when j <= i. Every causal block usp4j runs is square (the ring's diagonal step), where top-left
 * and bottom-right alignment agree.
 */
public enum Mask {
    NONE,
    CAUSAL;

    public boolean allows(long queryRow, long keyColumn) {
        return this == NONE || keyColumn <= queryRow;
    }
}
