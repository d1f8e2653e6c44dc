package org.usp4j.kernel;

import java.util.Arrays;

/**
 * Packed variable-length sequences: {@code n} sequences laid end to end along one sequence axis of
 * length S, described by their cumulative offsets ({@code cu_seqlens} in FlashAttention and
 * TransformerEngine): 0, then strictly increasing, the last equal to S. Sequence i is positions
 * [offset(i), offset(i + 1)); attention never crosses from one sequence to another, and a causal mask
 * is causal within each. One sequence covering the whole axis ({@link #single}) is ordinary attention.
 *
 * <p>These are always the global boundaries, over the whole packed sequence before any layout deals it
 * to ranks; every rank of a distributed call gets the same value.
 */
public final class SequenceBoundaries {

    private final long[] offsets;

    private SequenceBoundaries(long[] offsets) {
        this.offsets = offsets;
    }

    /**
     * The boundaries {@code cu_seqlens}: n + 1 offsets, 0 first, strictly increasing (no empty sequence).
     *
     * @throws IllegalArgumentException naming the first offset that breaks a rule
     */
    public static SequenceBoundaries of(long... cuSeqlens) {
        if (cuSeqlens.length < 2) {
            throw new IllegalArgumentException("cu_seqlens needs at least 2 offsets (0 and the sequence length), got "
                    + cuSeqlens.length);
        }
        if (cuSeqlens[0] != 0) {
            throw new IllegalArgumentException("cu_seqlens must start at 0, got " + cuSeqlens[0]);
        }
        for (int i = 1; i < cuSeqlens.length; i++) {
            if (cuSeqlens[i] <= cuSeqlens[i - 1]) {
                throw new IllegalArgumentException("cu_seqlens must be strictly increasing: cu_seqlens[" + i + "] = "
                        + cuSeqlens[i] + " after cu_seqlens[" + (i - 1) + "] = " + cuSeqlens[i - 1]
                        + " (sequence " + (i - 1) + " would be " + (cuSeqlens[i] == cuSeqlens[i - 1] ? "empty)"
                        : "negative)"));
            }
        }
        return new SequenceBoundaries(cuSeqlens.clone());
    }

    /** As {@link #of(long...)}, from an I32 {@code cu_seqlens} as files and frameworks hold it. */
    public static SequenceBoundaries of(int... cuSeqlens) {
        return of(Arrays.stream(cuSeqlens).asLongStream().toArray());
    }

    /** Sequences of these lengths, each at least 1, packed in this order. */
    public static SequenceBoundaries ofLengths(long... lengths) {
        if (lengths.length == 0) {
            throw new IllegalArgumentException("at least one sequence length is needed");
        }
        long[] cu = new long[lengths.length + 1];
        for (int i = 0; i < lengths.length; i++) {
            if (lengths[i] < 1) {
                throw new IllegalArgumentException("sequence " + i + " has length " + lengths[i] + "; lengths must be >= 1");
            }
            cu[i + 1] = Math.addExact(cu[i], lengths[i]);
        }
        return new SequenceBoundaries(cu);
    }

    /** One sequence of {@code length} positions: ordinary, unpacked attention. */
    public static SequenceBoundaries single(long length) {
        return ofLengths(length);
    }

    /** n, the number of sequences. */
    public int count() {
        return offsets.length - 1;
    }

    /** S, the packed length. */
    public long totalLength() {
        return offsets[offsets.length - 1];
    }

    /** Whether this is one sequence (nothing to separate). */
    public boolean isSingle() {
        return count() == 1;
    }

    /** The first position of sequence {@code i}. */
    public long start(int i) {
        return offsets[i];
    }

    /** One past the last position of sequence {@code i}. */
    public long end(int i) {
        return offsets[i + 1];
    }

    public long length(int i) {
        return offsets[i + 1] - offsets[i];
    }

    /** The longest sequence's length. */
    public long maxLength() {
        long max = 0;
        for (int i = 0; i < count(); i++) {
            max = Math.max(max, length(i));
        }
        return max;
    }

    /** The sequence that holds {@code position} (0 &lt;= position &lt; S). */
    public int sequenceOf(long position) {
        if (position < 0 || position >= totalLength()) {
            throw new IndexOutOfBoundsException("position " + position + " is outside [0, " + totalLength() + ")");
        }
        int found = Arrays.binarySearch(offsets, position);
        return found >= 0 ? found : -found - 2;
    }

    /** Throws unless these boundaries end at the sequence length {@code s} of the tensors they describe. */
    public void requireTotal(long s) {
        if (totalLength() != s) {
            throw new IllegalArgumentException("cu_seqlens ends at " + totalLength() + " but the sequence length s is "
                    + s + " (the last offset must equal s)");
        }
    }

    /** The offsets, 0 first. */
    public long[] offsets() {
        return offsets.clone();
    }

    /** The offsets as I32, as {@code cu_seqlens} is stored. */
    public int[] toIntArray() {
        int[] out = new int[offsets.length];
        for (int i = 0; i < offsets.length; i++) {
            out[i] = Math.toIntExact(offsets[i]);
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SequenceBoundaries b && Arrays.equals(offsets, b.offsets);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(offsets);
    }

    /** "cu_seqlens [0, 512, 2048]" (long lists shortened). */
    @Override
    public String toString() {
        if (offsets.length <= 12) {
            return "cu_seqlens " + Arrays.toString(offsets);
        }
        return "cu_seqlens [" + offsets[0] + ", " + offsets[1] + ", " + offsets[2] + ", ... " + (offsets.length - 6)
                + " more ..., " + offsets[offsets.length - 3] + ", " + offsets[offsets.length - 2] + ", "
                + offsets[offsets.length - 1] + "] (" + count() + " sequences)";
    }
}
