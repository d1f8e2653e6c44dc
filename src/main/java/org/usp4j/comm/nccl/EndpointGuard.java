package org.usp4j.comm.nccl;

import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * One NCCL endpoint and the rank's NCCL lock, which keeps the watchdog's abort from running while any NCCL
 * call of the rank is in flight: the rank calls under the lock, the watchdog aborts only when it gets the
 * lock. The lock is the rank's, shared by all its endpoints, because NCCL allows no NCCL call in flight
 * while {@code ncclCommAbort} runs (and with blocking communicators the abort frees a communicator under a
 * call on it). A thread stuck inside NCCL keeps the lock; the watchdog then reports the failure without
 * the abort and tries again on its next round.
 *
 * <p>A borrowed endpoint (the caller's communicator) is never destroyed or aborted here: ending it only
 * stops usp4j's use of it; its owner decides what becomes of the native communicator.
 */
final class EndpointGuard {

    private final NcclEndpoint endpoint;
    private final GroupMembers group;
    private final boolean borrowed;
    private final ReentrantLock lock;
    /** Guarded by lock: aborted or destroyed, the native handle is gone. */
    private boolean ended;
    private volatile boolean aborted;
    private volatile boolean abortDeferred;

    /** A guard under the rank's NCCL {@code lock}. */
    EndpointGuard(NcclEndpoint endpoint, GroupMembers group, ReentrantLock lock) {
        this(endpoint, group, lock, false);
    }

    /** A guard whose endpoint, when {@code borrowed}, is never destroyed or aborted by usp4j. */
    EndpointGuard(NcclEndpoint endpoint, GroupMembers group, ReentrantLock lock, boolean borrowed) {
        this.endpoint = endpoint;
        this.group = group;
        this.lock = lock;
        this.borrowed = borrowed;
    }

    /** Whether the endpoint is the caller's, which usp4j never destroys or aborts. */
    boolean isBorrowed() {
        return borrowed;
    }

    GroupMembers group() {
        return group;
    }

    NcclEndpoint endpoint() {
        return endpoint;
    }

    /** Runs {@code body} with the endpoint held; {@code ended} gives the exception when it is gone. */
    <T> T call(Supplier<T> body, Supplier<RuntimeException> ended) {
        lock.lock();
        try {
            if (this.ended) {
                throw ended.get();
            }
            return body.get();
        } finally {
            lock.unlock();
        }
    }

    void run(Runnable body, Supplier<RuntimeException> ended) {
        call(() -> {
            body.run();
            return null;
        }, ended);
    }

    /** The endpoint's asynchronous error, if the lock is free now and the endpoint alive; never waits. */
    Optional<RuntimeException> pollAsyncError() {
        if (!lock.tryLock()) {
            return Optional.empty();
        }
        try {
            return ended ? Optional.empty() : endpoint.asyncError();
        } finally {
            lock.unlock();
        }
    }

    /** The watchdog's abort: true when the endpoint is gone afterwards, false when the lock stayed busy. */
    boolean tryAbort(long waitMillis) throws InterruptedException {
        if (!lock.tryLock(waitMillis, TimeUnit.MILLISECONDS)) {
            return false;
        }
        try {
            if (!ended) {
                ended = true;
                aborted = true;
                if (!borrowed) {
                    endpoint.abort();
                }
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Clean end: destroys the endpoint unless it was aborted (or is borrowed). Idempotent. */
    void destroy() {
        lock.lock();
        try {
            if (!ended) {
                ended = true;
                if (!borrowed) {
                    endpoint.destroy();
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Abort from the rank's own thread (after a failure); a borrowed endpoint is only left alone. Idempotent.
     * Gives up after {@code waitMillis} when a call that never returned (a split on a helper thread) still
     * holds the endpoint: false then, and nothing was aborted.
     */
    boolean abort(long waitMillis) {
        try {
            return tryAbort(waitMillis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** True the first time only: the watchdog says once that the abort had to wait. */
    boolean deferAbortOnce() {
        if (abortDeferred) {
            return false;
        }
        abortDeferred = true;
        return true;
    }

    boolean isAborted() {
        return aborted;
    }
}
