package org.usp4j.backend;

import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Hands out scratch tensors for one piece of work and frees them all, once, on {@link #close}.
 * Tensors it returned must not be used after that. Safe to use from one thread at a time.
 */
public interface TensorAllocator extends AutoCloseable {

    /** A contiguous tensor; its contents are unspecified unless the implementation says otherwise. */
    Tensor allocate(DType dtype, long... shape);

    /** Frees every tensor allocated here. Idempotent. */
    @Override
    void close();
}
