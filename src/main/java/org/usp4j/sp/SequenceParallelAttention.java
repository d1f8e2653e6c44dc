package org.usp4j.sp;

import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One rank's part of a distributed attention strategy (Ring, USP, all-gather context parallelism; later
 * TokenRing, ...). All ranks of the strategy's groups call {@link #forward} and
 * {@link #backward} together, each with its local tensors as the {@link SequenceLayout} dealt them:
 * q [b, s_local, h, d], k and v [b, s_local, h_kv, d] (self-attention: the same positions).
 * Implementations get their communicators, backend and options explicitly; nothing is global.
 *
 * <p>Packed variable-length sequences: the {@link SequenceBoundaries} overloads take the global
 * {@code cu_seqlens} (the same value on every rank; the layout says where each rank's rows lie).
 * Strategies that cannot keep attention inside each sequence keep these defaults, which refuse more
 * than one sequence with one line; one sequence is plain attention.
 */
public interface SequenceParallelAttention {

    /**
     * Throws an {@link IllegalArgumentException} naming the values if {@link #forward} would refuse local
     * inputs of these shapes and dtype. Does no work and no communication, so a caller can check every
     * rank's inputs before any rank starts.
     */
    void validate(AttentionShapes local, DType dtype);

    /**
     * As {@link #validate}, for {@link #backward} (whose kernels may refuse what the forward's accept).
     * Strategies call it first in their backward, before any communication.
     */
    default void validateBackward(AttentionShapes local, DType dtype) {
        validate(local, dtype);
    }

    /** Runs the forward; the result keeps what the backward needs until it is closed. */
    Forward forward(Tensor q, Tensor k, Tensor v);

    /** As {@link #validate(AttentionShapes, DType)}, for packed sequences with these global boundaries. */
    default void validate(AttentionShapes local, DType dtype, SequenceBoundaries sequences) {
        refusePacked(sequences);
        validate(local, dtype);
    }

    /** As {@link #validateBackward(AttentionShapes, DType)}, for packed sequences. */
    default void validateBackward(AttentionShapes local, DType dtype, SequenceBoundaries sequences) {
        refusePacked(sequences);
        validateBackward(local, dtype);
    }

    /**
     * The forward over packed sequences with these global boundaries (null: one sequence); the
     * backward of the returned {@link Forward} keeps to the same sequences.
     */
    default Forward forward(Tensor q, Tensor k, Tensor v, SequenceBoundaries sequences) {
        refusePacked(sequences);
        return forward(q, k, v);
    }

    private void refusePacked(SequenceBoundaries sequences) {
        if (sequences != null && !sequences.isSingle()) {
            throw new IllegalArgumentException(getClass().getSimpleName()
                    + " does not support packed variable-length sequences (cu_seqlens)");
        }
    }

    /**
     * Gradients of this rank's q, k, v for the upstream gradient {@code dout} (shaped like q). They are
     * allocated in {@code saved}'s scope and freed when it is closed.
     */
    Gradients backward(Forward saved, Tensor dout);
}
