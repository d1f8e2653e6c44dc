package org.usp4j.cpu;

import java.lang.foreign.Arena;
import java.util.concurrent.atomic.AtomicLong;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Scratch tensors in one shared arena: shared because in-process ranks are threads and the local
 * communicator copies between them. Closing frees the whole arena at once; any later access to its
 * tensors throws instead of reading freed memory. Every byte is reported to the backend's meter so
 * that leak tests can watch the live total.
 */
final class CpuTensorAllocator implements TensorAllocator {

    private final Arena arena = Arena.ofShared();
    private final AtomicLong liveBytes;
    private final AtomicLong peakBytes;
    private long allocatedBytes;
    private boolean closed;

    CpuTensorAllocator(AtomicLong liveBytes, AtomicLong peakBytes) {
        this.liveBytes = liveBytes;
        this.peakBytes = peakBytes;
    }

    @Override
    public synchronized Tensor allocate(DType dtype, long... shape) {
        if (closed) {
            throw new IllegalStateException("allocator is closed");
        }
        Tensor t = Tensor.allocate(arena, dtype, shape);
        long bytes = Math.max(t.byteSize(), 1);
        allocatedBytes += bytes;
        long live = liveBytes.addAndGet(bytes);
        peakBytes.accumulateAndGet(live, Math::max);
        return t;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        arena.close();
        liveBytes.addAndGet(-allocatedBytes);
    }
}
