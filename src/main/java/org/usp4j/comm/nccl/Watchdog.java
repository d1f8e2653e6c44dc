package org.usp4j.comm.nccl;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.launch.store.StoreClient;
import org.usp4j.launch.store.StoreException;

/**
 * One rank's watchdog over all its NCCL communicators (the world and its splits), on a thread of its own
 * with its own store connection. Every round (a tenth of the timeout, between 5 ms and 2 s) it
 * <ul>
 *   <li>bumps this rank's heartbeat counter in the store, so the others can tell it is alive;</li>
 *   <li>polls {@code ncclCommGetAsyncError} on every communicator;</li>
 *   <li>retires the operations whose device work has run, and fails the rank when one has been pending
 *       longer than the timeout.</li>
 * </ul>
 * While an operation is older than half the timeout it also reads the other ranks' heartbeat counters,
 * so that by the timeout it can name the ranks whose counter stopped (a rank that died or froze); a rank
 * that is alive but never made the matching call is not named, and the message says so.
 *
 * <p>Failing means: the failure is recorded (every later call on the rank's communicators throws it),
 * logged, every communicator is aborted ({@code ncclCommAbort}, which ends the hung kernels), and the
 * listener is told. A rank thread stuck inside a blocking NCCL call keeps its communicator locked; the
 * abort then waits for a later round, and the listener (the CLI's ends the process) keeps it from hanging.
 *
 * <p>A world over a caller's communicator has no store: no heartbeats, so no rank can be named, and the
 * caller's communicator is never aborted (see {@link EndpointGuard}); its failures end with a note that
 * says both.
 */
final class Watchdog implements AutoCloseable {

    static final String HEARTBEAT_PREFIX = "usp4j/nccl/heartbeat/";
    private static final Logger LOG = LogManager.getLogger(Watchdog.class);
    /** A peer whose counter did not move for this many rounds is reported as stopped. */
    private static final int STALE_ROUNDS = 3;

    private final int rank;
    private final int worldSize;
    private final StoreClient store;
    private final long timeoutNanos;
    private final long intervalNanos;
    private final Runnable bindThread;
    private final Consumer<RankFailureException> listener;
    private final String note;
    private final Set<PendingOperation> pending = ConcurrentHashMap.newKeySet();
    private final List<EndpointGuard> guards = new CopyOnWriteArrayList<>();
    private final Thread thread;
    // watchdog thread only: what the peers' heartbeat counters were and when they last moved
    private final long[] lastBeat;
    private final long[] lastChange;
    private boolean observing;
    private long observingSince;
    private volatile String storeProblem;
    private volatile RankFailureException failure;
    private volatile boolean closed;
    private volatile boolean frozen;

    /**
     * Starts watching. {@code store} is a connection of the watchdog's own (its heartbeats must not queue
     * behind a rank's blocking store calls), closed with the watchdog; null for a world of one.
     */
    Watchdog(int rank, int worldSize, StoreClient store, Duration timeout, Runnable bindThread,
             Consumer<RankFailureException> listener) {
        this(rank, worldSize, store, timeout, bindThread, listener, null);
    }

    /** As above, with {@code note} (when not null) ending every failure's message. */
    Watchdog(int rank, int worldSize, StoreClient store, Duration timeout, Runnable bindThread,
             Consumer<RankFailureException> listener, String note) {
        this.note = note;
        this.rank = rank;
        this.worldSize = worldSize;
        this.store = store;
        this.timeoutNanos = timeout.toNanos();
        this.intervalNanos = Math.clamp(timeoutNanos / 10, TimeUnit.MILLISECONDS.toNanos(5), TimeUnit.SECONDS.toNanos(2));
        this.bindThread = bindThread;
        this.listener = listener;
        this.lastBeat = new long[worldSize];
        this.lastChange = new long[worldSize];
        beat();
        this.thread = Thread.ofPlatform().daemon().name("usp4j-nccl-watchdog-rank-" + rank).unstarted(this::loop);
        thread.start();
    }

