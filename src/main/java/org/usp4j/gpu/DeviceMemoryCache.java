package org.usp4j.gpu;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.cuda.CudaStream;

/**
 * Device memory a backend's allocators gave back, kept for the next allocation of the same size on the
 * same stream, so that strategies which allocate the same scratch tensors on every call make no
 * allocation or free calls in steady state. Reuse needs no synchronisation: a block is handed out again
 * only in the order of the one stream it was used on, as {@code cudaFreeAsync} would let the pool
 * reuse it. Work on other streams that read a block (a peer's copy) is ordered before the give-back by
 * the same events that order a stream-ordered free.
 *
 * <p>At most {@link #LIMIT_BYTES} are kept; beyond that blocks are freed. When an allocation fails,
 * the kept blocks are freed and it is tried once more.
 */
final class DeviceMemoryCache implements AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(DeviceMemoryCache.class);
    /** Blocks come in multiples of this, so that nearby sizes share a bucket. */
    static final long GRANULE = 512;
    static final long LIMIT_BYTES = 4L << 30;

    private final DeviceCalls calls;
    private final CudaStream stream;
    private final Map<Long, ArrayDeque<DeviceCalls.Allocation>> kept = new HashMap<>();
    private long keptBytes;
    private boolean closed;

    DeviceMemoryCache(DeviceCalls calls, CudaStream stream) {
        this.calls = calls;
        this.stream = stream;
    }

    static long blockSize(long bytes) {
        return Math.multiplyExact((bytes + GRANULE - 1) / GRANULE, GRANULE);
    }

    /** A block of at least {@code bytes}, contents undefined. */
    synchronized DeviceCalls.Allocation take(long bytes) {
        long size = blockSize(bytes);
        ArrayDeque<DeviceCalls.Allocation> bucket = kept.get(size);
        if (bucket != null && !bucket.isEmpty()) {
            keptBytes -= size;
            return bucket.pop();
        }
        try {
            return calls.allocate(size, stream);
        } catch (RuntimeException e) {
            if (keptBytes == 0) {
                throw e;
            }
            LOG.debug("allocating {} bytes failed ({}); freeing {} kept bytes and trying again", size, e.getMessage(),
                    keptBytes);
            freeKept();
            return calls.allocate(size, stream);
        }
    }

    /** Takes a block back (or frees it when closed or full). */
    synchronized void give(DeviceCalls.Allocation block) {
        long size = block.pointer().byteSize();
        if (closed || keptBytes + size > LIMIT_BYTES) {
            calls.free(block);
            return;
        }
        kept.computeIfAbsent(size, s -> new ArrayDeque<>()).push(block);
        keptBytes += size;
    }

    synchronized long keptBytes() {
        return keptBytes;
    }

    private void freeKept() {
        for (ArrayDeque<DeviceCalls.Allocation> bucket : kept.values()) {
            for (DeviceCalls.Allocation block : bucket) {
                calls.free(block);
            }
        }
        kept.clear();
        keptBytes = 0;
    }

    /** Frees every kept block; blocks given back later are freed at once. */
    @Override
    public synchronized void close() {
        closed = true;
        freeKept();
    }
}
