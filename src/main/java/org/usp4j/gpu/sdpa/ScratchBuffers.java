package org.usp4j.gpu.sdpa;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.cuda.CudaStream;
import org.usp4j.gpu.DeviceCalls;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/**
 * The attention kernel's per-call scratch tensors, carved from memory kept between calls, so that a call
 * in steady state allocates and frees nothing. All use is on one stream, so memory handed out by one call
 * may be handed out again by the next: stream order puts the next call's writes after this one's reads.
 * A call that needs more than there is gets an extra block; {@link #endCall} then replaces all blocks
 * with one of the total size (freed and allocated in stream order, after the call's work), so the
 * second call of a kind allocates nothing.
 */
final class ScratchBuffers implements AutoCloseable {

    /** Sub-buffers start on 256-byte boundaries, like cudaMalloc's, so cuDNN's alignment holds. */
    static final long ALIGNMENT = 256;

    private final DeviceCalls calls;
    private final CudaStream stream;
    private final List<DeviceCalls.Allocation> blocks = new ArrayList<>();
    private long used;      // in the last block
    private long requested; // by the current call, over all blocks
    private boolean closed;

    ScratchBuffers(DeviceCalls calls, CudaStream stream) {
        this.calls = calls;
        this.stream = stream;
    }

    static long align(long bytes) {
        return (bytes + ALIGNMENT - 1) & -ALIGNMENT;
    }

    /** Starts a call: everything handed out before may be handed out again. */
    void beginCall() {
        requireOpen();
        used = 0;
        requested = 0;
    }

    /** Ends a call: memory it needed beyond one block becomes one block for the next call. */
    void endCall() {
        if (!closed && blocks.size() > 1) {
            long total = requested;
            freeAll();
            blocks.add(calls.allocate(total, stream));
        }
    }

    /** A contiguous tensor of undefined contents, valid until the next {@link #beginCall}. */
    Tensor tensor(DType dtype, long... shape) {
        return Tensor.device(bytes(Math.max(16, Math.multiplyExact(Tensor.numel(shape), dtype.byteSize()))), dtype, shape);
    }

    /** {@code bytes} (> 0) of undefined contents, 256-byte aligned, valid until the next {@link #beginCall}. */
    DevicePointer bytes(long bytes) {
        requireOpen();
        long size = align(bytes);
        requested += size;
        DeviceCalls.Allocation last = blocks.isEmpty() ? null : blocks.getLast();
        if (last == null || used + size > last.pointer().byteSize()) {
            last = calls.allocate(size, stream);
            blocks.add(last);
            used = 0;
        }
        DevicePointer p = last.pointer().slice(used, bytes);
        used += size;
        return p;
    }

    private void freeAll() {
        for (int i = blocks.size() - 1; i >= 0; i--) {
            calls.free(blocks.get(i));
        }
        blocks.clear();
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("attention scratch memory is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            freeAll();
        }
    }
}
