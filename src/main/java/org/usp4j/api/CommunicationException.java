package org.usp4j.api;

import java.io.Serial;

/**
 * The ranks could not exchange their data: a peer did not arrive within the timeout (the message names
 * it), a peer failed and the world was aborted (its error is the cause), or the communication library
 * reported an error. The world it happened in is unusable afterwards; make a new one.
 */
public class CommunicationException extends RuntimeException {

    @Serial
    private static final long serialVersionUID = 1L;

    /**
     * An exception with a message and its cause.
     *
     * @param message what failed, naming the rank
     * @param cause   the underlying error, or null
     */
    public CommunicationException(String message, Throwable cause) {
        super(message, cause);
    }
}
