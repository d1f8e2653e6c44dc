package org.usp4j.backend;

import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.LinearAttentionKernel;
import org.usp4j.tensor.Tensor;

/**
 * What a sequence-parallel strategy needs from one rank's device: an attention kernel, scratch
 * memory and a few element-wise operations. The CPU backend runs them on host memory; the CUDA
 * backend enqueues them on the rank's stream. A strategy written against this interface runs
 * unchanged on both.
 *
 * <p>Element-wise operations take tensors of equal shape with any strides (no broadcasting) and do
 * their arithmetic in float32, converting to and from each tensor's dtype.
 */
public interface Backend extends AutoCloseable {

    /** "cpu" or "cuda". */
    String name();

    AttentionKernel kernel();

    /**
     * The linear attention kernel (LASP-2). Backends without one throw an
     * {@link UnsupportedOperationException} that says so, before any work.
     */
    default LinearAttentionKernel linearKernel() {
        throw new UnsupportedOperationException("the " + name() + " backend has no linear attention kernel"
                + " (linear attention runs on the cpu backend)");
    }

    /** A new scope for scratch tensors on this backend's device. */
    TensorAllocator newAllocator();

    /** dst = src, converting the dtype. */
    void copy(Tensor src, Tensor dst);

    /** dst = value everywhere. */
    void fill(Tensor dst, float value);

    /** dst += src. */
    void add(Tensor dst, Tensor src);

    /**
     * Folds one block's partial attention into running float32 accumulators for the same query
     * rows: l = max(l1, l2) + log1p(exp(-|l1 - l2|)); out = exp(l1 - l) out + exp(l2 - l) blockOut.
     * out and blockOut are [b, s, h, d]; lse and blockLse are [b, h, s]. A row whose lse is -inf has
     * seen no key yet and takes the block's values as they are; no NaN is produced.
     */
    void mergeAttention(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse);

    /** Waits until all work enqueued by this backend has finished (no-op on the CPU). */
    void synchronize();

    /** Frees what the backend created (streams, handles, plan caches). Idempotent. */
    @Override
    void close();
}
