package org.usp4j.api.internal;

import java.util.Objects;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.LinearAttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.PackedSequences;
import org.usp4j.api.RingAlgorithm;
import org.usp4j.api.SequenceLayout;
import org.usp4j.kernel.LinearMask;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.UspPlan;
import org.usp4j.sp.linear.Lasp2Attention;

/** The public parameter types as the internal ones the strategies take (the API stays apart from them). */
public final class Conversions {

    private Conversions() {
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

    /** The registered algorithm that {@code --ring-algo} names by the constant's name. */
    public static org.usp4j.sp.RingAlgorithm ringAlgorithm(RingAlgorithm algorithm) {
        Objects.requireNonNull(algorithm, "ringAlgorithm");
        return RingAlgorithms.named(algorithm.name());
    }

    /** What a softmax layer runs: USP on the mesh with the options' ring algorithm. */
    public static UspPlan plan(Mesh mesh, AttentionOptions options) {
        return new UspPlan(Objects.requireNonNull(mesh, "mesh"), options(options), ringAlgorithm(options.ringAlgorithm()));
    }

    /** The internal linear options: the same mask (causality and decay) and scale. */
    public static org.usp4j.sp.linear.LinearAttentionOptions linearOptions(LinearAttentionOptions options) {
        Objects.requireNonNull(options, "options");
        LinearMask mask = options.causal() ? LinearMask.causal(options.decay()) : LinearMask.NONE;
        return new org.usp4j.sp.linear.LinearAttentionOptions(mask, (float) options.scale());
    }

    /** What a linear layer runs: USP on the mesh with LASP-2 across the rings. */
    public static UspPlan plan(Mesh mesh, LinearAttentionOptions options) {
        return Lasp2Attention.plan(Objects.requireNonNull(mesh, "mesh"), linearOptions(options));
    }

    /** The internal boundaries of the same offsets (checked). */
    public static org.usp4j.kernel.SequenceBoundaries sequences(PackedSequences sequences) {
        Objects.requireNonNull(sequences, "sequences");
        return org.usp4j.kernel.SequenceBoundaries.of(sequences.cuSeqlens());
    }
}
