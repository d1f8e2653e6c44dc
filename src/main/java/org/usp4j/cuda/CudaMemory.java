package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.MemorySegment;
import org.usp4j.tensor.DevicePointer;

/**
 * Copies between host and device memory and device memsets. Sizes are checked against the spans
 * before any native call. Host memory must be native (off-heap); asynchronous copies from or to
 * pageable memory are staged by CUDA and only asynchronous with {@link PinnedBuffer} memory.
 */
public final class CudaMemory {

    private CudaMemory() {
    }

    /** Copies all of {@code src} into the start of {@code dst}, waiting for completion. */
    public static void copyToDevice(MemorySegment src, DevicePointer dst) {
        requireNative(src);
        requireFits(src.byteSize(), dst.byteSize(), "host source", "device destination");
        Cuda.library();
        Cuda.check(cudaMemcpy(address(dst), src, src.byteSize(), cudaMemcpyHostToDevice()), "cudaMemcpy");
    }

    /** Copies all of {@code src} into the start of {@code dst}, waiting for completion. */
    public static void copyToHost(DevicePointer src, MemorySegment dst) {
        requireNative(dst);
        requireFits(src.byteSize(), dst.byteSize(), "device source", "host destination");
        Cuda.library();
        Cuda.check(cudaMemcpy(dst, address(src), src.byteSize(), cudaMemcpyDeviceToHost()), "cudaMemcpy");
    }

    /** Copies all of {@code src} into the start of {@code dst}, waiting for completion. */
    public static void copyDeviceToDevice(DevicePointer src, DevicePointer dst) {
        requireFits(src.byteSize(), dst.byteSize(), "device source", "device destination");
        Cuda.library();
        Cuda.check(cudaMemcpy(address(dst), address(src), src.byteSize(), cudaMemcpyDeviceToDevice()), "cudaMemcpy");
    }

    /** Queues a copy of all of {@code src} into {@code dst} on {@code stream}; keep {@code src} alive until it ran. */
    public static void copyToDeviceAsync(MemorySegment src, DevicePointer dst, CudaStream stream) {
        requireNative(src);
        requireFits(src.byteSize(), dst.byteSize(), "host source", "device destination");
        Cuda.check(cudaMemcpyAsync(address(dst), src, src.byteSize(), cudaMemcpyHostToDevice(), CudaStream.handleOf(stream)),
                "cudaMemcpyAsync");
    }

    /** Queues a copy of all of {@code src} into {@code dst} on {@code stream}; read {@code dst} after it ran. */
    public static void copyToHostAsync(DevicePointer src, MemorySegment dst, CudaStream stream) {
        requireNative(dst);
        requireFits(src.byteSize(), dst.byteSize(), "device source", "host destination");
        Cuda.check(cudaMemcpyAsync(dst, address(src), src.byteSize(), cudaMemcpyDeviceToHost(), CudaStream.handleOf(stream)),
                "cudaMemcpyAsync");
    }

    /** Queues a copy of all of {@code src} into {@code dst} on {@code stream}. */
    public static void copyDeviceToDeviceAsync(DevicePointer src, DevicePointer dst, CudaStream stream) {
        requireFits(src.byteSize(), dst.byteSize(), "device source", "device destination");
        Cuda.check(cudaMemcpyAsync(address(dst), address(src), src.byteSize(), cudaMemcpyDeviceToDevice(),
                CudaStream.handleOf(stream)), "cudaMemcpyAsync");
    }

    /**
     * Queues a strided device-to-device copy of {@code height} rows of {@code widthBytes} bytes; row
     * {@code r} starts at {@code r * srcPitch} in {@code src} and {@code r * dstPitch} in {@code dst}
     * ({@code cudaMemcpy2DAsync}). This moves head slices of bshd tensors without per-row calls.
     */
    public static void copy2DAsync(DevicePointer src, long srcPitch, DevicePointer dst, long dstPitch,
                                   long widthBytes, long height, CudaStream stream) {
        if (widthBytes < 0 || height < 0) {
            throw new IllegalArgumentException("negative 2-D copy extent: width " + widthBytes + " bytes, height " + height);
        }
        if (widthBytes > srcPitch || widthBytes > dstPitch) {
            throw new IllegalArgumentException("row width " + widthBytes + " exceeds a pitch (source " + srcPitch
                    + ", destination " + dstPitch + ")");
        }
        if (widthBytes == 0 || height == 0) {
            return;
        }
        requireFits(Math.addExact(Math.multiplyExact(height - 1, srcPitch), widthBytes), src.byteSize(),
                "2-D copy extent in the source", "source");
        requireFits(Math.addExact(Math.multiplyExact(height - 1, dstPitch), widthBytes), dst.byteSize(),
                "2-D copy extent in the destination", "destination");
        Cuda.check(cudaMemcpy2DAsync(address(dst), dstPitch, address(src), srcPitch, widthBytes, height,
                cudaMemcpyDeviceToDevice(), CudaStream.handleOf(stream)), "cudaMemcpy2DAsync");
    }

    /** Queues setting every byte of {@code dst} to {@code byteValue} (0..255) on {@code stream}. */
    public static void memsetAsync(DevicePointer dst, int byteValue, CudaStream stream) {
        if (byteValue < 0 || byteValue > 255) {
            throw new IllegalArgumentException("memset value must be a byte (0..255), got " + byteValue);
        }
        Cuda.check(cudaMemsetAsync(address(dst), byteValue, dst.byteSize(), CudaStream.handleOf(stream)), "cudaMemsetAsync");
    }

    static MemorySegment address(DevicePointer pointer) {
        return MemorySegment.ofAddress(pointer.address());
    }

    private static void requireNative(MemorySegment segment) {
        if (!segment.isNative()) {
            throw new IllegalArgumentException("host memory must be a native (off-heap) segment, got a heap segment of "
                    + segment.byteSize() + " bytes");
        }
    }

    private static void requireFits(long bytes, long capacity, String what, String where) {
        if (bytes > capacity) {
            throw new IllegalArgumentException(what + " of " + bytes + " bytes does not fit the " + where + " of "
                    + capacity + " bytes");
        }
    }
}
