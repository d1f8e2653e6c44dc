package org.usp4j.api;

/**
 * The calling process's rank of a multi-process world, made by {@link Usp4j#ncclRank} from the
 * caller's NCCL communicator and CUDA stream.
 *
 * <p>Ownership: usp4j frees only what it created (the CUDA backend, the cuDNN handle, the
 * sub-communicators its layers split off) on {@link #close()}, which also closes every layer this rank
 * made. The caller's {@code ncclComm_t} and {@code cudaStream_t} are borrowed: never destroyed, and
 * they must stay valid until this rank is closed. Thread-safety: one call at a time, from any thread
 * (usp4j selects the rank's CUDA device on the calling thread before its work).
 */
public interface ProcessRank extends RankContext, AutoCloseable {

    /**
     * Closes every layer this rank made and frees what usp4j created; waits for the rank's work on the
     * caller's stream first. Idempotent. The caller's communicator and stream stay as they are.
     */
    @Override
    void close();
}
