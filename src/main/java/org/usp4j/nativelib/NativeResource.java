package org.usp4j.nativelib;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Base of every owner of a native handle or allocation: the resource is released exactly once,
 * by the first {@link #close()} (or by a subclass operation that ends it, such as an abort), and
 * any use after that throws {@link IllegalStateException} instead of passing a dangling handle to
 * native code. Closing concurrently with use on another thread is the caller's error.
 */
public abstract class NativeResource implements AutoCloseable {

    private final AtomicBoolean closed = new AtomicBoolean();

    protected NativeResource() {
    }

    /** What this is, for messages ("device buffer", "NCCL communicator"). */
    protected abstract String describe();

    /** Frees the native resource; called at most once. */
    protected abstract void release();

    /** Throws {@link IllegalStateException} if this resource was closed. */
    protected final void checkOpen() {
        if (closed.get()) {
            throw new IllegalStateException(describe() + " is closed");
        }
    }

    /** Marks this closed without {@link #release()}; true for the one caller that wins. */
    protected final boolean markClosed() {
        return closed.compareAndSet(false, true);
    }

    public final boolean isClosed() {
        return closed.get();
    }

    /** Releases the resource the first time; later calls do nothing. */
    @Override
    public final void close() {
        if (markClosed()) {
            release();
        }
    }
}
