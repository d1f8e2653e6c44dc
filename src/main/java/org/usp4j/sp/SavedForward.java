package org.usp4j.sp;

import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.Tensor;

/**
 * The part of a block strategy's {@link Forward} every such strategy shares: the allocator its saved
 * tensors and later gradients live in, the local shapes, q, the output and the lse. Subclasses add what
 * their own backward reads (the K/V block, the gathered K/V, ...) and tie themselves to the strategy
 * that made them.
 */
abstract class SavedForward implements Forward {

    final TensorAllocator saved;
    final AttentionShapes shapes;
    final Tensor q;
    private final Tensor out;
    private final Tensor lse;
    private final String what;
    private boolean closed;

    SavedForward(String what, TensorAllocator saved, AttentionShapes shapes, Tensor q, Tensor out, Tensor lse) {
        this.what = what;
        this.saved = saved;
        this.shapes = shapes;
        this.q = q;
        this.out = out;
        this.lse = lse;
    }

    @Override
    public Tensor out() {
        requireOpen();
        return out;
    }

    /** [b, h, s_block]: every local head over this ring block, in block order. */
    @Override
    public Tensor lse() {
        requireOpen();
        return lse;
    }

    void requireOpen() {
        if (closed) {
            throw new IllegalStateException("this " + what + " forward was closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            saved.close();
        }
    }
}
