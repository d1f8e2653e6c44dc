package org.usp4j.cli;

import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Progress of a long command on its {@link StatusLine}: the current phase and the seconds it has run,
 * refreshed a few times a second by a daemon thread. Silent (no thread at all) when the status line is off,
 * i.e. when stderr is not a terminal.
 */
final class Progress implements AutoCloseable {

    private final StatusLine line;
    private final ScheduledExecutorService ticker;
    private String phase;
    private long phaseStart;

    Progress(StatusLine line) {
        this.line = line;
        if (line.enabled()) {
            ticker = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "usp4j-progress");
                t.setDaemon(true);
                return t;
            });
            ticker.scheduleAtFixedRate(this::render, 250, 250, TimeUnit.MILLISECONDS);
        } else {
            ticker = null;
        }
    }

    /** Starts showing {@code text} with a fresh elapsed-time counter. */
    synchronized void phase(String text) {
        phase = text;
        phaseStart = System.nanoTime();
        render();
    }

    private synchronized void render() {
        if (phase != null) {
            line.show(String.format(Locale.ROOT, "%s ... %.1f s", phase, (System.nanoTime() - phaseStart) * 1e-9));
        }
    }

    /** Removes the line until the next {@link #phase}, so that results can be printed in between. */
    synchronized void clear() {
        phase = null;
        line.clear();
    }

    /** Stops the ticker and removes the line, so that results can follow on the terminal. */
    @Override
    public synchronized void close() {
        if (ticker != null) {
            ticker.shutdownNow();
        }
        phase = null;
        line.clear();
    }
}
