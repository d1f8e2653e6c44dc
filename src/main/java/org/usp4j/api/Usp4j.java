package org.usp4j.api;

import java.time.Duration;
import java.util.Optional;
import org.usp4j.api.internal.InProcessWorlds;
import org.usp4j.api.internal.NcclRanks;
import org.usp4j.gpu.GpuAvailability;

/**
 * The entry points: a world of in-process ranks on the CPU or on one GPU, or the calling process's
 * rank over the caller's NCCL communicator. Each rank then makes {@link AttentionLayer}s with
 * {@link RankContext#newAttention} and calls them on its local shard.
 *
 * <p>Nothing here keeps global state; the factories are thread-safe.
 */
public final class Usp4j {

    /** How long a rank of an in-process world waits for its peers before the world fails, by default. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    private Usp4j() {
    }

    /**
     * A world of {@code ranks} CPU ranks in this process (threads sharing host memory, the Java
     * attention kernel on a shared pool with one thread per processor). Runs everywhere; needs no
     * native library.
     *
     * @param ranks the number of ranks P, at least 1
     * @return the world, owned by the caller
     * @throws IllegalArgumentException when {@code ranks} is below 1
     */
    public static InProcessWorld cpuWorld(int ranks) {
        return cpuWorld(ranks, DEFAULT_TIMEOUT);
    }

    /**
     * As {@link #cpuWorld(int)}, with the time a rank waits for its peers before the world fails.
     *
     * @param ranks   the number of ranks P, at least 1
     * @param timeout how long any rank waits for its peers; positive
     * @return the world, owned by the caller
     * @throws IllegalArgumentException when {@code ranks} is below 1 or the timeout is not positive
     * @throws NullPointerException     when {@code timeout} is null
     */
    public static InProcessWorld cpuWorld(int ranks, Duration timeout) {
        return InProcessWorlds.cpu(ranks, timeout);
    }

    /**
     * A world of {@code ranks} CUDA ranks in this process, all on one device: each rank has its own
     * stream, cuDNN runs the attention blocks, and ranks exchange data with device-to-device copies.
     * Calls are synchronous: results are complete when they return.
     *
     * @param ranks  the number of ranks P, at least 1
     * @param device the CUDA device ordinal
     * @return the world, owned by the caller
     * @throws IllegalArgumentException     when {@code ranks} is below 1 or the device does not exist
     * @throws BackendUnavailableException when CUDA or cuDNN cannot run here ({@link #cudaProblem()} says why)
     */
    public static InProcessWorld cudaWorld(int ranks, int device) {
        return cudaWorld(ranks, device, DEFAULT_TIMEOUT);
    }

    /**
     * As {@link #cudaWorld(int, int)}, with the time a rank waits for its peers before the world fails.
     *
     * @param ranks   the number of ranks P, at least 1
     * @param device  the CUDA device ordinal
     * @param timeout how long any rank waits for its peers; positive
     * @return the world, owned by the caller
     * @throws IllegalArgumentException     when {@code ranks} is below 1, the device does not exist or the
     *                                      timeout is not positive
     * @throws NullPointerException         when {@code timeout} is null
     * @throws BackendUnavailableException when CUDA or cuDNN cannot run here
     */
    public static InProcessWorld cudaWorld(int ranks, int device, Duration timeout) {
        return InProcessWorlds.cuda(ranks, device, timeout);
    }

    /**
     * The calling process's rank over the caller's NCCL communicator (one process per GPU, as launched
     * by {@code usp4j launch}, torchrun, srun or mpirun), with {@link #DEFAULT_TIMEOUT}. Its layers
     * enqueue all work on the caller's stream. The world is the communicator's ranks; layers split
     * sub-communicators off it. Makes no collective call itself: the first collective on the caller's
     * communicator is the split agreement of the first {@link RankContext#newAttention}, which every rank
     * of the communicator must make.
     *
     * @param handles the caller's communicator, stream and device (borrowed, never destroyed or aborted)
     * @return the rank, owned by the caller
     * @throws NullPointerException         when {@code handles} is null
     * @throws IllegalArgumentException     when the device does not exist or the communicator's device
     *                                      differs from {@code handles.device()}
     * @throws BackendUnavailableException when CUDA, cuDNN or NCCL cannot run here; thrown before the
     *                                      handles are touched
     * @see #ncclRank(NcclHandles, Duration)
     */
    public static ProcessRank ncclRank(NcclHandles handles) {
        return ncclRank(handles, DEFAULT_TIMEOUT);
    }

    /**
     * As {@link #ncclRank(NcclHandles)}, with the time any of the rank's NCCL operations (a layer's
     * collectives, its split agreement) may take before the rank fails.
     *
     * <p>Failures: when an operation outlives the timeout or NCCL reports an asynchronous error, the rank
     * fails: the sub-communicators usp4j split off are aborted, and this and every later call throws a
     * {@link CommunicationException}. There is no rendezvous store, so the message cannot name the rank
     * that stopped; and usp4j never aborts the caller's communicator, which is then in an unknown state
     * (usp4j's work may still be pending on it): its owner should abort it ({@code ncclCommAbort}).
     *
     * @param handles the caller's communicator, stream and device (borrowed, never destroyed or aborted)
     * @param timeout how long any NCCL operation of the rank may take; positive
     * @return the rank, owned by the caller
     * @throws NullPointerException         when an argument is null
     * @throws IllegalArgumentException     when the timeout is not positive, the device does not exist, or
     *                                      the communicator's device differs from {@code handles.device()}
     * @throws BackendUnavailableException when CUDA, cuDNN or NCCL cannot run here; thrown before the
     *                                      handles are touched
     */
    public static ProcessRank ncclRank(NcclHandles handles, Duration timeout) {
        return NcclRanks.open(handles, timeout);
    }

    /**
     * Why the CUDA backend cannot run here, if it cannot.
     *
     * @return empty when a CUDA device, the CUDA runtime and cuDNN are usable; else the reason
     */
    public static Optional<String> cudaProblem() {
        return GpuAvailability.problem();
    }
}
