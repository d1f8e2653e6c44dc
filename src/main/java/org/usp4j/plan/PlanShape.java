package org.usp4j.plan;

import java.util.Locale;
import java.util.Objects;
import org.usp4j.tensor.DType;

/**
 * The attention layer a plan is for: query heads, KV heads (GQA/MQA when fewer), head size, element type
 * and mask. Causal attention is dealt in the zigzag layout (balanced), full attention in the contiguous one.
 */
public record PlanShape(long heads, long kvHeads, long headDim, DType dtype, boolean causal) {

    public PlanShape {
        Objects.requireNonNull(dtype, "dtype");
        if (heads < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("heads, KV heads and head_dim must be >= 1, got h=" + heads + " h_kv="
                    + kvHeads + " d=" + headDim);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("query heads h = " + heads + " must be a multiple of the KV heads h_kv = "
                    + kvHeads);
        }
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "h=%d h_kv=%d d=%d %s, %s", heads, kvHeads, headDim,
                dtype.name().toLowerCase(Locale.ROOT), causal ? "causal (zigzag)" : "non-causal (contiguous)");
    }
}
