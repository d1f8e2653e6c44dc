package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.nativelib.NativeResource;

/**
 * Owned page-locked host memory ({@code cudaHostAlloc}), the source and target of truly
 * asynchronous copies. Its {@link #segment()} becomes inaccessible when the buffer is closed, so
 * no Java code can touch the memory after {@code cudaFreeHost}.
 */
public final class PinnedBuffer extends NativeResource {

    private final Arena arena;
    private final MemorySegment segment;
    private final long address;

    @SuppressWarnings("restricted") // the pinned allocation is exactly byteSize bytes, valid until release()
    private PinnedBuffer(long address, long byteSize) {
        this.address = address;
        this.arena = Arena.ofShared();
        this.segment = MemorySegment.ofAddress(address).reinterpret(byteSize, arena, null);
    }

    /** {@code byteSize} bytes of pinned host memory, contents undefined. */
    public static PinnedBuffer allocate(long byteSize) {
        DeviceBuffer.requirePositive(byteSize);
        Cuda.library();
        try (Arena temp = Arena.ofConfined()) {
            MemorySegment out = temp.allocate(ValueLayout.ADDRESS);
            Cuda.check(cudaHostAlloc(out, byteSize, cudaHostAllocDefault()), "cudaHostAlloc");
            return new PinnedBuffer(out.get(ValueLayout.ADDRESS, 0).address(), byteSize);
        }
    }

    /** The host memory; valid (and accessible) until closed. */
    public MemorySegment segment() {
        checkOpen();
        return segment;
    }

    public long byteSize() {
        return segment.byteSize();
    }

    @Override
    protected String describe() {
        return "pinned host buffer of " + segment.byteSize() + " bytes";
    }

    @Override
    protected void release() {
        arena.close();
        Cuda.check(cudaFreeHost(MemorySegment.ofAddress(address)), "cudaFreeHost");
    }
}
