package org.usp4j.comm.nccl;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.tensor.DevicePointer;

/**
 * {@link ExchangeBuffers} for {@link FakeNccl}: "device" buffers over host memory, the copies run in the
 * {@link FakeStream}'s order as on a GPU. Counts its closes, so tests can see it is freed once.
 */
final class HostExchangeBuffers implements ExchangeBuffers {

    // Never freed, like HostDeviceBackend's memory: a fake stream may copy into it after a failure.
    private final Arena arena = Arena.global();
    private final int capacity;
    private final MemorySegment send;
    private final MemorySegment recv;
    private volatile int[] host = new int[0];
    volatile int closes;

    HostExchangeBuffers(int capacity, int worldSize) {
        this.capacity = capacity;
        this.send = arena.allocate((long) capacity * Integer.BYTES, 64);
        this.recv = arena.allocate((long) capacity * Integer.BYTES * worldSize, 64);
    }

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public DevicePointer send() {
        return new DevicePointer(send.address(), send.byteSize(), HostDeviceBackend.DEVICE);
    }

    @Override
    public DevicePointer recv() {
        return new DevicePointer(recv.address(), recv.byteSize(), HostDeviceBackend.DEVICE);
    }

    @Override
    public void upload(int[] values, DeviceStream stream) {
        int[] copy = values.clone(); // taken now, as cudaMemcpyAsync reads pinned memory the caller keeps
        ((FakeStream) stream).enqueue(() -> MemorySegment.copy(copy, 0, send, ValueLayout.JAVA_INT, 0, copy.length));
    }

    @Override
    public void download(int count, DeviceStream stream) {
        ((FakeStream) stream).enqueue(() -> host = recv.asSlice(0, (long) count * Integer.BYTES).toArray(ValueLayout.JAVA_INT));
    }

    @Override
    public int[] downloaded(int count) {
        int[] h = host;
        if (h.length != count) {
            throw new IllegalStateException("downloaded " + h.length + " ints, asked for " + count);
        }
        return h;
    }

    @Override
    public void close() {
        closes++; // counted, not freed (see the arena)
    }
}
