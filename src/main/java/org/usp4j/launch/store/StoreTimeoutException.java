package org.usp4j.launch.store;

import java.util.List;

/**
 * A blocking store operation (get, wait, barrier) did not complete within its timeout. The connection
 * stays usable. {@link #missing()} names what was still absent: keys, or for a barrier the ranks that had
 * not arrived.
 */
public class StoreTimeoutException extends StoreException {

    private static final long serialVersionUID = 1L;

    private final List<String> missing;

    public StoreTimeoutException(String message, List<String> missing) {
        super(message);
        this.missing = List.copyOf(missing);
    }

    /** Keys (or, for a barrier, rank numbers) that were still absent when the time was up. */
    public List<String> missing() {
        return missing;
    }
}
