package org.usp4j.api.internal;

import java.time.Duration;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.comm.Communicator;
import org.usp4j.cuda.CudaStream;
import org.usp4j.comm.nccl.NcclGroupCommunicator;
import org.usp4j.nccl.NcclCommunicator;

/**
 * The seam between a caller's NCCL communicator and usp4j's {@link Communicator} over NCCL: the one place
 * that turns a borrowed {@code ncclComm_t} (and the caller's stream, where the collectives run) into the
 * world communicator of a {@link CommunicatorRank}.
 *
 * <p>The world is {@link NcclGroupCommunicator#borrowWorld}: without usp4j's rendezvous store, its barrier
 * and split agreement are tiny all-gathers over the caller's communicator, timed by the watchdog (which
 * cannot name a dead rank without heartbeats). usp4j never destroys or aborts the caller's communicator;
 * the sub-communicators its layers split off are its own, destroyed once when the layers close (aborted
 * after a failure).
 */
final class NcclWorldAdapter {

    private static final Logger LOG = LogManager.getLogger(NcclWorldAdapter.class);

    private NcclWorldAdapter() {
    }

    /**
     * The world communicator over {@code borrowed}, with its collectives on {@code computeStream}; never
     * destroys either. A failure is logged by the watchdog and thrown by the rank's next call.
     */
    static Communicator world(NcclCommunicator borrowed, CudaStream computeStream, Duration timeout) {
        return NcclGroupCommunicator.borrowWorld(borrowed, computeStream, timeout,
                failure -> LOG.debug("rank {}: failed; the next call on it throws", borrowed.rank()));
    }
}
