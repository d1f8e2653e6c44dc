package org.usp4j.gpu;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaEvent;
import org.usp4j.cuda.CudaKernel;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.CudaStream;
import org.usp4j.cuda.DeviceBuffer;
import org.usp4j.cuda.Dim3;
import org.usp4j.cuda.KernelArg;
import org.usp4j.cuda.PinnedBuffer;
import org.usp4j.cuda.PtxModule;
import org.usp4j.cudnn.Cudnn;
import org.usp4j.cudnn.CudnnHandle;
import org.usp4j.tensor.DevicePointer;

/** {@link DeviceCalls} on the CUDA runtime and cuDNN, through the typed wrappers. */
final class NativeDeviceCalls implements DeviceCalls {

    private record NativeAllocation(DeviceBuffer buffer, DevicePointer pointer) implements Allocation {
    }

    private record NativeEvent(CudaEvent event) implements Event {
    }

    private record NativeStaging(PinnedBuffer buffer) implements HostStaging {
        @Override
        public MemorySegment segment() {
            return buffer.segment();
        }
    }

    private record NativeKernel(CudaKernel kernel) implements Kernel {
        @Override
        public String name() {
            return kernel.name();
        }
    }

    private record NativeCudnn(CudnnHandle handle) implements CudnnContext {
    }

    /** The element-wise module of each device, loaded on first use; it lives as long as the CUDA context. */
    private final Map<Integer, PtxModule> modules = new ConcurrentHashMap<>();
    private final Map<Integer, Integer> multiprocessors = new ConcurrentHashMap<>();

    @Override
    public void setDevice(int device) {
        Cuda.setDevice(device);
    }

    @Override
    public CudaStream createStream() {
        return CudaStream.create();
    }

    @Override
    public void destroyStream(CudaStream stream) {
        stream.close();
    }

    @Override
    public void synchronize(CudaStream stream) {
        stream.synchronize();
    }

    @Override
    public void waitFor(CudaStream stream, Event event) {
        stream.waitFor(((NativeEvent) event).event);
    }

    @Override
    public Event createEvent() {
        return new NativeEvent(CudaEvent.create(false));
    }

    @Override
    public void record(Event event, CudaStream stream) {
        ((NativeEvent) event).event.record(stream);
    }

    @Override
    public void destroy(Event event) {
        ((NativeEvent) event).event.close();
    }

    @Override
    public Allocation allocate(long bytes, CudaStream stream) {
        DeviceBuffer buffer = DeviceBuffer.allocateAsync(bytes, stream);
        return new NativeAllocation(buffer, buffer.pointer());
    }

    @Override
    public void free(Allocation allocation) {
        ((NativeAllocation) allocation).buffer.close();
    }

    @Override
    public void memset(DevicePointer dst, int byteValue, CudaStream stream) {
        CudaMemory.memsetAsync(dst, byteValue, stream);
    }

    @Override
    public void copy(DevicePointer src, DevicePointer dst, CudaStream stream) {
        CudaMemory.copyDeviceToDeviceAsync(src, dst, stream);
    }

    @Override
    public void copy2D(DevicePointer src, long srcPitch, DevicePointer dst, long dstPitch, long widthBytes, long height,
                       CudaStream stream) {
        CudaMemory.copy2DAsync(src, srcPitch, dst, dstPitch, widthBytes, height, stream);
    }

    @Override
    public void copyToDevice(MemorySegment src, DevicePointer dst, CudaStream stream) {
        CudaMemory.copyToDeviceAsync(src, dst, stream);
    }

    @Override
    public void copyToHost(DevicePointer src, MemorySegment dst, CudaStream stream) {
        CudaMemory.copyToHostAsync(src, dst, stream);
    }

    @Override
    public HostStaging allocatePinned(long bytes) {
        return new NativeStaging(PinnedBuffer.allocate(bytes));
    }

    @Override
    public void free(HostStaging staging) {
        ((NativeStaging) staging).buffer.close();
    }

    @Override
    public Kernel kernel(String name) {
        int device = Cuda.currentDevice();
        PtxModule module = modules.computeIfAbsent(device, d -> PtxModule.load(ElementwiseKernels.ptx()));
        return new NativeKernel(module.kernel(name));
    }

    @Override
    public int multiprocessorCount() {
        return multiprocessors.computeIfAbsent(Cuda.currentDevice(), d -> Cuda.deviceProperties(d).multiprocessorCount());
    }

    @Override
    public void launch(Kernel kernel, Dim3 grid, Dim3 block, CudaStream stream, List<KernelArg> args) {
        ((NativeKernel) kernel).kernel.launch(grid, block, 0, stream, args);
    }

    @Override
    public long cudnnVersion() {
        return Cudnn.versionCode();
    }

    @Override
    public CudnnContext createCudnn(CudaStream stream) {
        CudnnHandle handle = CudnnHandle.create();
        try {
            handle.setStream(stream);
        } catch (RuntimeException | Error e) {
            handle.close();
            throw e;
        }
        return new NativeCudnn(handle);
    }

    @Override
    public void destroy(CudnnContext cudnn) {
        ((NativeCudnn) cudnn).handle.close();
    }

    @Override
    public Plan buildPlan(CudnnContext cudnn, GraphSpec spec, Map<Long, Float> byValue, Map<Long, int[]> deviceInts) {
        CudnnHandle handle = ((NativeCudnn) cudnn).handle;
        return SdpaPlan.build(CudnnGraph.build(spec, handle), handle, byValue, deviceInts);
    }

    @Override
    public void execute(CudnnContext cudnn, Plan plan, Map<Long, Long> addresses, long workspace) {
        ((SdpaPlan) plan).execute(((NativeCudnn) cudnn).handle, addresses, workspace);
    }

    @Override
    public void destroy(Plan plan) {
        ((SdpaPlan) plan).close();
    }
}
