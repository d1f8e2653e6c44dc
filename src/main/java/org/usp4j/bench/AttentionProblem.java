package org.usp4j.bench;

import java.util.Locale;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.DType;

/**
 * The global tensors of one self-attention call: q [b, S, h, d], k and v [b, S, h_kv, d], in one dtype.
 */
public record AttentionProblem(long batch, long seq, long heads, long kvHeads, long headDim, DType dtype) {

    public AttentionProblem {
        if (batch < 1 || seq < 1 || heads < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("dimensions must be >= 1, got b=" + batch + " S=" + seq + " h=" + heads
                    + " h_kv=" + kvHeads + " d=" + headDim);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("query heads h = " + heads + " must be a multiple of the KV heads h_kv = "
                    + kvHeads);
        }
        if (dtype == null) {
            throw new IllegalArgumentException("dtype must be given");
        }
    }

    /** The global shapes of this self-attention. */
    public AttentionShapes shapes() {
        return new AttentionShapes(batch, seq, seq, heads, kvHeads, headDim);
    }

    /** The same problem at another sequence length. */
    public AttentionProblem withSeq(long newSeq) {
        return new AttentionProblem(batch, newSeq, heads, kvHeads, headDim, dtype);
    }

    /** FLOPs of one pass over unmasked pairs ({@link AttentionFlops}). */
    public double flops(Pass pass, boolean causal) {
        return AttentionFlops.of(pass, batch, heads, seq, headDim, causal);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "b=%d S=%d h=%d h_kv=%d d=%d %s", batch, seq, heads, kvHeads, headDim,
                dtype.name().toLowerCase(Locale.ROOT));
    }
}
