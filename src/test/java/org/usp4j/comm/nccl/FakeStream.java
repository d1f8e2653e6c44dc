package org.usp4j.comm.nccl;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A {@link DeviceStream} for tests. Queued: work runs in order on a thread of its own, as a GPU runs a
 * stream, so NCCL calls return at once and a hung receive leaves its marker incomplete. Inline: work
 * runs on the calling thread, so host code after a call (the CPU kernels of {@link HostDeviceBackend})
 * sees its result; a wait for a marker then blocks the caller.
 */
final class FakeStream implements DeviceStream, AutoCloseable {

    private final String name;
    private final ExecutorService executor; // null: inline
    private final AtomicReference<Throwable> firstError = new AtomicReference<>();

    private FakeStream(String name, ExecutorService executor) {
        this.name = name;
        this.executor = executor;
    }

    static FakeStream queued(String name) {
        return new FakeStream(name, Executors.newSingleThreadExecutor(
                Thread.ofPlatform().daemon().name("fake-stream-" + name).factory()));
    }

    static FakeStream inline(String name) {
        return new FakeStream(name, null);
    }

    String name() {
        return name;
    }

    /** Runs {@code work} in stream order. Inline, its exception reaches the caller; queued, it is kept. */
    void enqueue(Runnable work) {
        if (executor == null) {
            work.run();
            return;
        }
        executor.execute(() -> {
            try {
                work.run();
            } catch (RuntimeException | Error e) {
                firstError.compareAndSet(null, e);
            }
        });
    }

    /** The first exception queued work threw, if any. */
    Throwable error() {
        return firstError.get();
    }

    @Override
    public DeviceMarker mark() {
        Marker m = new Marker();
        enqueue(() -> m.done.complete(null));
        return m;
    }

    @Override
    public void waitFor(DeviceMarker marker) {
        CompletableFuture<Void> done = ((Marker) marker).done; // the state at the time of the call, as CUDA
        enqueue(done::join);
    }

    /** Blocks until everything enqueued so far has run (a stream synchronize). */
    void synchronize() {
        CompletableFuture<Void> done = new CompletableFuture<>();
        enqueue(() -> done.complete(null));
        done.join();
    }

    @Override
    public void close() {
        if (executor != null) {
            executor.shutdownNow();
        }
    }

    @Override
    public String toString() {
        return name;
    }

    static final class Marker implements DeviceMarker {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        volatile boolean closed;

        @Override
        public boolean isComplete() {
            return done.isDone();
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
