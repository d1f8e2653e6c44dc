package org.usp4j.api;

import java.util.Locale;
import java.util.Objects;
import java.util.OptionalDouble;

/**
 * What one attention layer computes and how its input is dealt: causal or not (top-left, over the
 * global positions of the {@link SequenceLayout}), the layout, the softmax scale (by default
 * 1/sqrt(head_dim)), and the {@link RingAlgorithm} across the rings (by default {@link RingAlgorithm#RING}).
 * Start from {@link #defaults()} and change what differs with the {@code with...} methods:
 * {@snippet :
 * AttentionOptions options = AttentionOptions.defaults().withCausal(true).withLayout(SequenceLayout.ZIGZAG);
 * }
 *
 * <p>Immutable and thread-safe; every {@code with...} method returns a new instance. New options may be
 * added in later versions, always with a default that keeps today's behaviour.
 */
public final class AttentionOptions {

    private static final AttentionOptions DEFAULTS =
            new AttentionOptions(false, SequenceLayout.CONTIGUOUS, Double.NaN, RingAlgorithm.RING);

    private final boolean causal;
    private final SequenceLayout layout;
    private final double scale; // NaN: 1/sqrt(head_dim)
    private final RingAlgorithm ringAlgorithm;

    private AttentionOptions(boolean causal, SequenceLayout layout, double scale, RingAlgorithm ringAlgorithm) {
        this.causal = causal;
        this.layout = layout;
        this.scale = scale;
        this.ringAlgorithm = ringAlgorithm;
    }

    /**
     * Non-causal, {@link SequenceLayout#CONTIGUOUS}, scale 1/sqrt(head_dim), {@link RingAlgorithm#RING}.
     *
     * @return the default options
     */
    public static AttentionOptions defaults() {
        return DEFAULTS;
    }

    /**
     * Whether query position i sees only key positions j &lt;= i (global positions).
     *
     * @return true for causal attention
     */
    public boolean causal() {
        return causal;
    }

    /**
     * How the global sequence is dealt to the ranks.
     *
     * @return the layout
     */
    public SequenceLayout layout() {
        return layout;
    }

    /**
     * The softmax scale, when one was set.
     *
     * @return the scale, or empty for 1/sqrt(head_dim)
     */
    public OptionalDouble scale() {
        return Double.isNaN(scale) ? OptionalDouble.empty() : OptionalDouble.of(scale);
    }

    /**
     * How the layer attends across the ranks of each ring.
     *
     * @return the ring algorithm
     */
    public RingAlgorithm ringAlgorithm() {
        return ringAlgorithm;
    }

    /**
     * The scale applied for a given head dimension.
     *
     * @param headDim the head dimension d, at least 1
     * @return the set scale, or 1/sqrt(d)
     * @throws IllegalArgumentException when {@code headDim} is below 1
     */
    public double scaleFor(long headDim) {
        if (headDim < 1) {
            throw new IllegalArgumentException("head dimension must be at least 1, got " + headDim);
        }
        return Double.isNaN(scale) ? 1.0 / Math.sqrt(headDim) : scale;
    }

    /**
     * These options, causal or not.
     *
     * @param newCausal true for causal attention
     * @return options that differ from these only in causality
     */
    public AttentionOptions withCausal(boolean newCausal) {
        return new AttentionOptions(newCausal, layout, scale, ringAlgorithm);
    }

    /**
     * These options with another sequence layout.
     *
     * @param newLayout the layout
     * @return options that differ from these only in the layout
     * @throws NullPointerException when {@code newLayout} is null
     */
    public AttentionOptions withLayout(SequenceLayout newLayout) {
        return new AttentionOptions(causal, Objects.requireNonNull(newLayout, "layout"), scale, ringAlgorithm);
    }

    /**
     * These options with a fixed softmax scale.
     *
     * @param newScale a finite, positive scale that is also a positive float32 (the kernels compute in float32)
     * @return options that differ from these only in the scale
     * @throws IllegalArgumentException when the scale is not finite, not positive, or rounds to 0 or infinity
     *                                  in float32
     */
    public AttentionOptions withScale(double newScale) {
        float f = (float) newScale;
        if (!Double.isFinite(newScale) || newScale <= 0 || !Float.isFinite(f) || f == 0f) {
            throw new IllegalArgumentException("scale must be a finite positive float, got " + newScale);
        }
        return new AttentionOptions(causal, layout, newScale, ringAlgorithm);
    }

    /**
     * These options with the default scale 1/sqrt(head_dim).
     *
     * @return options that differ from these only in the scale
     */
    public AttentionOptions withDefaultScale() {
        return new AttentionOptions(causal, layout, Double.NaN, ringAlgorithm);
    }

    /**
     * These options with another ring algorithm. The result is the same attention; what travels between
     * the ranks, and how much memory it takes, differs.
     *
     * @param newRingAlgorithm the algorithm across the ranks of each ring
     * @return options that differ from these only in the ring algorithm
     * @throws NullPointerException when {@code newRingAlgorithm} is null
     */
    public AttentionOptions withRingAlgorithm(RingAlgorithm newRingAlgorithm) {
        return new AttentionOptions(causal, layout, scale, Objects.requireNonNull(newRingAlgorithm, "ringAlgorithm"));
    }

    /**
     * Equal when causality, layout, scale and ring algorithm are equal.
     *
     * @param other another object
     * @return whether {@code other} is equal options
     */
    @Override
    public boolean equals(Object other) {
        return other instanceof AttentionOptions o && causal == o.causal && layout == o.layout
                && Double.compare(scale, o.scale) == 0 && ringAlgorithm == o.ringAlgorithm;
    }

    /**
     * A hash of causality, layout, scale and ring algorithm.
     *
     * @return the hash code
     */
    @Override
    public int hashCode() {
        return Objects.hash(causal, layout, scale, ringAlgorithm);
    }

    /**
     * A short form such as {@code causal, zigzag, scale 1/sqrt(d)}, which names the ring algorithm when it
     * is not the default ({@code ..., ring algorithm allgather}).
     *
     * @return the options as text
     */
    @Override
    public String toString() {
        return (causal ? "causal" : "non-causal") + ", " + layout.name().toLowerCase(Locale.ROOT) + ", scale "
                + (Double.isNaN(scale) ? "1/sqrt(d)" : Double.toString(scale))
                + (ringAlgorithm == RingAlgorithm.RING ? "" : ", ring algorithm " + ringAlgorithm.name().toLowerCase(Locale.ROOT));
    }
}
