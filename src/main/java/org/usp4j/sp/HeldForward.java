package org.usp4j.sp;

import org.usp4j.backend.Backend;
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
    final PackedRingBlocks blocks; // packed sequences' blocks; null for one sequence
    private final Object owner;

    HeldForward(Object owner, String what, TensorAllocator saved, AttentionShapes shapes, Tensor q, Tensor k, Tensor v,
                Tensor out, Tensor lse) {
        this(owner, what, saved, shapes, null, q, k, v, out, lse);
    }

    HeldForward(Object owner, String what, TensorAllocator saved, AttentionShapes shapes, PackedRingBlocks blocks,
                Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        super(what, saved, shapes, q, out, lse);
        this.owner = owner;
        this.blocks = blocks;
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

    /** The float32 accumulators as gradients in the inputs' dtypes, allocated in this forward's scope. */
    Gradients gradients(Backend backend, Tensor dq, Tensor dk, Tensor dv) {
        Tensor dqOut = saved().allocate(q().dtype(), q().shape());
        Tensor dkOut = saved().allocate(k.dtype(), k.shape());
        Tensor dvOut = saved().allocate(v.dtype(), v.shape());
        backend.copy(dq, dqOut);
        backend.copy(dk, dkOut);
        backend.copy(dv, dvOut);
        return new Gradients(dqOut, dkOut, dvOut);
    }
}
