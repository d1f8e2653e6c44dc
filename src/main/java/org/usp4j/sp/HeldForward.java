package org.usp4j.sp;

import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.Tensor;

/**
 * The saved forward of a ring-group strategy that keeps its K/V in place (TokenRing, LightSeq): the
 * {@link SavedForward} state plus the local k and v (referenced, not copied), tied to the instance that
 * made it so that {@link #requireOwnedBy} can refuse another instance's forward.
 */
final class HeldForward extends SavedForward {

    final Tensor k;
    final Tensor v;
    private final Object owner;

    HeldForward(Object owner, String what, TensorAllocator saved, AttentionShapes shapes, Tensor q, Tensor k, Tensor v,
                Tensor out, Tensor lse) {
        super(what, saved, shapes, q, out, lse);
        this.owner = owner;
        this.k = k;
        this.v = v;
    }

    /** {@code saved} as this owner's open forward, or an IllegalArgumentException naming {@code who}. */
    static HeldForward requireOwnedBy(Object owner, String who, Forward saved) {
        if (!(saved instanceof HeldForward f) || f.owner != owner) {
            throw new IllegalArgumentException("backward needs a Forward returned by this " + who + ", got " + saved);
        }
        f.requireOpen();
        return f;
    }
}
