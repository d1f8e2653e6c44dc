package org.usp4j.cli;

/**
 * A failure a command reports as one {@code error: ...} line with an exit status, no stack trace:
 * bad input, unwritable outputs, an unavailable backend. The message names the offending values.
 */
public final class CommandFailure extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int exitCode;

    /** A failure with {@link ExitCodes#FAILURE}. */
    public CommandFailure(String message) {
        this(message, ExitCodes.FAILURE);
    }

    public CommandFailure(String message, int exitCode) {
        super(message);
        this.exitCode = exitCode;
    }

    public CommandFailure(String message, Throwable cause) {
        super(message, cause);
        this.exitCode = ExitCodes.FAILURE;
    }

    public int exitCode() {
        return exitCode;
    }
}
