package org.usp4j.api;

import org.usp4j.tensor.Tensor;

/**
 * One rank's part of one sequence-parallel linear attention layer, made by
 * {@link RankContext#newLinearAttention}: Ulysses all-to-all over heads inside groups of U ranks
 * around LASP-2 (Sun et al.) across the R ranks of each ring, whose whole exchange per pass is one
 * all-gather of float32 d x d memory states per KV head, of a size that does not depend on the sequence
 * length. What it computes is in {@link LinearAttentionOptions}.
 *
 * <p>Shapes, memory, ordering, errors, ownership and thread-safety are as for {@link AttentionLayer}:
 * bshd tensors of one dtype (F32, BF16 or F16) in host memory from a shared, global or automatic arena,
 * read in place, results written into the caller's buffers, bad arguments refused with an
 * {@link IllegalArgumentException} naming the values before any communication, one call at a time on a
 * thread of the rank. The shards are dealt by {@link SequenceLayout#CONTIGUOUS}. CPU ranks only for now.
 *
 * <p>Saved state: {@link #forward} saves, like a framework's saved tensors, its own copy of the output,
 * the float32 state of the keys before this rank's block and, when U &gt; 1, the exchanged q, k, v;
 * there is no lse. The caller's q, k and v may be referenced directly: keep them valid and unchanged
 * until the matching backward (or {@link #discardSavedState()}). A new forward replaces the saved state
 * of the previous one; a backward consumes it. Implemented by usp4j only; methods may be added in later
 * versions.
 */
public interface LinearAttentionLayer extends SequenceParallelLayer {

    /**
     * What this layer computes.
     *
     * @return the options
     */
    LinearAttentionOptions options();

    /**
     * out_i = scale * sum_j w(i, j) (q_i . k_j) v_j over the whole distributed sequence (the weights of
     * {@link LinearAttentionOptions}), for this rank's query positions, written into {@code out}; saves
     * the state for {@link #backward}.
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
    @Override
    void forward(Tensor q, Tensor k, Tensor v, Tensor out);
}
