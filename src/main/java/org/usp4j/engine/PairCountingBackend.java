package org.usp4j.engine;

import java.util.Objects;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.LinearAttentionKernel;
import org.usp4j.kernel.PairCountingKernel;
import org.usp4j.tensor.Tensor;

/**
 * A rank's backend as its strategy sees it in the engine: the same device, with the kernel wrapped in a
 * {@link PairCountingKernel} so that the engine can report each rank's attention work per pass. Closing
 * it does nothing: the backend stays its ranks' to close.
 */
final class PairCountingBackend implements Backend {

    private final Backend backend;
    private final PairCountingKernel kernel;

    PairCountingBackend(Backend backend) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.kernel = new PairCountingKernel(backend.kernel());
    }

    /** The unmasked pairs this rank's kernel calls computed so far. */
    long pairs() {
        return kernel.pairs();
    }

    @Override
    public String name() {
        return backend.name();
    }

    @Override
    public AttentionKernel kernel() {
        return kernel;
    }

    /** Passed through uncounted: linear attention has no (query, key) pairs to count. */
    @Override
    public LinearAttentionKernel linearKernel() {
        return backend.linearKernel();
    }

    @Override
    public TensorAllocator newAllocator() {
        return backend.newAllocator();
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        backend.copy(src, dst);
    }

    @Override
    public void fill(Tensor dst, float value) {
        backend.fill(dst, value);
    }

    @Override
    public void add(Tensor dst, Tensor src) {
        backend.add(dst, src);
    }

    @Override
    public void mergeAttention(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse) {
        backend.mergeAttention(out, lse, blockOut, blockLse);
    }

    @Override
    public void synchronize() {
        backend.synchronize();
    }

    @Override
    public void close() {
    }
}
