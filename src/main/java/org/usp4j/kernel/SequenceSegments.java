package org.usp4j.kernel;

import java.util.Arrays;

/**
 * The packed sequences of one kernel call, as the {@link Mask} component that keeps attention inside
 * each: segment i lets query rows [queryStart(i), queryEnd(i)) see keys [keyStart(i), keyEnd(i)) and no
 * other. Query ranges are disjoint and increasing, and so are key ranges (queries and keys of a block
 * are in global order, so a sequence's rows and keys are each one run). Rows outside every segment see
 * no key (out = 0, lse = -inf); keys outside every segment are seen by no row.
 */
public final class SequenceSegments {

    private final long[] queryStarts;
    private final long[] queryEnds;
    private final long[] keyStarts;
    private final long[] keyEnds;

    private SequenceSegments(long[] queryStarts, long[] queryEnds, long[] keyStarts, long[] keyEnds) {
        this.queryStarts = queryStarts;
        this.queryEnds = queryEnds;
        this.keyStarts = keyStarts;
        this.keyEnds = keyEnds;
    }

    /** Collects segments in increasing order. */
    public static final class Builder {
        private long[] qs = new long[4];
        private long[] qe = new long[4];
        private long[] ks = new long[4];
        private long[] ke = new long[4];
        private int n;

        /** Adds rows [queryStart, queryEnd) seeing keys [keyStart, keyEnd); both non-empty, after the last. */
        public Builder add(long queryStart, long queryEnd, long keyStart, long keyEnd) {
            if (queryStart < 0 || queryEnd <= queryStart || keyStart < 0 || keyEnd <= keyStart) {
                throw new IllegalArgumentException("a segment needs non-empty ranges, got rows [" + queryStart + ", "
                        + queryEnd + ") and keys [" + keyStart + ", " + keyEnd + ")");
            }
            if (n > 0 && (queryStart < qe[n - 1] || keyStart < ke[n - 1])) {
                throw new IllegalArgumentException("segments must be disjoint and increasing: rows [" + queryStart
                        + ", " + queryEnd + ") keys [" + keyStart + ", " + keyEnd + ") after rows [" + qs[n - 1] + ", "
                        + qe[n - 1] + ") keys [" + ks[n - 1] + ", " + ke[n - 1] + ")");
            }
            if (n == qs.length) {
                qs = Arrays.copyOf(qs, 2 * n);
                qe = Arrays.copyOf(qe, 2 * n);
                ks = Arrays.copyOf(ks, 2 * n);
                ke = Arrays.copyOf(ke, 2 * n);
            }
            qs[n] = queryStart;
            qe[n] = queryEnd;
            ks[n] = keyStart;
            ke[n] = keyEnd;
            n++;
            return this;
        }

        public boolean isEmpty() {
            return n == 0;
        }

        public SequenceSegments build() {
            return new SequenceSegments(Arrays.copyOf(qs, n), Arrays.copyOf(qe, n), Arrays.copyOf(ks, n),
                    Arrays.copyOf(ke, n));
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    public int count() {
        return queryStarts.length;
    }

    public long queryStart(int i) {
        return queryStarts[i];
    }

    public long queryEnd(int i) {
        return queryEnds[i];
    }

    public long keyStart(int i) {
        return keyStarts[i];
    }

    public long keyEnd(int i) {
        return keyEnds[i];
    }

    public long queryLength(int i) {
        return queryEnds[i] - queryStarts[i];
    }

    public long keyLength(int i) {
        return keyEnds[i] - keyStarts[i];
    }

    /** Whether some segment lets row {@code queryRow} see key {@code keyColumn}. */
    public boolean allows(long queryRow, long keyColumn) {
        int found = Arrays.binarySearch(queryStarts, queryRow);
        int i = found >= 0 ? found : -found - 2;
        return i >= 0 && queryRow < queryEnds[i] && keyColumn >= keyStarts[i] && keyColumn < keyEnds[i];
    }

    /** The same segments with rows and keys counted from {@code queryOffset} and {@code keyOffset}. */
    public SequenceSegments shifted(long queryOffset, long keyOffset) {
        long[] qs = queryStarts.clone();
        long[] qe = queryEnds.clone();
        long[] ks = keyStarts.clone();
        long[] ke = keyEnds.clone();
        for (int i = 0; i < qs.length; i++) {
            qs[i] -= queryOffset;
            qe[i] -= queryOffset;
            ks[i] -= keyOffset;
            ke[i] -= keyOffset;
        }
        return new SequenceSegments(qs, qe, ks, ke);
    }

    /** Throws unless every segment lies inside a call of {@code rows} query rows and {@code keys} keys. */
    public void requireWithin(long rows, long keys) {
        int n = count();
        if (n > 0 && (queryEnds[n - 1] > rows || keyEnds[n - 1] > keys)) {
            throw new IllegalArgumentException("mask segments reach row " + queryEnds[n - 1] + " and key "
                    + keyEnds[n - 1] + ", past a block of " + rows + " rows and " + keys + " keys");
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SequenceSegments s && Arrays.equals(queryStarts, s.queryStarts)
                && Arrays.equals(queryEnds, s.queryEnds) && Arrays.equals(keyStarts, s.keyStarts)
                && Arrays.equals(keyEnds, s.keyEnds);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * (31 * Arrays.hashCode(queryStarts) + Arrays.hashCode(queryEnds))
                + Arrays.hashCode(keyStarts)) + Arrays.hashCode(keyEnds);
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder().append(count()).append(count() == 1 ? " sequence" : " sequences");
        for (int i = 0; i < Math.min(count(), 4); i++) {
            s.append(i == 0 ? " (" : ", ").append("rows [").append(queryStarts[i]).append(", ").append(queryEnds[i])
                    .append(") keys [").append(keyStarts[i]).append(", ").append(keyEnds[i]).append(')');
        }
        return s.append(count() > 4 ? ", ...)" : count() > 0 ? ")" : "").toString();
    }
}
