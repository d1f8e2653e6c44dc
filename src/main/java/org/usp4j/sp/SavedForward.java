package org.usp4j.sp;

import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.Tensor;

/**
 * The part of a block strategy's {@link Forward} every such strategy shares: the allocator its saved
 * tensors and later gradients live in, the local shapes, q, the output and the lse (if it has one). Subclasses add what
 * their own backward reads (the K/V block, the gathered K/V, ...) and tie themselves to the strategy
 * that made them.
 */
public abstract class SavedForward implements Forward {

    private final TensorAllocator saved;
    private final AttentionShapes shapes;
    private final Tensor q;
    private final Tensor out;
    private final Tensor lse;
    private final String what;
    private boolean closed;

    /** {@code what} names the strategy in the use-after-close error; {@code lse} may be null (linear attention). */
    protected SavedForward(String what, TensorAllocator saved, AttentionShapes shapes, Tensor q, Tensor out,
                           Tensor lse) {
        this.what = what;
        this.saved = saved;
        this.shapes = shapes;
        this.q = q;
        this.out = out;
        this.lse = lse;
    }

    /** Where the saved tensors live, and the gradients a later backward allocates. */
    public TensorAllocator saved() {
        return saved;
    }

    public AttentionShapes shapes() {
        return shapes;
    }

    /** The local q the forward was given (referenced, not copied). */
    public Tensor q() {
        return q;
    }

    @Override
    public Tensor out() {
        requireOpen();
        return out;
    }

    /** [b, h, s_block]: every local head over this ring block, in block order; null without one. */
    @Override
    public Tensor lse() {
        requireOpen();
        return lse;
    }

    public void requireOpen() {
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
