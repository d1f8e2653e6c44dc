package org.usp4j.comm;

import java.util.List;
import org.usp4j.tensor.Tensor;

/**
 * A group of ranks that exchange tensors. Implementations: in-process ranks as threads (the CPU
 * backend and tests), in-process device ranks on one GPU, and NCCL.
 *
 * <p>Every call is collective in the usual sense: all ranks of the group make the same calls in the
 * same order. Tensors must be contiguous and live where the implementation expects them (host or
 * device). GPU implementations enqueue work on the rank's stream and return without waiting for it.
 * Every implementation counts the bytes each rank sends in its {@link #traffic() counter}, leaving
 * out a rank's copies to itself.
 */
public interface Communicator extends AutoCloseable {

    int rank();

    int size();

    /**
     * Splits {@code send} into {@code size()} equal blocks in memory order; block j goes to rank j.
     * Block i of {@code recv} receives rank i's block {@code rank()}. Same dtype and element count.
     */
    void allToAll(Tensor send, Tensor recv);

    /** {@code recv} holds {@code size()} blocks of {@code send}'s size; block i comes from rank i. */
    void allGather(Tensor send, Tensor recv);

    /**
     * Float32 sum over the group, scattered: {@code send} holds {@code size()} equal blocks, and
     * {@code recv} (one block) gets the sum of every rank's block {@code rank()}. Counted as
     * {@link TrafficKind#REDUCE_SCATTER}: (size - 1) blocks per rank.
     */
    void reduceScatter(Tensor send, Tensor recv);

    /**
     * Starts one grouped exchange: each of {@code sends} goes to rank {@code dst} and each of
     * {@code recvs} is filled from rank {@code src}, pairwise in list order. Returns at once so that
     * compute can overlap the transfer; the buffers must not be touched until {@link Transfer#await}.
     */
    Transfer sendRecv(List<Tensor> sends, int dst, List<Tensor> recvs, int src);

    /** Returns when every rank of the group has called it. */
    void barrier();

    /**
     * Splits the group: ranks with equal {@code color} form a new group, ordered by {@code key}
     * then by rank. Collective over this group. The new group shares this rank's traffic counter.
     */
    Communicator split(int color, int key);

    /** Bytes this rank has sent, per kind (shared by all groups of this rank). */
    TrafficCounter traffic();

    /** Frees what this communicator created; never what it was handed. Idempotent. */
    @Override
    void close();
}
