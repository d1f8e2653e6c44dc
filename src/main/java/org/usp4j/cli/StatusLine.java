package org.usp4j.cli;

import java.io.PrintWriter;

/**
 * A one-line progress display on stderr that rewrites itself in place. It shows only when stderr is a
 * terminal (the launcher exports {@code USP4J_STDERR_TTY=1} then), so logs and scripts that read stderr
 * never see it.
 */
final class StatusLine {

    private final PrintWriter err;
    private final boolean enabled;
    private boolean showing;

    StatusLine(PrintWriter err, boolean enabled) {
        this.err = err;
        this.enabled = enabled;
    }

    /** A status line on {@code err} that is on when the launcher says stderr is a terminal. */
    static StatusLine forStderr(PrintWriter err) {
        return new StatusLine(err, "1".equals(System.getenv("USP4J_STDERR_TTY")));
    }

    boolean enabled() {
        return enabled;
    }

    /** Replaces the line's text. */
    void show(String text) {
        if (enabled) {
            err.print("\r\033[K" + text);
            err.flush();
            showing = true;
        }
    }

    /** Removes the line so that ordinary output can follow. */
    void clear() {
        if (enabled && showing) {
            err.print("\r\033[K");
            err.flush();
            showing = false;
        }
    }
}
