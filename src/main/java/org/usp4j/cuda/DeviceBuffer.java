package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.nativelib.NativeResource;
import org.usp4j.tensor.DevicePointer;

/**
 * Owned device memory. Java code sees it only as a {@link DevicePointer} (address, size, device),
 * never as a {@link MemorySegment} it could dereference. Freed once on {@link #close()}.
 */
public final class DeviceBuffer extends NativeResource {

    private final DevicePointer pointer;
    private final CudaStream allocationStream;

    private DeviceBuffer(DevicePointer pointer, CudaStream allocationStream) {
        this.pointer = pointer;
        this.allocationStream = allocationStream;
    }

    /** {@code byteSize} bytes on the current device ({@code cudaMalloc}); contents undefined. */
    public static DeviceBuffer allocate(long byteSize) {
        requirePositive(byteSize);
        int device = Cuda.currentDevice();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cuda.check(cudaMalloc(out, byteSize), "cudaMalloc");
            return new DeviceBuffer(new DevicePointer(out.get(ValueLayout.ADDRESS, 0).address(), byteSize, device), null);
        }
    }

    /**
     * {@code byteSize} bytes from the current device's memory pool, ordered on {@code stream}
     * ({@code cudaMallocAsync}); {@link #close()} frees it on the same stream while that stream is
     * open, else synchronously.
     */
    public static DeviceBuffer allocateAsync(long byteSize, CudaStream stream) {
        requirePositive(byteSize);
        MemorySegment streamHandle = CudaStream.handleOf(stream);
        int device = Cuda.currentDevice();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cuda.check(cudaMallocAsync(out, byteSize, streamHandle), "cudaMallocAsync");
            return new DeviceBuffer(new DevicePointer(out.get(ValueLayout.ADDRESS, 0).address(), byteSize, device), stream);
        }
    }

    /** The memory as address, size and device; valid until closed. */
    public DevicePointer pointer() {
        checkOpen();
        return pointer;
    }

    public long byteSize() {
        return pointer.byteSize();
    }

    public int device() {
        return pointer.device();
    }

    @Override
    protected String describe() {
        return "device buffer of " + pointer.byteSize() + " bytes";
    }

    @Override
    protected void release() {
        MemorySegment address = MemorySegment.ofAddress(pointer.address());
        if (allocationStream != null && !allocationStream.isClosed()) {
            Cuda.check(cudaFreeAsync(address, allocationStream.handle()), "cudaFreeAsync");
        } else {
            Cuda.check(cudaFree(address), "cudaFree");
        }
    }

    static void requirePositive(long byteSize) {
        if (byteSize <= 0) {
            throw new IllegalArgumentException("allocation size must be > 0 bytes, got " + byteSize);
        }
    }
}
