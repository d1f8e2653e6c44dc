package org.usp4j.cli;

/** The exit statuses every usp4j command uses. */
public final class ExitCodes {

    /** Success. */
    public static final int OK = 0;
    /** Bad input (a file, its contents, an output that cannot be written) or a failure while running. */
    public static final int FAILURE = 1;
    /** Bad usage: unknown or malformed options, values out of range. */
    public static final int USAGE = 2;

    private ExitCodes() {
    }
}