    Duration timeout() {
        return Duration.ofNanos(timeoutNanos);
    }

    Duration interval() {
        return Duration.ofNanos(intervalNanos);
    }

    /** The recorded failure, if the rank failed. */
    Optional<RankFailureException> failure() {
        return Optional.ofNullable(failure);
    }

    void watch(EndpointGuard guard) {
        guards.add(guard);
        if (failure != null) {
            abortAll();
        }
    }

    void unwatch(EndpointGuard guard) {
        guards.remove(guard);
    }

    /** Starts timing an operation that {@code holders} parties (the watchdog, maybe a Transfer) will release. */
    PendingOperation begin(String what, GroupMembers group, int holders) {
        PendingOperation op = new PendingOperation(what, group, System.nanoTime(), holders);
        pending.add(op);
        return op;
    }

    /** True while some operation's host call or device work has not finished; never blocks. */
    boolean hasIncomplete() {
        for (PendingOperation op : pending) {
            if (!op.isComplete()) {
                return true;
            }
        }
        return false;
    }

    /** The host call failed before anything was enqueued: stop timing it. */
    void abandon(PendingOperation op) {
        if (pending.remove(op)) {
            op.enqueued(null);
            op.release();
        }
    }

    /**
     * Fails the rank with {@code reason} (when it has not failed yet): records, logs, aborts every
     * communicator and tells the listener. Returns the failure that stands.
     */
    RankFailureException fail(RankFailureException reason) {
        synchronized (this) {
            if (failure != null) {
                return failure;
            }
            failure = reason;
        }
        LOG.error("{}", reason.getMessage());
        abortAll();
        try {
            listener.accept(reason);
        } catch (RuntimeException e) {
            LOG.warn("rank {}: the failure listener threw: {}", rank, e.toString());
        }
        return reason;
    }

    /** Test hook: the thread stops as a frozen or killed process would (no heartbeat, no checks, no abort). */
    void freeze() {
        frozen = true;
        thread.interrupt();
    }

