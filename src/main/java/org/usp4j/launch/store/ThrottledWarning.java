package org.usp4j.launch.store;

import java.time.Duration;
import org.apache.logging.log4j.Logger;

/**
 * Warnings that a hostile or broken peer can cause by the thousand (refused handshakes, strangers closed
 * to make room): the first of a burst is logged as a warning, the rest at debug level, and the next
 * warning after a quiet period says how many were held back.
 */
final class ThrottledWarning {

    private final Logger log;
    private final long periodNanos;
    /** Guarded by this. */
    private long lastWarnAt;
    /** Guarded by this. */
    private boolean warnedOnce;
    /** Guarded by this. */
    private long heldBack;

    ThrottledWarning(Logger log, Duration period) {
        this.log = log;
        this.periodNanos = period.toNanos();
    }

    void note(String message) {
        long now = System.nanoTime();
        long held;
        synchronized (this) {
            if (warnedOnce && now - lastWarnAt < periodNanos) {
                heldBack++;
                log.debug("store: {}", message);
                return;
            }
            warnedOnce = true;
            lastWarnAt = now;
            held = heldBack;
            heldBack = 0;
        }
        if (held > 0) {
            log.warn("store: {} (and {} similar events in the last period, logged at debug level)", message, held);
        } else {
            log.warn("store: {}", message);
        }
    }
}
