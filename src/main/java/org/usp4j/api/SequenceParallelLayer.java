package org.usp4j.api;

import org.usp4j.tensor.Tensor;

/**
 * One rank's part of one sequence-parallel attention layer of either kind: softmax attention
 * ({@link AttentionLayer}, made by {@link RankContext#newAttention}) or linear attention
 * ({@link LinearAttentionLayer}, made by {@link RankContext#newLinearAttention}). A model that mixes
 * both kinds (a hybrid, LASP-2H style) holds its layers as this type and calls them alike. Every rank
 * of the world holds its own instance for the same layer and calls {@link #forward} and
 * {@link #backward} on its local shard, in the same order as the other ranks (they communicate).
 *
 * <p>Shapes, memory, saved state, ordering, errors, ownership and thread-safety are as described for
 * {@link AttentionLayer}; each kind's own documentation says what it computes and what it saves.
 * Implemented by usp4j only; methods may be added in later versions.
 */
public interface SequenceParallelLayer extends AutoCloseable {

    /**
     * The mesh this layer splits attention over.
     *
     * @return the mesh, of the world's size
     */
    Mesh mesh();

    /**
     * This layer's attention over the whole distributed sequence, for this rank's query positions,
     * written into {@code out}; saves the state for {@link #backward}.
     *
     * @param q   this rank's queries [b, s_local, h, d]
     * @param k   this rank's keys [b, s_local, h_kv, d]
     * @param v   this rank's values [b, s_local, h_kv, d]
     * @param out receives the output [b, s_local, h, d], in the dtype of q
     * @throws IllegalArgumentException when a tensor has the wrong shape, dtype or memory, or the mesh does
     *                                  not divide the heads (h by U; h_kv by U or U by h_kv)
     * @throws IllegalStateException    when the layer is closed or called from the wrong thread
     * @throws CommunicationException   when the ranks could not exchange their data
     */
    void forward(Tensor q, Tensor k, Tensor v, Tensor out);

    /**
     * The gradients of the q, k, v of the last {@link #forward} for the upstream gradient {@code dout},
     * written into dq, dk, dv (overwritten, not accumulated); then frees the saved state.
     *
     * @param dout the gradient of the loss with respect to out [b, s_local, h, d]
     * @param dq   receives the gradient for q [b, s_local, h, d]
     * @param dk   receives the gradient for k [b, s_local, h_kv, d]
     * @param dv   receives the gradient for v [b, s_local, h_kv, d]
     * @throws IllegalArgumentException when a tensor does not match the forward's shapes, dtype or memory
     * @throws IllegalStateException    when there is no saved forward, the layer is closed, or it is called
     *                                  from the wrong thread
     * @throws CommunicationException   when the ranks could not exchange their data
     */
    void backward(Tensor dout, Tensor dq, Tensor dk, Tensor dv);

    /**
     * Whether a forward's state is saved and waiting for its backward.
     *
     * @return true between a forward and the backward (or discard) that follows it
     */
    boolean hasSavedState();

    /**
     * Frees the saved state of the last forward without a backward (inference, or a step that was
     * abandoned). Local: no communication. Does nothing when nothing is saved.
     *
     * @throws IllegalStateException when the layer is closed
     */
    void discardSavedState();

    /** Frees the saved state and the layer's communicators. Idempotent; the caller's tensors stay untouched. */
    @Override
    void close();
}
