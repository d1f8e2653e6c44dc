package org.usp4j.api.internal;

import java.util.Optional;
import org.usp4j.comm.Communicator;
import org.usp4j.cuda.CudaStream;
import org.usp4j.nccl.NcclCommunicator;

/**
 * The seam between a caller's NCCL communicator and usp4j's {@link Communicator} over NCCL: the one place
 * that turns a borrowed {@code ncclComm_t} (and the caller's stream, where the collectives run) into the
 * world communicator of a {@link CommunicatorRank}.
 *
 * <p>Not wired yet. usp4j's NCCL communicator ({@code org.usp4j.dist.nccl.NcclGroupCommunicator}) only
 * makes its world itself: rank 0's unique id through usp4j's rendezvous store, then its own
 * {@code ncclCommInitRank}; its barrier, split metadata and watchdog heartbeats also go through that store.
 * A caller's bare {@code ncclComm_t} comes without a store, so wiring it needs a factory there over a
 * borrowed {@link NcclCommunicator} (never destroyed; splits of it owned) with a store-less barrier and
 * split exchange over NCCL itself. Until then {@link #unavailableReason()} says so and {@link NcclRanks}
 * refuses with a {@link org.usp4j.api.BackendUnavailableException}, before touching any handle.
 */
final class NcclWorldAdapter {

    private NcclWorldAdapter() {
    }

    /** Why the world communicator cannot be made in this build, if it cannot. */
    static Optional<String> unavailableReason() {
        return Optional.of("a caller's ncclComm_t cannot be used yet: usp4j's NCCL communicator builds its world"
                + " only through usp4j's rendezvous store (usp4j launch); in-process worlds (Usp4j.cpuWorld,"
                + " Usp4j.cudaWorld) work");
    }

    /** The world communicator over {@code borrowed}, with its collectives on {@code computeStream}; never destroys either. */
    static Communicator world(NcclCommunicator borrowed, CudaStream computeStream) {
        throw new IllegalStateException(unavailableReason().orElse("unavailable"));
    }
}
