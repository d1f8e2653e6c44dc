package org.usp4j.sp;

import java.util.Locale;
import org.usp4j.kernel.Mask;

/**
 * What attention computes and how the sequence is dealt: causal (top-left, over global positions) or
 * not, the {@link SequenceLayout}, and the softmax scale ({@code null}: 1/sqrt(head_dim)).
 */
public record AttentionOptions(boolean causal, SequenceLayout layout, Double scale) {

    public AttentionOptions {
        if (layout == null) {
            throw new IllegalArgumentException("layout must be given (contiguous, zigzag or striped)");
        }
        if (scale != null && (!Double.isFinite(scale) || scale <= 0 || !Float.isFinite(scale.floatValue())
                || scale.floatValue() == 0f)) {
            throw new IllegalArgumentException("scale must be a finite positive float, got " + scale);
        }
    }

    /** Non-causal, contiguous, scale 1/sqrt(d). */
    public static AttentionOptions defaults() {
        return new AttentionOptions(false, SequenceLayout.CONTIGUOUS, null);
    }

    /** The scale for this head dimension. */
    public float scale(long headDim) {
        return scale != null ? scale.floatValue() : (float) (1.0 / Math.sqrt(headDim));
    }

    /** The mask of a block whose queries and keys cover the same positions in the same order. */
    public Mask diagonalMask() {
        return causal ? Mask.CAUSAL : Mask.NONE;
    }

    @Override
    public String toString() {
        return (causal ? "causal" : "non-causal") + ", " + layout.name().toLowerCase(Locale.ROOT)
                + ", scale " + (scale == null ? "1/sqrt(d)" : scale);
    }
}
