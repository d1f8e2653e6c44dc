package org.usp4j.sp;

import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One rank's part of a distributed attention strategy (Ring, USP; later varlen, TokenRing, all-gather
 * context parallelism, ...). All ranks of the strategy's groups call {@link #forward} and
 * {@link #backward} together, each with its local tensors as the {@link SequenceLayout} dealt them:
 * q [b, s_local, h, d], k and v [b, s_local, h_kv, d] (self-attention: the same positions).
 * Implementations get their communicators, backend and options explicitly; nothing is global.
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

    /**
     * Gradients of this rank's q, k, v for the upstream gradient {@code dout} (shaped like q). They are
     * allocated in {@code saved}'s scope and freed when it is closed.
     */
    Gradients backward(Forward saved, Tensor dout);
}
