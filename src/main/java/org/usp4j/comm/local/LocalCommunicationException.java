package org.usp4j.comm.local;

/**
 * A collective or transfer of the in-process communicator could not complete: a peer did not arrive
 * within the timeout (the message names it), or another rank failed and the world was aborted (the
 * message names that rank and carries its error as the cause).
 */
public final class LocalCommunicationException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    LocalCommunicationException(String message) {
        super(message);
    }

    LocalCommunicationException(String message, Throwable cause) {
        super(message, cause);
    }
}
