package org.usp4j.comm.local;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.IntFunction;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficCounter;

/**
 * P in-process ranks over shared memory: one world {@link Communicator} per rank, a pool of P threads
 * that {@link #run runs} a function on every rank, and the world-wide failure state.
 *
 * <p>Failure handling: every wait has a timeout (default {@link #DEFAULT_TIMEOUT}); a rank that times
 * out, or whose function throws inside {@link #run}, aborts the world, and every other rank's next or
 * current wait throws a {@link LocalCommunicationException} naming that rank. An aborted world stays
 * aborted: make a new one.
 */
public final class LocalWorld implements AutoCloseable {

    /** How long any rank waits for its peers before it gives up. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    /** Waits are sliced so that an abort is noticed quickly. */
    static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

    static final Logger LOG = LogManager.getLogger(LocalWorld.class);
    private static final AtomicInteger WORLDS = new AtomicInteger();

    /** A rank's part of {@link #run}: gets its rank and world communicator. */
    @FunctionalInterface
    public interface RankTask<T> {
        T run(int rank, Communicator world) throws Exception;
    }

    private record Failure(int rank, Throwable cause) {
    }

    private final int size;
    private final Duration timeout;
    private final long timeoutNanos;
    private final TrafficCounter[] traffic;
    private final LocalCommunicator[] communicators;
    private final String threadPrefix;
    private final ExecutorService rankThreads;
    private final ExecutorService copyThreads;
    private final AtomicReference<Failure> failure = new AtomicReference<>();
    /** Transfers neither awaited nor cancelled yet; what a failed rank leaves here, {@link #run} cancels. */
    private final Set<LocalCommunicator.LocalTransfer> openTransfers = ConcurrentHashMap.newKeySet();
    /** Copy tasks submitted and not yet finished; guarded by itself. */
    private final int[] copiesInFlight = new int[1];
    private volatile boolean closed;

    public LocalWorld(int size) {
        this(size, DEFAULT_TIMEOUT);
    }

    public LocalWorld(int size, Duration timeout) {
        this(size, timeout, rank -> LocalTransport.HOST);
    }

    /**
     * A world whose rank r moves bytes with {@code transports.apply(r)} (host copies, or device copies
     * on rank r's stream for GPU ranks).
     */
    public LocalWorld(int size, Duration timeout, IntFunction<LocalTransport> transports) {
        if (size < 1) {
            throw new IllegalArgumentException("world size must be at least 1, got " + size);
        }
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
        this.size = size;
        this.timeout = timeout;
        this.timeoutNanos = timeout.toNanos();
        this.traffic = new TrafficCounter[size];
        this.communicators = new LocalCommunicator[size];
        int[] ranks = new int[size];
        for (int r = 0; r < size; r++) {
            ranks[r] = r;
            traffic[r] = new TrafficCounter();
        }
        LocalGroup world = new LocalGroup(this, ranks);
        for (int r = 0; r < size; r++) {
            communicators[r] = new LocalCommunicator(world, r, traffic[r],
                    Objects.requireNonNull(transports.apply(r), "transport of rank " + r));
        }
        this.threadPrefix = "usp4j-world" + WORLDS.incrementAndGet() + "-";
        this.rankThreads = Executors.newFixedThreadPool(size, daemonThreads(threadPrefix + "worker-"));
        this.copyThreads = Executors.newCachedThreadPool(daemonThreads(threadPrefix + "copy-"));
    }

    public int size() {
        return size;
    }

    public Duration timeout() {
        return timeout;
    }

    /** The world communicator of {@code rank}, for callers that run ranks on threads of their own. */
    public Communicator communicator(int rank) {
        Objects.checkIndex(rank, size);
        return communicators[rank];
    }

    /** Bytes {@code rank} has sent, over the world and every group split from it. */
    public TrafficCounter traffic(int rank) {
        Objects.checkIndex(rank, size);
        return traffic[rank];
    }

    /** Every rank's traffic counter, in rank order (live objects, not copies). */
    public List<TrafficCounter> traffic() {
        return List.of(traffic);
    }

