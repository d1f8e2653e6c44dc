package org.usp4j.kernel;

import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One device's attention over one block of queries and one block of keys: the building block every
 * sequence-parallel strategy calls. Implementations: the CPU kernel, cuDNN SDPA, and the float64
 * {@link ReferenceAttention}.
 *
 * <p>Layouts: q, out, dout, dq are [b, s_q, h, d]; k, v, dk, dv are [b, s_kv, h_kv, d]; lse is
 * float32 [b, h, s_q], the natural-log sum of exp over the scaled, masked scores. Views with any
 * strides are accepted as long as head_dim is contiguous. On a GPU the work is enqueued on the
 * backend's stream and the call returns without waiting.
 */
public interface AttentionKernel {

    /**
     * Throws an {@link IllegalArgumentException} (or {@link UnsupportedOperationException} for a limit of
     * the loaded library) naming the value if {@link #forward} would refuse a block of these shapes, with
     * q, k and v in {@code dtype}. Does no work: strategies call it for every block they will run before
     * any rank posts a transfer, so a refusal is the same clean exception on every rank.
     */
    default void validateForward(AttentionShapes block, DType dtype, Mask mask) {
    }

    /** As {@link #validateForward}, for {@link #backward}. */
    default void validateBackward(AttentionShapes block, DType dtype, Mask mask) {
        validateForward(block, dtype, mask);
    }

    /**
     * out = softmax(scale * q k^T + mask) v, and lse. Rows that see no key get lse = -inf and out = 0.
     * {@code out} may be float32 (for exact merging) or the input dtype.
     */
    void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse);

    /**
     * Gradients from the final out and lse: D = rowsum(dout * out); P = exp(scale q k^T - lse);
     * dv = P^T dout; dS = P * (dout v^T - D); dq = scale dS k; dk = scale dS^T q. With
     * {@code accumulate} the results are added to dq, dk, dv instead of overwriting them.
     */
    void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask, float scale,
                  Tensor dq, Tensor dk, Tensor dv, boolean accumulate);
}
