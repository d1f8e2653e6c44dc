package org.usp4j.api;

import java.io.Serial;

/**
 * A backend cannot run on this machine; the message says why (no CUDA device, no driver, no cuDNN...).
 * Thrown before anything is created, so a framework can catch it and fall back to the CPU. Check first
 * with {@link Usp4j#cudaProblem()}.
 */
public class BackendUnavailableException extends IllegalStateException {

    @Serial
    private static final long serialVersionUID = 1L;

    /**
     * An exception with the reason.
     *
     * @param message what is missing
     */
    public BackendUnavailableException(String message) {
        super(message);
    }
}