    /** Stops the thread and closes the store connection; the communicators are the caller's. Idempotent. */
    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        try {
            thread.join(TimeUnit.NANOSECONDS.toMillis(intervalNanos) + 5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (store != null) {
            store.close();
        }
    }

    // ---- the watchdog thread ----

    private void loop() {
        try {
            bindThread.run();
        } catch (RuntimeException | Error e) {
            LOG.warn("rank {}: watchdog could not select the rank's device: {}", rank, e.toString());
        }
        while (!closed && !frozen) {
            try {
                TimeUnit.NANOSECONDS.sleep(intervalNanos);
            } catch (InterruptedException e) {
                continue; // closing or freezing: the loop condition decides
            }
            if (closed || frozen) {
                break;
            }
            try {
                round();
            } catch (RuntimeException | Error e) {
                LOG.error("rank {}: watchdog round failed: {}", rank, e.toString(), e);
            }
        }
    }

    private void round() {
        beat();
        long now = System.nanoTime();
        if (failure != null) {
            abortAll(); // a busy endpoint may have kept its lock last time
            return;
        }
        for (EndpointGuard g : guards) {
            Optional<RuntimeException> error = g.pollAsyncError();
            if (error.isPresent()) {
                observePeers(now);
                fail(asyncFailure(g.group(), error.get()));
                return;
            }
        }
        PendingOperation oldest = null;
        for (PendingOperation op : pending) {
            if (op.isComplete()) {
                if (pending.remove(op)) {
                    op.release();
                }
            } else if (oldest == null || op.startNanos() - oldest.startNanos() < 0) {
                oldest = op;
            }
        }
        if (oldest == null || now - oldest.startNanos() < timeoutNanos / 2) {
            observing = false;
            return;
        }
        observePeers(now);
        if (now - oldest.startNanos() >= timeoutNanos) {
            fail(timeoutFailure(oldest, now));
        }
    }

    private void beat() {
        if (store == null) {
            return;
        }
        try {
            store.add(HEARTBEAT_PREFIX + rank, 1);
            storeProblem = null;
        } catch (StoreException | IllegalStateException e) {
            storeProblem = e.getMessage();
        }
    }

    private void observePeers(long now) {
        if (store == null) {
            return;
        }
        if (!observing) {
            observing = true;
            observingSince = now;
            for (int r = 0; r < worldSize; r++) {
                lastChange[r] = now;
                lastBeat[r] = Long.MIN_VALUE;
            }
        }
        for (int r = 0; r < worldSize; r++) {
            if (r == rank) {
                continue;
            }
            try {
                long beats = store.add(HEARTBEAT_PREFIX + r, 0);
                if (beats != lastBeat[r]) {
                    lastBeat[r] = beats;
                    lastChange[r] = now;
                }
            } catch (StoreException | IllegalStateException e) {
                storeProblem = e.getMessage();
                return;
            }
        }
    }

    /** Ranks whose heartbeat did not move for STALE_ROUNDS rounds of observation. */
    private List<Integer> stoppedRanks(long now) {
        List<Integer> stopped = new ArrayList<>();
        if (!observing || now - observingSince < STALE_ROUNDS * intervalNanos) {
            return stopped;
        }
        for (int r = 0; r < worldSize; r++) {
            if (r != rank && now - lastChange[r] >= STALE_ROUNDS * intervalNanos) {
                stopped.add(r);
            }
        }
        return stopped;
    }

    private RankFailureException timeoutFailure(PendingOperation op, long now) {
        String head = "rank " + rank + " of " + worldSize + ": NCCL " + op.what() + " on " + op.group().describe()
                + " did not complete within " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms"
                + (op.isEnqueued() ? "" : " (still inside the NCCL call)");
        return withDiagnosis(head, now, null, true);
    }

    private RankFailureException asyncFailure(GroupMembers group, RuntimeException error) {
        String head = "rank " + rank + " of " + worldSize + ": NCCL reported an asynchronous error on "
                + group.describe() + ": " + error.getMessage();
        return withDiagnosis(head, System.nanoTime(), error, false);
    }

    private RankFailureException withDiagnosis(String head, long now, Throwable cause, boolean timedOut) {
        List<Integer> missing = new ArrayList<>(stoppedRanks(now));
        StringBuilder m = new StringBuilder(head);
        String storeLost = storeProblem;
        if (storeLost != null && rank != 0) {
            if (!missing.contains(0)) {
                missing.addFirst(0);
            }
            m.append("; the rendezvous store hosted by rank 0 is unreachable (").append(storeLost)
                    .append("), so rank 0 is probably gone");
        }
        List<Integer> stopped = stoppedRanks(now);
        if (!stopped.isEmpty()) {
            long silentMillis = 0;
            for (int r : stopped) {
                silentMillis = Math.max(silentMillis, TimeUnit.NANOSECONDS.toMillis(now - lastChange[r]));
            }
            m.append("; rank(s) ").append(stopped).append(" sent no heartbeat for at least ").append(silentMillis)
                    .append(" ms (dead or frozen)");
        } else if (timedOut && storeLost == null && observing) {
            m.append("; every rank's heartbeat is fresh, so a rank did not make the same call "
                    + "(or is stuck outside NCCL)");
        }
        if (note != null) {
            m.append("; ").append(note);
        }
        return new RankFailureException(m.toString(), missing, cause);
    }

    private void abortAll() {
        for (EndpointGuard g : guards) {
            try {
                if (!g.tryAbort(10) && g.deferAbortOnce()) {
                    LOG.warn("rank {}: {} is busy in an NCCL call on the rank's thread; its abort waits for that "
                            + "call to return", rank, g.group().describe());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException e) {
                LOG.warn("rank {}: aborting {} failed: {}", rank, g.group().describe(), e.toString());
            }
        }
    }
}