    /**
     * Runs {@code task} on all ranks at once, one thread each, and returns their results in rank order.
     * When a rank throws, the world is aborted and the first failure is thrown here (unchanged if it is
     * unchecked, so an {@link IllegalArgumentException} stays one), after the other ranks have stopped.
     * Not reentrant: a task must not call {@code run}.
     */
    public synchronized <T> List<T> run(RankTask<T> task) {
        Objects.requireNonNull(task, "task");
        requireUsable();
        List<Future<T>> futures = new ArrayList<>(size);
        for (int r = 0; r < size; r++) {
            int rank = r;
            futures.add(rankThreads.submit(() -> {
                Thread.currentThread().setName(threadPrefix + "rank-" + rank);
                try {
                    return task.run(rank, communicators[rank]);
                } catch (Throwable t) {
                    abort(rank, t);
                    throw t;
                }
            }));
        }
        List<T> results = new ArrayList<>(size);
        List<Integer> stragglers = new ArrayList<>();
        List<Throwable> errors = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            try {
                if (failure.get() == null) {
                    results.add(futures.get(r).get());
                } else {
                    // After an abort every rank fails at its next wait; give stragglers one timeout.
                    results.add(futures.get(r).get(timeoutNanos, TimeUnit.NANOSECONDS));
                }
            } catch (ExecutionException e) {
                results.add(null);
                errors.add(e.getCause());
            } catch (TimeoutException e) {
                futures.get(r).cancel(true);
                results.add(null);
                stragglers.add(r);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                futures.forEach(f -> f.cancel(true));
                abort(-1, e);
                throw new LocalCommunicationException("interrupted while waiting for the ranks", e);
            }
        }
        boolean idle = settle();
        Failure f = failure.get();
        if (f == null) {
            return results;
        }
        Throwable root = f.cause();
        if (!idle) {
            root.addSuppressed(new LocalCommunicationException("copies of the failed run were still in flight"
                    + " after " + timeout + "; their buffers and the world's threads are leaked, not freed"));
        }
        for (Throwable e : errors) {
            if (e != root && !causedBy(e, root)) {
                root.addSuppressed(e);
            }
        }
        if (!stragglers.isEmpty()) {
            root.addSuppressed(new LocalCommunicationException("rank(s) " + stragglers
                    + " did not stop within " + timeout + " after the abort and were interrupted"));
        }
        if (root instanceof RuntimeException re) {
            throw re;
        }
        if (root instanceof Error err) {
            throw err;
        }
        throw new LocalCommunicationException("rank " + f.rank() + " failed: " + root, root);
    }

    /**
     * Marks the world failed because of {@code rank} (-1: the caller of {@link #run}); every wait on every
     * rank then throws. Only the first abort is kept.
     */
    public void abort(int rank, Throwable cause) {
        Objects.requireNonNull(cause, "cause");
        if (failure.compareAndSet(null, new Failure(rank, cause))) {
            LOG.debug("world aborted by rank {}: {}", rank, cause.toString());
        }
    }

    public boolean isAborted() {
        return failure.get() != null;
    }

    /**
     * Closes every rank's world communicator and stops the threads, waiting (up to the timeout) for copy
     * tasks still running so that nobody frees what they use once this returns. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (LocalCommunicator c : communicators) {
            c.close();
        }
        rankThreads.shutdown();
        copyThreads.shutdown(); // running copies notice the closed flag at their next poll
        try {
            long deadline = System.nanoTime() + timeoutNanos;
            if (!copyThreads.awaitTermination(timeoutNanos, TimeUnit.NANOSECONDS)
                    || !rankThreads.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                LOG.warn("in-process world closed with threads still running after {}; they are left to finish",
                        timeout);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * After a run: cancels the transfers its ranks left open (a failed rank's, or a strategy's that
     * forgot one) and waits, up to the timeout, until no copy task is running. Returns whether it got
     * there, i.e. whether the caller may free the ranks' buffers and transports.
     */
    private boolean settle() {
        boolean idle = true;
        for (LocalCommunicator.LocalTransfer t : List.copyOf(openTransfers)) {
            if (failure.get() == null) {
                LOG.warn("a transfer was neither awaited nor cancelled by its rank; cancelling it");
            }
            idle &= t.cancel();
        }
        long deadline = System.nanoTime() + timeoutNanos;
        synchronized (copiesInFlight) {
            while (copiesInFlight[0] > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    LOG.warn("{} copy task(s) still running {} after the run ended", copiesInFlight[0], timeout);
                    return false;
                }
                try {
                    copiesInFlight.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
        }
        return idle;
    }

    // ---- used by the groups and communicators ----

    long timeoutNanos() {
        return timeoutNanos;
    }

    boolean isClosed() {
        return closed;
    }

    /** Runs a receive's copy task on the world's copy threads, counted until it ends. */
    <T> Future<T> submitCopy(Callable<T> task) {
        synchronized (copiesInFlight) {
            copiesInFlight[0]++;
        }
        try {
            return copyThreads.submit(() -> {
                try {
                    return task.call();
                } finally {
                    synchronized (copiesInFlight) {
                        copiesInFlight[0]--;
                        copiesInFlight.notifyAll();
                    }
                }
            });
        } catch (RejectedExecutionException e) {
            synchronized (copiesInFlight) {
                copiesInFlight[0]--;
            }
            throw new LocalCommunicationException("the in-process world is closed", e);
        }
    }

    void opened(LocalCommunicator.LocalTransfer transfer) {
        openTransfers.add(transfer);
    }

    void closed(LocalCommunicator.LocalTransfer transfer) {
        openTransfers.remove(transfer);
    }

    void checkNotAborted(int worldRank, String operation) {
        Failure f = failure.get();
        if (f != null) {
            String who = f.rank() < 0 ? "the caller" : "rank " + f.rank();
            throw new LocalCommunicationException("rank " + worldRank + ": " + operation + " aborted because "
                    + who + " failed: " + f.cause().getMessage(), f.cause());
        }
        if (closed) {
            throw new LocalCommunicationException("rank " + worldRank + ": " + operation
                    + " interrupted because the world was closed");
        }
    }

    /** A timeout on {@code worldRank}: aborts the world with it (so the peers fail too) and returns it. */
    LocalCommunicationException timedOut(int worldRank, String detail) {
        LocalCommunicationException e = new LocalCommunicationException("rank " + worldRank + " timed out after "
                + timeout.toMillis() + " ms in " + detail);
        abort(worldRank, e);
        return e;
    }

    private void requireUsable() {
        if (closed) {
            throw new IllegalStateException("the local world is closed");
        }
        Failure f = failure.get();
        if (f != null) {
            throw new IllegalStateException("the local world was aborted by rank " + f.rank() + ": " + f.cause(),
                    f.cause());
        }
    }

    private static boolean causedBy(Throwable e, Throwable root) {
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            if (c == root) {
                return true;
            }
        }
        return false;
    }

    private static ThreadFactory daemonThreads(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + n.getAndIncrement());
            t.setDaemon(true);
            return t;
        };
    }
}
