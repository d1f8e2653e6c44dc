package org.usp4j.api.internal;

import java.util.Objects;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.PackedSequences;
import org.usp4j.api.SequenceLayout;

/** The public parameter types as the internal ones the strategies take (the API stays apart from them). */
public final class Conversions {

    private Conversions() {
    }

    /** The internal mesh of the same degrees. */
    public static org.usp4j.sp.Mesh mesh(Mesh mesh) {
        Objects.requireNonNull(mesh, "mesh");
        return new org.usp4j.sp.Mesh(mesh.ulysses(), mesh.ring());
    }

    /** The internal layout of the same name. */
    public static org.usp4j.sp.SequenceLayout layout(SequenceLayout layout) {
        Objects.requireNonNull(layout, "layout");
        return switch (layout) {
            case CONTIGUOUS -> org.usp4j.sp.SequenceLayout.CONTIGUOUS;
            case ZIGZAG -> org.usp4j.sp.SequenceLayout.ZIGZAG;
        };
    }

    /** The internal options: the same causality, layout and scale (null for 1/sqrt(d)). */
    public static org.usp4j.sp.AttentionOptions options(AttentionOptions options) {
        Objects.requireNonNull(options, "options");
        Double scale = options.scale().isPresent() ? options.scale().getAsDouble() : null;
        return new org.usp4j.sp.AttentionOptions(options.causal(), layout(options.layout()), scale);
    }

    /** The internal boundaries of the same offsets (checked). */
    public static org.usp4j.kernel.SequenceBoundaries sequences(PackedSequences sequences) {
        Objects.requireNonNull(sequences, "sequences");
        return org.usp4j.kernel.SequenceBoundaries.of(sequences.cuSeqlens());
    }

    /** cu_seqlens of sequences of these lengths (each >= 1, adding up to an int). */
    public static int[] offsetsOfLengths(int... lengths) {
        try {
            return org.usp4j.kernel.SequenceBoundaries.ofLengths(java.util.Arrays.stream(lengths).asLongStream()
                    .toArray()).toIntArray();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("the lengths add up to more than " + Integer.MAX_VALUE, e);
        }
    }
}
