package org.usp4j.kernel;

/**
 * The weights of linear attention, out_i = scale * sum_j w(i, j) (q_i . k_j) v_j: causal with decay G,
 * w(i, j) = G^(i-j) for j <= i and 0 after (0 < G <= 1; G = 1 is plain causal linear attention), or
 * non-causal, w = 1 for every pair.
 */
public record LinearMask(boolean causal, double decay) {

    /** Every query sees every key with weight 1. */
    public static final LinearMask NONE = new LinearMask(false, 1);

    public LinearMask {
        if (!(decay > 0 && decay <= 1)) {
            throw new IllegalArgumentException("decay must be in (0, 1], got " + decay);
        }
        if (!causal && decay != 1) {
            throw new IllegalArgumentException("decay " + decay + " needs a causal mask");
        }
    }

    /** Causal, with each step back in the sequence weighted by {@code decay}. */
    public static LinearMask causal(double decay) {
        return new LinearMask(true, decay);
    }

    /** w(i, j) for query position i and key position j of one block. */
    public double weight(long queryRow, long keyColumn) {
        if (!causal) {
            return 1;
        }
        return keyColumn <= queryRow ? Math.pow(decay, queryRow - keyColumn) : 0;
    }

    /** G^n (1 when not causal): the decay over n positions. */
    public double decayOver(long positions) {
        return causal ? Math.pow(decay, positions) : 1;
    }

    @Override
    public String toString() {
        return causal ? (decay == 1 ? "causal" : "causal, decay " + decay) : "non-causal";
    }
}
