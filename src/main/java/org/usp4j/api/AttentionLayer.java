package org.usp4j.api;

import org.usp4j.tensor.Tensor;

/**
 * One rank's part of one sequence-parallel attention layer (USP: Ulysses all-to-all over heads inside
 * groups, Ring attention across them), made by {@link RankContext#newAttention}. Every rank of the world
 * holds its own {@code AttentionLayer} for the same layer and calls {@link #forward} and
 * {@link #backward} on its local shard, in the same order as the other ranks (they communicate).
 *
 * <h2>Shapes and memory</h2>
 * Tensors are {@code bshd}: q, out, dout, dq are [b, s_local, h, d]; k, v, dk, dv are
 * [b, s_local, h_kv, d] (GQA/MQA: h_kv divides h), where s_local = S / P positions dealt by the
 * {@link AttentionOptions#layout() layout}. All tensors of a call have one dtype (F32, BF16 or F16);
 * head_dim must be contiguous, other strides are free (views of a fused QKV buffer work as they are).
 * They live where the rank computes: host memory for CPU ranks (from a shared, global or automatic
 * arena: in-process ranks exchange buffers across threads), device memory of the rank's device for CUDA
 * ranks. Inputs are read in place, never copied to staging buffers first; results are written into
 * the caller's out, dq, dk, dv, which must not overlap the inputs or each other.
 *
 * <h2>Saved state</h2>
 * {@link #forward} saves what {@link #backward} needs (the float32 log-sum-exp, its own copy of the
 * output, and, when U &gt; 1, the exchanged q, k, v), like a framework's saved tensors. The caller's
 * q, k and v may be referenced directly: keep them valid and unchanged until the matching backward (or
 * {@link #discardSavedState()}). The caller's out may be changed freely (an in-place residual add is
 * fine). A new forward replaces the saved state of the previous one; a backward consumes it.
 *
 * <h2>Ordering</h2>
 * On CPU ranks and in-process CUDA ranks, the results are complete when a call returns. On a rank made
 * from a caller's CUDA stream ({@link Usp4j#ncclRank}), the work is enqueued on that stream: inputs
 * produced by earlier work on it are read in order, and later work on it sees the results.
 *
 * <h2>Errors</h2>
 * Bad arguments (shapes, dtypes, memory in the wrong place, freed memory) throw an
 * {@link IllegalArgumentException} naming the values before any communication. A rank that refuses its
 * arguments makes its peers fail too: an in-process world fails at once (and stays failed), NCCL peers
 * at their communicator's timeout.
 *
 * <h2>Ownership and thread-safety</h2>
 * The layer owns its saved state and its sub-communicators and frees them on {@link #close()}, exactly
 * once; it never frees the caller's tensors. It is not thread-safe: one call at a time, on a thread of
 * its rank (inside {@link InProcessWorld#run} for in-process ranks). Implemented by usp4j only; methods
 * may be added in later versions.
 *
 * <p>A model that also has linear attention layers ({@link LinearAttentionLayer}) holds both kinds as
 * {@link SequenceParallelLayer}.
 */
public interface AttentionLayer extends SequenceParallelLayer {

    /**
     * What this layer computes.
     *
     * @return the options
     */
    AttentionOptions options();

    /**
     * out = softmax(scale q k^T + mask) v over the whole distributed sequence, for this rank's query
     * positions, written into {@code out}; saves the state for {@link #backward}.
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

    /**
     * As {@link #forward(Tensor, Tensor, Tensor, Tensor)}, over variable-length sequences packed into
     * the one distributed sequence (b = 1): attention stays inside each sequence (causal within each for
     * a causal layer). The shards must be dealt by {@link SequenceLayout#globalPositions(PackedSequences,
     * Mesh, int)}; the matching {@link #backward} keeps to the same sequences.
     *
     * @param q         this rank's queries [1, s_local, h, d]
     * @param k         this rank's keys [1, s_local, h_kv, d]
     * @param v         this rank's values [1, s_local, h_kv, d]
     * @param out       receives the output [1, s_local, h, d], in the dtype of q
     * @param sequences the global cu_seqlens, the same on every rank, ending at S = P s_local
     * @throws IllegalArgumentException when a tensor is wrong as for the plain forward, b is not 1, the
     *                                  offsets do not end at S, or the layout cannot deal them (zigzag: every
     *                                  length divisible by 2P)
     * @throws IllegalStateException    when the layer is closed or called from the wrong thread
     * @throws CommunicationException   when the ranks could not exchange their data
     */
    void forward(Tensor q, Tensor k, Tensor v, Tensor out, PackedSequences sequences);
}
