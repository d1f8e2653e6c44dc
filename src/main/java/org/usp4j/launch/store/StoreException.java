package org.usp4j.launch.store;

/**
 * A store operation failed: the store could not be reached or refused this client, the connection was
 * lost (typically because the process hosting the store, rank 0, died), or the server reported an error.
 * The message names the store's address and what was being done.
 */
public class StoreException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public StoreException(String message) {
        super(message);
    }

    public StoreException(String message, Throwable cause) {
        super(message, cause);
    }
}
