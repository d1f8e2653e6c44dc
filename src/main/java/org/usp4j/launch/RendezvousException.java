package org.usp4j.launch;

import java.util.List;

/**
 * A rendezvous step failed: ranks did not all arrive in time, the store (hosted by rank 0) went away, or
 * the ranks disagree about the job. The message names this rank and, where known, the missing ranks.
 */
public class RendezvousException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final List<Integer> missingRanks;

    public RendezvousException(String message, Throwable cause) {
        this(message, List.of(), cause);
    }

    public RendezvousException(String message, List<Integer> missingRanks, Throwable cause) {
        super(message, cause);
        this.missingRanks = List.copyOf(missingRanks);
    }

    /** Ranks that had not arrived when the time was up; empty when that is not the failure. */
    public List<Integer> missingRanks() {
        return missingRanks;
    }
}
