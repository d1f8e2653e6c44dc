package org.usp4j.api;

import java.util.Objects;

/**
 * What one linear attention layer ({@link LinearAttentionLayer}) computes, per query head (KV head
 * {@code i / (h / h_kv)} as for softmax attention): out_i = scale * sum_j w(i, j) (q_i . k_j) v_j, with
 * w(i, j) = G^(i-j) for j &lt;= i and 0 after when causal (decay 0 &lt; G &lt;= 1; G = 1 is plain causal
 * linear attention), and w = 1 for every pair when not. No softmax, no normalisation, no feature map
 * (apply your own to q and k first); the scale defaults to 1.
 * {@snippet :
 * LinearAttentionOptions options = LinearAttentionOptions.causal(0.99).withScale(0.125);
 * }
 *
 * <p>Linear attention layers deal the sequence by {@link SequenceLayout#CONTIGUOUS} (every block costs
 * the same, causal or not, so there is nothing to balance). Immutable and thread-safe; every
 * {@code with...} method returns a new instance. New options may be added in later versions, always
 * with a default that keeps today's behaviour.
 */
public final class LinearAttentionOptions {

    private static final LinearAttentionOptions NON_CAUSAL = new LinearAttentionOptions(false, 1, 1);

    private final boolean causal;
    private final double decay;
    private final double scale;

    private LinearAttentionOptions(boolean causal, double decay, double scale) {
        this.causal = causal;
        this.decay = decay;
        this.scale = scale;
    }

    /**
     * Non-causal linear attention (every query sees every key with weight 1), scale 1.
     *
     * @return the options
     */
    public static LinearAttentionOptions nonCausal() {
        return NON_CAUSAL;
    }

    /**
     * Causal linear attention whose weights decay by {@code decay} per position back, scale 1.
     *
     * @param decay G, in (0, 1]; 1 for no decay
     * @return the options
     * @throws IllegalArgumentException when {@code decay} is not in (0, 1]
     */
    public static LinearAttentionOptions causal(double decay) {
        if (!(decay > 0 && decay <= 1)) {
            throw new IllegalArgumentException("decay must be in (0, 1], got " + decay);
        }
        return new LinearAttentionOptions(true, decay, 1);
    }

    /**
     * Whether query position i sees only key positions j &lt;= i (global positions).
     *
     * @return true for causal linear attention
     */
    public boolean causal() {
        return causal;
    }

    /**
     * The decay G per position.
     *
     * @return G in (0, 1]; 1 when not causal
     */
    public double decay() {
        return decay;
    }

    /**
     * The factor applied to q . k.
     *
     * @return the scale, 1 unless set
     */
    public double scale() {
        return scale;
    }

    /**
     * These options with another scale.
     *
     * @param newScale a finite, positive scale that is also a positive float32 (the kernels compute in float32)
     * @return options that differ from these only in the scale
     * @throws IllegalArgumentException when the scale is not finite, not positive, or rounds to 0 or infinity
     *                                  in float32
     */
    public LinearAttentionOptions withScale(double newScale) {
        float f = (float) newScale;
        if (!Double.isFinite(newScale) || newScale <= 0 || !Float.isFinite(f) || f == 0f) {
            throw new IllegalArgumentException("scale must be a finite positive float, got " + newScale);
        }
        return new LinearAttentionOptions(causal, decay, newScale);
    }

    /**
     * Equal when causality, decay and scale are equal.
     *
     * @param other another object
     * @return whether {@code other} is equal options
     */
    @Override
    public boolean equals(Object other) {
        return other instanceof LinearAttentionOptions o && causal == o.causal && Double.compare(decay, o.decay) == 0
                && Double.compare(scale, o.scale) == 0;
    }

    /**
     * A hash of causality, decay and scale.
     *
     * @return the hash code
     */
    @Override
    public int hashCode() {
        return Objects.hash(causal, decay, scale);
    }

    /**
     * A short form such as {@code linear, causal, decay 0.99, scale 1.0}.
     *
     * @return the options as text
     */
    @Override
    public String toString() {
        return "linear, " + (causal ? (decay == 1 ? "causal" : "causal, decay " + decay) : "non-causal")
                + ", scale " + scale;
    }
}
