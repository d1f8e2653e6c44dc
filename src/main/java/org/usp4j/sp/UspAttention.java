package org.usp4j.sp;

import java.util.Arrays;
import java.util.Objects;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Unified sequence parallelism on one rank: the Ulysses all-to-all over the rank's Ulysses group turns
 * its sequence piece with all heads into its ring block with h/U heads, an inner strategy (the ring over
 * the rank's ring group) attends, and the reverse all-to-all brings the output back. The backward runs
 * the same exchanges the other way round. U = 1 is plain Ring attention, R = 1 plain Ulysses, and 1 x 1
 * one kernel call.
 *
 * <p>{@link Forward#lse()} is the inner strategy's: [b, h/U, S/R], Ulysses rank u's heads
 * [u h/U, (u+1) h/U) over its ring block (the {@link SequenceLayout} of the ring ranks), which is also the
 * layout the backward needs; it is not exchanged back.
 */
public final class UspAttention implements SequenceParallelAttention {

    private final UlyssesAllToAll ulysses;
    private final SequenceParallelAttention inner;
    private final Backend backend;
    private final AttentionOptions options;

    /** USP with Ulysses over {@code groups.ulysses()} and {@code inner} over {@code groups.ring()}. */
    public UspAttention(MeshGroups groups, Backend backend, AttentionOptions options, RingAlgorithm inner) {
        this(new UlyssesAllToAll(groups.ulysses(), backend), inner.create(groups.ring(), backend, options),
                backend, options);
    }

    /** Ulysses around any strategy that attends over the gathered sequence with this rank's heads. */
    public UspAttention(UlyssesAllToAll ulysses, SequenceParallelAttention inner, Backend backend,
                        AttentionOptions options) {
        this.ulysses = Objects.requireNonNull(ulysses, "ulysses");
        this.inner = Objects.requireNonNull(inner, "inner");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.options = Objects.requireNonNull(options, "options");
    }

    @Override
    public void validate(AttentionShapes local, DType dtype) {
        inner.validate(innerShapes(local), dtype);
    }

    @Override
    public void validateBackward(AttentionShapes local, DType dtype) {
        inner.validateBackward(innerShapes(local), dtype);
    }

    /** The Ulysses exchange moves heads, not positions: the inner strategy keeps to the sequences. */
    @Override
    public void validate(AttentionShapes local, DType dtype, SequenceBoundaries sequences) {
        inner.validate(innerShapes(local), dtype, sequences);
    }

    @Override
    public void validateBackward(AttentionShapes local, DType dtype, SequenceBoundaries sequences) {
        inner.validateBackward(innerShapes(local), dtype, sequences);
    }

    /** The shapes the inner strategy sees after the all-to-all, once USP's own rules hold. */
    private AttentionShapes innerShapes(AttentionShapes local) {
        int u = ulysses.degree();
        if (local.seqQ() != local.seqKv()) {
            throw new IllegalArgumentException("USP is self-attention: q has " + local.seqQ()
                    + " local rows but k and v have " + local.seqKv());
        }
        if (options.layout() == SequenceLayout.ZIGZAG && local.seqQ() % 2 != 0) {
            throw new IllegalArgumentException("zigzag layout needs S % (2P) == 0, i.e. an even local length, got "
                    + local.seqQ() + " rows per rank");
        }
        UlyssesAllToAll.validateHeads(local.heads(), local.kvHeads(), u);
        long gathered = Math.multiplyExact(local.seqQ(), (long) u);
        return new AttentionShapes(local.batch(), gathered, gathered, local.heads() / u,
                UlyssesAllToAll.exchangedKvHeads(local.kvHeads(), u) / u, local.headDim());
    }

    @Override
    public Forward forward(Tensor q, Tensor k, Tensor v) {
        return forward(q, k, v, null);
    }

    @Override
    public Forward forward(Tensor q, Tensor k, Tensor v, SequenceBoundaries sequences) {
        AttentionShapes sh = AttentionShapes.of(q, k, v);
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("q, k and v must have one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        validate(sh, q.dtype(), sequences);
        TensorAllocator saved = backend.newAllocator();
        Forward attended = null;
        try (TensorAllocator scratch = backend.newAllocator()) {
            Tensor qh = ulysses.scatterHeads(q, saved, scratch);
            Tensor kh = ulysses.scatterKvHeads(k, saved, scratch);
            Tensor vh = ulysses.scatterKvHeads(v, saved, scratch);
            attended = inner.forward(qh, kh, vh, sequences);
            Tensor out = ulysses.gatherHeads(attended.out(), saved, scratch);
            return new UspForward(saved, attended, sh, sequences, out);
        } catch (RuntimeException | Error e) {
            if (attended != null) {
                attended.close();
            }
            saved.close();
            throw e;
        }
    }

    @Override
    public Gradients backward(Forward saved, Tensor dout) {
        if (!(saved instanceof UspForward f) || f.owner() != this) {
            throw new IllegalArgumentException("backward needs a Forward returned by this UspAttention, got " + saved);
        }
        f.requireOpen();
        f.shapes.requireQueryShaped("dout", dout);
        validateBackward(f.shapes, f.out.dtype(), f.sequences); // out has the inputs' dtype
        try (TensorAllocator scratch = backend.newAllocator()) {
            Tensor doutH = ulysses.scatterHeads(dout, scratch, scratch);
            Gradients g = inner.backward(f.inner, doutH);
            Tensor dq = ulysses.gatherHeads(g.dq(), f.saved, scratch);
            Tensor dk = ulysses.gatherKvHeads(g.dk(), f.shapes.kvHeads(), f.saved, scratch);
            Tensor dv = ulysses.gatherKvHeads(g.dv(), f.shapes.kvHeads(), f.saved, scratch);
            return new Gradients(dq, dk, dv);
        }
    }

    /** The inner forward plus what lives in this rank's layout: the exchanged inputs and the output. */
    private final class UspForward implements Forward {
        private final TensorAllocator saved;
        private final Forward inner;
        private final AttentionShapes shapes;
        private final SequenceBoundaries sequences;
        private final Tensor out;
        private boolean closed;

        UspForward(TensorAllocator saved, Forward inner, AttentionShapes shapes, SequenceBoundaries sequences,
                   Tensor out) {
            this.saved = saved;
            this.inner = inner;
            this.shapes = shapes;
            this.sequences = sequences;
            this.out = out;
        }

        UspAttention owner() {
            return UspAttention.this;
        }

        @Override
        public Tensor out() {
            requireOpen();
            return out;
        }

        @Override
        public Tensor lse() {
            requireOpen();
            return inner.lse();
        }

        void requireOpen() {
            if (closed) {
                throw new IllegalStateException("this USP forward was closed");
            }
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                inner.close(); // before saved: the inner state references the exchanged inputs
                saved.close();
            }
        }

        @Override
        public String toString() {
            return "UspForward[q " + Arrays.toString(new long[] {shapes.batch(), shapes.seqQ(), shapes.heads(),
                    shapes.headDim()}) + (closed ? ", closed]" : "]");
        }
    }
}
