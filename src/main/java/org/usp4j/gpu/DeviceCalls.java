package org.usp4j.gpu;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import org.usp4j.cuda.CudaStream;
import org.usp4j.cuda.Dim3;
import org.usp4j.cuda.KernelArg;
import org.usp4j.tensor.DevicePointer;

/**
 * The CUDA and cuDNN operations the GPU orchestration ({@link CudaBackend}, its allocator and transport,
 * {@code gpu.sdpa.CudnnAttention}) issues: the seam between deciding what to enqueue and the
 * native calls. {@link #NATIVE} delegates to the typed wrappers of {@code org.usp4j.cuda} and
 * {@code org.usp4j.cudnn}; tests count the calls through a double that needs no GPU.
 *
 * <p>Callers check their arguments before calling. Device memory is only ever an address and a size
 * ({@link DevicePointer}), never a dereferenceable segment.
 */
public interface DeviceCalls {

    /** The real CUDA runtime and cuDNN. */
    DeviceCalls NATIVE = new NativeDeviceCalls();

    /** Stream-ordered device memory; freed once, by {@link #free}. */
    interface Allocation {
        DevicePointer pointer();
    }

    /** A timing-free event for ordering streams; destroyed once, by {@link #destroy(Event)}. */
    interface Event {
    }

    /** Pinned host memory for transfers; freed once, by {@link #free(HostStaging)}. */
    interface HostStaging {
        MemorySegment segment();
    }

    /** One of our element-wise kernels on the current device. */
    interface Kernel {
        String name();
    }

    /** A cuDNN handle bound to one stream; destroyed once, by {@link #destroy(CudnnContext)}. */
    interface CudnnContext {
    }

    /** A finalized cuDNN execution plan for one graph; destroyed once, by {@link #destroy(Plan)}. */
    interface Plan {
        GraphSpec spec();

        long workspaceBytes();
    }

    // Devices and streams

    /** Makes {@code device} current for the calling thread. */
    void setDevice(int device);

    /** A non-blocking stream of usp4j's own. */
    CudaStream createStream();

    void destroyStream(CudaStream stream);

    /** Blocks the host until everything queued on {@code stream} has run. */
    void synchronize(CudaStream stream);

    /** Later work on {@code stream} waits for {@code event}; the host does not wait. */
    void waitFor(CudaStream stream, Event event);

    // Events

    Event createEvent();

    /** Captures the work queued so far on {@code stream}. */
    void record(Event event, CudaStream stream);

    /** Frees the event; a recorded one is released once it completes, and waits on it stay valid. */
    void destroy(Event event);

    // Memory

    /** {@code bytes} (> 0) from the current device's pool, in {@code stream} order; contents undefined. */
    Allocation allocate(long bytes, CudaStream stream);

    /** Frees in the order of the allocation's stream. */
    void free(Allocation allocation);

    /** Sets every byte of {@code dst} to {@code byteValue}, in stream order. */
    void memset(DevicePointer dst, int byteValue, CudaStream stream);

    /** Device-to-device copy of all of {@code src} into {@code dst}, in stream order. */
    void copy(DevicePointer src, DevicePointer dst, CudaStream stream);

    /** {@code height} rows of {@code widthBytes}, row r at r * pitch on each side, in stream order. */
    void copy2D(DevicePointer src, long srcPitch, DevicePointer dst, long dstPitch, long widthBytes, long height,
                CudaStream stream);

    /** Host (pinned) to device, in stream order. */
    void copyToDevice(MemorySegment src, DevicePointer dst, CudaStream stream);

    /** Device to host (pinned), in stream order; read {@code dst} after a synchronize. */
    void copyToHost(DevicePointer src, MemorySegment dst, CudaStream stream);

    HostStaging allocatePinned(long bytes);

    void free(HostStaging staging);

    // Kernels

    /** The element-wise kernel {@code name} of the current device (its module is loaded once). */
    Kernel kernel(String name);

    /** The current device's multiprocessors (kernels size their grids by it). */
    int multiprocessorCount();

    void launch(Kernel kernel, Dim3 grid, Dim3 block, CudaStream stream, List<KernelArg> args);

    // cuDNN

    /** The loaded cuDNN's version code, e.g. 91900 for 9.19.0. */
    long cudnnVersion();

    /** A cuDNN handle on the current device whose executions go to {@code stream}. */
    CudnnContext createCudnn(CudaStream stream);

    void destroy(CudnnContext cudnn);

    /**
     * Lowers {@code spec} and finalizes a plan for it, binding by-value scalars and small INT32 device
     * constants that are the same for every execution.
     */
    Plan buildPlan(CudnnContext cudnn, GraphSpec spec, Map<Long, Float> byValue, Map<Long, int[]> deviceInts);

    /**
     * Enqueues one execution of {@code plan}: {@code addresses} maps every bound uid that is not a constant
     * of the plan to a device address; {@code workspace} holds at least the plan's workspace bytes.
     */
    void execute(CudnnContext cudnn, Plan plan, Map<Long, Long> addresses, long workspace);

    void destroy(Plan plan);
}
