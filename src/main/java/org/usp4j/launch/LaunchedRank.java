package org.usp4j.launch;

import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;

/** One process's share of a launched job: its rendezvous, its world communicator and its backend. */
public interface LaunchedRank {

    Rendezvous rendezvous();

    /** The world communicator: rank r of P, its rank equal to the rendezvous' rank. */
    Communicator world();

    Backend backend();

    /** The device this rank computes on (for the figures). */
    int device();

    /**
     * Throws if the rank failed while its device work was waited on (an aborted communicator lets a
     * stream synchronize return, and the data is then not to be trusted). Default: nothing to check.
     */
    default void checkHealthy() {
    }
}
