package org.usp4j.sp;

import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.Tensor;

/**
 * The saved state of a ring-group strategy whose backward recomputes from the local q, k, v (referenced,
 * not copied), the final out (input dtype) and lse: one owner's scope, freed once on {@link #close}.
 * {@link #requireOwnedBy} lets a strategy refuse another instance's forward.
 */
final class HeldForward implements Forward {

    final AttentionShapes shapes;
    final Tensor q;
    final Tensor k;
    final Tensor v;
    final TensorAllocator saved;
    private final Object owner;
    private final Tensor out;
    private final Tensor lse;
    private boolean closed;

    HeldForward(Object owner, TensorAllocator saved, AttentionShapes shapes, Tensor q, Tensor k, Tensor v, Tensor out,
                Tensor lse) {
        this.owner = owner;
        this.saved = saved;
        this.shapes = shapes;
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.lse = lse;
    }

    /** {@code saved} as this owner's open forward, or an IllegalArgumentException naming {@code who}. */
    static HeldForward requireOwnedBy(Object owner, String who, Forward saved) {
        if (!(saved instanceof HeldForward f) || f.owner != owner) {
            throw new IllegalArgumentException("backward needs a Forward returned by this " + who + ", got " + saved);
        }
        f.requireOpen();
        return f;
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

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("this forward was closed");
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
