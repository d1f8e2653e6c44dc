package org.usp4j.api;

import java.util.Arrays;
import org.usp4j.kernel.SequenceBoundaries;

/**
 * Variable-length sequences packed end to end into one sequence of length S (b = 1), as their global
 * cumulative offsets {@code cu_seqlens} (FlashAttention's and TransformerEngine's convention): n + 1
 * I32 offsets, 0 first, strictly increasing, the last equal to S. Sequence i is the global positions
 * [cu_seqlens[i], cu_seqlens[i+1]); attention never crosses from one sequence to another, and a causal
 * layer is causal within each.
 *
 * <p>The offsets are always global, over the whole packed sequence before it is dealt: every rank
 * passes the same value to {@link AttentionLayer#forward(org.usp4j.tensor.Tensor, org.usp4j.tensor.Tensor,
 * org.usp4j.tensor.Tensor, org.usp4j.tensor.Tensor, PackedSequences)}, and deals its data with
 * {@link SequenceLayout#globalPositions(PackedSequences, Mesh, int)}.
 */
public final class PackedSequences {

    private final int[] cuSeqlens;

    private PackedSequences(int[] cuSeqlens) {
        this.cuSeqlens = cuSeqlens;
    }

    /**
     * The sequences of these global offsets.
     *
     * @param cuSeqlens n + 1 offsets: 0, strictly increasing (no empty sequence), the last = S
     * @return the packed sequences
     * @throws IllegalArgumentException naming the first offset that breaks a rule
     */
    public static PackedSequences of(int... cuSeqlens) {
        PackedSequences p = new PackedSequences(cuSeqlens.clone());
        SequenceBoundaries.of(p.cuSeqlens); // checks every rule
        return p;
    }

    /**
     * Sequences of these lengths, packed in this order.
     *
     * @param lengths each at least 1
     * @return the packed sequences
     * @throws IllegalArgumentException when a length is below 1 or they add up to more than an int
     */
    public static PackedSequences ofLengths(int... lengths) {
        try {
            return of(SequenceBoundaries.ofLengths(Arrays.stream(lengths).asLongStream().toArray()).toIntArray());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("the lengths add up to more than " + Integer.MAX_VALUE, e);
        }
    }

    /**
     * The offsets.
     *
     * @return a copy of cu_seqlens, n + 1 values
     */
    public int[] cuSeqlens() {
        return cuSeqlens.clone();
    }

    /**
     * The number of sequences.
     *
     * @return n
     */
    public int count() {
        return cuSeqlens.length - 1;
    }

    /**
     * The packed length.
     *
     * @return S, the last offset
     */
    public int totalLength() {
        return cuSeqlens[cuSeqlens.length - 1];
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof PackedSequences p && Arrays.equals(cuSeqlens, p.cuSeqlens);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(cuSeqlens);
    }

    @Override
    public String toString() {
        return "PackedSequences" + Arrays.toString(cuSeqlens);
    }
}
