package org.usp4j.comm.nccl;

import java.util.List;

/**
 * A rank's NCCL work cannot go on: an operation did not complete within the timeout, NCCL reported an
 * asynchronous error, or a peer did not come to a collective step. The message names this rank, the
 * operation and its group, and, where the heartbeats tell, the ranks that stopped (dead or frozen).
 * Once raised, the rank's communicators are aborted and every later call on them throws it again.
 */
public class RankFailureException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final List<Integer> missingRanks;

    public RankFailureException(String message, List<Integer> missingRanks, Throwable cause) {
        super(message, cause);
        this.missingRanks = List.copyOf(missingRanks);
    }

    /** World ranks found missing (heartbeat stopped, or absent from a step); empty when none could be named. */
    public List<Integer> missingRanks() {
        return missingRanks;
    }
}
