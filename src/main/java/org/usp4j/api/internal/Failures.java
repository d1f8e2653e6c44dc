package org.usp4j.api.internal;

import org.usp4j.api.CommunicationException;
import org.usp4j.comm.local.LocalCommunicationException;
import org.usp4j.comm.nccl.RankFailureException;
import org.usp4j.nccl.NcclException;

/** Internal communication failures as the public {@link CommunicationException}; everything else unchanged. */
final class Failures {

    private Failures() {
    }

    static RuntimeException translate(RuntimeException e) {
        if (e instanceof LocalCommunicationException || e instanceof NcclException || e instanceof RankFailureException) {
            return new CommunicationException(e.getMessage(), e);
        }
        return e;
    }
}
