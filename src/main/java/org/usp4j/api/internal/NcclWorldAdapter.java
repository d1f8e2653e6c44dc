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
 * <p>Not wired yet: usp4j's NCCL {@code Communicator} (issue 5, second part) is not in this build, and the
 * one being written meets its ranks through usp4j's rendezvous store, which a caller's bare
 * {@code ncclComm_t} comes without; it needs a store-less mode (barrier and split over NCCL itself).
 * Until then {@link #unavailableReason()} says so and {@link NcclRanks} refuses, before touching any handle.
 */
final class NcclWorldAdapter {

    private NcclWorldAdapter() {
    }

    /** Why the world communicator cannot be made in this build, if it cannot. */
    static Optional<String> unavailableReason() {
        return Optional.of("usp4j's NCCL Communicator is not in this build yet (issue 5, second part): a caller's"
                + " ncclComm_t cannot be used until it is; in-process worlds (Usp4j.cpuWorld, Usp4j.cudaWorld) work");
    }

    /** The world communicator over {@code borrowed}, with its collectives on {@code computeStream}; never destroys either. */
    static Communicator world(NcclCommunicator borrowed, CudaStream computeStream) {
        throw new IllegalStateException(unavailableReason().orElse("unavailable"));
    }
}
