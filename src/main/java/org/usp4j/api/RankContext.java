package org.usp4j.api;

import java.util.OptionalInt;

/**
 * One rank of a world: where its computation runs, and the factory of its attention layers. In-process
 * worlds hand one to each rank function ({@link InProcessWorld#run}); {@link Usp4j#ncclRank} makes one
 * for the calling process.
 *
 * <p>Ownership: the rank owns its compute backend (CUDA stream if it made one, cuDNN handle, plan
 * caches) and frees it when its world or {@link ProcessRank} is closed, which also closes every layer it
 * made. Thread-safety: one call at a time, on a thread of this rank. Implemented by usp4j only.
 */
public interface RankContext {

    /**
     * This rank's index in its world.
     *
     * @return the rank, in [0, {@link #worldSize()})
     */
    int rank();

    /**
     * The number of ranks in the world.
     *
     * @return P
     */
    int worldSize();

    /**
     * Where this rank computes, and so where its tensors must live.
     *
     * @return {@link BackendKind#CPU} (host memory) or {@link BackendKind#CUDA} (device memory)
     */
    BackendKind backend();

    /**
     * The CUDA device of a CUDA rank.
     *
     * @return the device ordinal, or empty for a CPU rank
     */
    OptionalInt cudaDevice();

    /**
     * Makes this rank's part of a new attention layer. Collective: every rank of the world makes its
     * layers in the same order, with equal mesh and options (it splits the world into the mesh's
     * Ulysses groups and rings).
     *
     * @param mesh    the mesh; its size must equal {@link #worldSize()}
     * @param options what the layer computes
     * @return the layer, owned by the caller (close it, or close the world or process rank)
     * @throws IllegalArgumentException when the mesh does not match the world size, or the options' ring
     *                                  algorithm does not support their layout (LightSeq: contiguous only)
     * @throws NullPointerException     when an argument is null
     * @throws IllegalStateException    when the rank is closed or called from another rank's thread
     * @throws CommunicationException   when the ranks could not agree on the split
     */
    AttentionLayer newAttention(Mesh mesh, AttentionOptions options);

    /**
     * Makes this rank's part of a new linear attention layer (Ulysses around LASP-2). Collective, as
     * {@link #newAttention}: every rank of the world makes its layers, of both kinds, in the same order,
     * with equal mesh and options.
     *
     * @param mesh    the mesh; its size must equal {@link #worldSize()}
     * @param options what the layer computes
     * @return the layer, owned by the caller (close it, or close the world or process rank)
     * @throws IllegalArgumentException      when the mesh does not match the world size
     * @throws UnsupportedOperationException when this rank computes on CUDA (linear attention runs on CPU
     *                                       ranks only for now); thrown before any communication
     * @throws NullPointerException          when an argument is null
     * @throws IllegalStateException         when the rank is closed or called from another rank's thread
     * @throws CommunicationException        when the ranks could not agree on the split
     */
    LinearAttentionLayer newLinearAttention(Mesh mesh, LinearAttentionOptions options);
}
