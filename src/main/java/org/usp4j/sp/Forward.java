package org.usp4j.sp;

import org.usp4j.tensor.Tensor;

/**
 * One rank's finished forward and what its backward needs. It owns the scratch memory it saved (and
 * the gradients a later backward returns); {@link #close} frees all of it, once. The q, k, v the
 * forward was given are referenced, not copied: keep them valid and unchanged until closing.
 */
public interface Forward extends AutoCloseable {

    /** This rank's output rows, in the layout and dtype of its q: [b, s_local, h, d]. */
    Tensor out();

    /**
     * The float32 log-sum-exp of the query rows and heads this rank attended: [b, heads, rows]. Which
     * heads and rows those are depends on the strategy (USP: Ulysses rank u's h/U heads over its ring
     * block of S/R rows, see {@link UspAttention}). Null for attention without one (linear attention).
     */
    Tensor lse();

    /** Frees the saved state and any gradients computed from it. Idempotent. */
    @Override
    void close();
}
