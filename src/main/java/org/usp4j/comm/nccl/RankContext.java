package org.usp4j.comm.nccl;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.launch.store.StoreClient;

/**
 * What all communicators of one rank share: its place in the world, its device and two streams (compute:
 * the backend's, where collectives run; comm: the rank's own, where ring transfers overlap compute), the
 * traffic counter, the store (or, for a world over a caller's communicator, none and the buffers its
 * barrier and split agreement go through NCCL with), the watchdog, and the communicators still open (the
 * world closes them).
 */
final class RankContext {

    final int worldRank;
    final int worldSize;
    final int device;
    final DeviceStream compute;
    final DeviceStream comm;
    final TrafficCounter traffic = new TrafficCounter();
    /** Null for a world over a caller's communicator, which meets over NCCL through {@link #exchange}. */
    final StoreClient store;
    /** Null where there is a store. */
    final ExchangeBuffers exchange;
    final Duration timeout;
    final Watchdog watchdog;
    final NcclEndpoint.Factory nccl;
    final List<NcclGroupCommunicator> open = new CopyOnWriteArrayList<>();
    /** Held by every NCCL call of the rank, and by the watchdog while it aborts (see {@link EndpointGuard}). */
    final ReentrantLock ncclLock = new ReentrantLock();

    RankContext(int worldRank, int worldSize, int device, DeviceStream compute, DeviceStream comm, StoreClient store,
                Duration timeout, Watchdog watchdog, NcclEndpoint.Factory nccl) {
        this(worldRank, worldSize, device, compute, comm, store, null, timeout, watchdog, nccl);
    }

    RankContext(int worldRank, int worldSize, int device, DeviceStream compute, DeviceStream comm, StoreClient store,
                ExchangeBuffers exchange, Duration timeout, Watchdog watchdog, NcclEndpoint.Factory nccl) {
        if ((store == null) == (exchange == null)) {
            throw new IllegalArgumentException("a rank meets through a store or through exchange buffers, not both");
        }
        this.exchange = exchange;
        this.worldRank = worldRank;
        this.worldSize = worldSize;
        this.device = device;
        this.compute = compute;
        this.comm = comm;
        this.store = store;
        this.timeout = timeout;
        this.watchdog = watchdog;
        this.nccl = nccl;
    }

    /** The rank's failure as a fresh exception to throw here, if it failed. */
    RankFailureException failed() {
        return watchdog.failure()
                .map(f -> new RankFailureException(f.getMessage(), f.missingRanks(), f))
                .orElse(null);
    }

    /**
     * Runs a blocking NCCL call that cannot be interrupted (init, split) on a helper thread and waits for
     * it while the watchdog times {@code op}: when the watchdog fails the rank, this throws at once
     * instead of waiting on a call that may never return. A result that arrives after that is aborted.
     */
    NcclEndpoint callBounded(PendingOperation op, Supplier<NcclEndpoint> call) {
        CompletableFuture<NcclEndpoint> result = new CompletableFuture<>();
        Thread.ofPlatform().daemon().name("usp4j-nccl-" + op.what() + "-rank-" + worldRank).start(() -> {
            try {
                nccl.bindThread();
                result.complete(call.get());
            } catch (RuntimeException | Error e) {
                result.completeExceptionally(e);
            }
        });
        long backstop = System.nanoTime() + timeout.toNanos() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                NcclEndpoint endpoint = result.get(20, TimeUnit.MILLISECONDS);
                op.enqueued(null);
                return endpoint;
            } catch (TimeoutException e) {
                RankFailureException f = failed();
                if (f == null && System.nanoTime() - backstop > 0) { // the watchdog itself is gone
                    f = watchdog.fail(new RankFailureException("rank " + worldRank + ": " + op + " did not return within "
                            + timeout.toMillis() + " ms", List.of(), null));
                }
                if (f != null) {
                    result.thenAccept(NcclEndpoint::abort);
                    throw f;
                }
            } catch (ExecutionException e) {
                watchdog.abandon(op);
                if (e.getCause() instanceof RuntimeException re) {
                    throw re;
                }
                throw (Error) e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                result.thenAccept(NcclEndpoint::abort);
                watchdog.abandon(op);
                throw new IllegalStateException("rank " + worldRank + ": interrupted while waiting for " + op, e);
            }
        }
    }

    /**
     * Waits on the host until {@code op}'s device work has run (a barrier or split agreement over NCCL):
     * throws the rank's failure as soon as the watchdog records one, so a peer that never comes ends in
     * the watchdog's error at the timeout, never in a hang.
     */
    void awaitDevice(PendingOperation op) {
        long backstop = System.nanoTime() + timeout.toNanos() + TimeUnit.SECONDS.toNanos(30);
        while (!op.isComplete()) {
            RankFailureException f = failed();
            if (f == null && System.nanoTime() - backstop > 0) { // the watchdog itself is gone
                f = watchdog.fail(new RankFailureException("rank " + worldRank + ": " + op + " did not complete within "
                        + timeout.toMillis() + " ms", List.of(), null));
            }
            if (f != null) {
                throw f;
            }
            if (Thread.interrupted()) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("rank " + worldRank + ": interrupted while waiting for " + op);
            }
            LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(200));
        }
    }

    /** Waits until no operation of this rank is incomplete, or the rank failed, or the timeout passed. */
    boolean awaitQuiet() {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (watchdog.hasIncomplete() && watchdog.failure().isEmpty()) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return watchdog.failure().isEmpty();
    }
}
