package org.usp4j.sp.linear;

import java.util.Objects;
import org.usp4j.kernel.LinearMask;

/**
 * What linear attention computes: the {@link LinearMask} (causal with decay G, or non-causal) and the
 * scale of q . k, which defaults to 1 (linear attention has no softmax temperature to correct).
 */
public record LinearAttentionOptions(LinearMask mask, float scale) {

    public LinearAttentionOptions {
        Objects.requireNonNull(mask, "mask");
        if (!Float.isFinite(scale) || scale <= 0) {
            throw new IllegalArgumentException("scale must be a finite positive float, got " + scale);
        }
    }

    /**
     * Options from the command line's values: {@code decay} (null: 1) needs {@code causal}; {@code scale}
     * null means 1.
     */
    public static LinearAttentionOptions of(boolean causal, Double decay, Double scale) {
        if (decay != null && !causal) {
            throw new IllegalArgumentException("--decay needs --causal (non-causal linear attention has no order"
                    + " to decay along)");
        }
        if (scale != null && !(Double.isFinite(scale) && scale > 0 && Float.isFinite(scale.floatValue())
                && scale.floatValue() > 0)) {
            throw new IllegalArgumentException("scale must be a finite positive float, got " + scale);
        }
        LinearMask mask = causal ? LinearMask.causal(decay == null ? 1 : decay) : LinearMask.NONE;
        return new LinearAttentionOptions(mask, scale == null ? 1f : scale.floatValue());
    }

    @Override
    public String toString() {
        return "linear, " + mask + ", scale " + scale;
    }
}
