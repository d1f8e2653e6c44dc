package org.usp4j.gpu;

import java.util.Arrays;
import java.util.Objects;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.cuda.CudaStream;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * One rank's GPU: all work for a call goes on one CUDA stream (the rank's own, or the caller's), with
 * cuDNN doing the attention blocks and our PTX kernels the element-wise steps. Copies between equally
 * laid out buffers become {@code cudaMemcpyAsync}, head slices (the Ulysses packing) become
 * {@code cudaMemcpy2DAsync}, anything else a strided kernel. Host tensors may be copied to and from the
 * device (dealing and gathering); those copies wait for the stream. Every CUDA and cuDNN call goes
 * through one {@link DeviceCalls}. The attention kernel comes from an {@link AttentionFactory} (cuDNN's
 * lives in {@code gpu.sdpa}, whose {@code CudnnBackends} makes backends with it), so this package never
 * names the kernel's.
 */
public final class CudaBackend implements Backend, LocalTransport.Source {

    /** A backend's attention kernel: it holds device resources, freed once when the backend closes. */
    public interface Attention extends AttentionKernel, AutoCloseable {
        @Override
        void close();
    }

    /** Makes a backend's kernel once the backend's stream and memory exist. */
    @FunctionalInterface
    public interface AttentionFactory {
        Attention create(CudaBackend backend);
    }

    private final DeviceCalls calls;
    private final int device;
    private final CudaStream stream;
    private final boolean ownsStream;
    private final ElementwiseKernels kernels;
    private final DeviceMemoryCache memory;
    private final Attention attention;
    private DeviceTransport transport;
    private boolean closed;

    private CudaBackend(DeviceCalls calls, int device, CudaStream stream, boolean ownsStream,
                        AttentionFactory attention) {
        this.calls = calls;
        this.device = device;
        this.stream = stream;
        this.ownsStream = ownsStream;
        try {
            this.kernels = new ElementwiseKernels(calls);
            this.memory = new DeviceMemoryCache(calls, stream);
            this.attention = attention.create(this);
        } catch (RuntimeException | Error e) {
            if (ownsStream) {
                calls.destroyStream(stream);
            }
            throw e;
        }
    }

    /** A backend on {@code device} with a stream of its own and the kernel {@code attention} makes. */
    public static CudaBackend create(int device, AttentionFactory attention) {
        return create(device, DeviceCalls.NATIVE, attention);
    }

    /** As {@link #create(int, AttentionFactory)}, issuing its CUDA and cuDNN calls through {@code calls}. */
    public static CudaBackend create(int device, DeviceCalls calls, AttentionFactory attention) {
        requireDeviceOrdinal(device);
        Objects.requireNonNull(attention, "attention");
        calls.setDevice(device);
        return new CudaBackend(calls, device, calls.createStream(), true, attention);
    }

    /** A backend that enqueues on the caller's {@code stream} (not closed with the backend). */
    public static CudaBackend onStream(int device, CudaStream stream, AttentionFactory attention) {
        requireDeviceOrdinal(device);
        Objects.requireNonNull(attention, "attention");
        DeviceCalls.NATIVE.setDevice(device);
        return new CudaBackend(DeviceCalls.NATIVE, device, Objects.requireNonNull(stream, "stream"), false,
                attention);
    }

    private static void requireDeviceOrdinal(int device) {
        if (device < 0) {
            throw new IllegalArgumentException("device ordinal must be >= 0, got " + device);
        }
    }

    /** Where this backend's CUDA and cuDNN calls go. */
    public DeviceCalls calls() {
        return calls;
    }

    public int device() {
        return device;
    }

    public CudaStream stream() {
        requireOpen();
        return stream;
    }

    ElementwiseKernels kernels() {
        return kernels;
    }

    /** How this rank exchanges buffers with other in-process ranks on the same GPU. */
    @Override
    public synchronized LocalTransport localTransport() {
        requireOpen();
        if (transport == null) {
            transport = new DeviceTransport(this, calls);
        }
        return transport;
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public AttentionKernel kernel() {
        requireOpen();
        return attention;
    }

    @Override
    public TensorAllocator newAllocator() {
        requireOpen();
        return new DeviceTensorAllocator(memory);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        requireOpen();
        if (!src.sameShape(dst)) {
            throw new IllegalArgumentException("copy from " + src.describe() + " to " + dst.describe());
        }
        if (src.numel() == 0) {
            return;
        }
        if (src.isHost() && dst.isHost()) {
            HostTensors.copy(src, dst);
        } else if (src.isDevice() && dst.isDevice()) {
            copyOnDevice(src, dst);
        } else if (src.isHost()) {
            upload(src, dst);
        } else {
            download(src, dst);
        }
    }

    private void copyOnDevice(Tensor src, Tensor dst) {
        requireThisDevice(src);
        requireThisDevice(dst);
        StridedGeometry g = StridedGeometry.of(src, dst);
        if (src.dtype() == dst.dtype()) {
            long e = src.dtype().byteSize();
            if (g.isContiguous(0) && g.isContiguous(1)) {
                calls.copy(src.contiguousDevicePointer(), dst.contiguousDevicePointer(), stream);
                return;
            }
            if (g.isPitchedRows()) {
                long rows = g.shape()[0];
                long width = g.shape()[1] * e;
                long srcPitch = g.strides()[0][0] * e;
                long dstPitch = g.strides()[1][0] * e;
                calls.copy2D(src.devicePointer().slice(src.offset() * e, (rows - 1) * srcPitch + width), srcPitch,
                        dst.devicePointer().slice(dst.offset() * e, (rows - 1) * dstPitch + width), dstPitch,
                        width, rows, stream);
                return;
            }
        }
        kernels.copy(src, dst, stream);
    }

    /** Host to device: convert and pack into pinned staging memory, one transfer, then place on the device. */
    private void upload(Tensor src, Tensor dst) {
        requireThisDevice(dst);
        DeviceCalls.HostStaging staging = calls.allocatePinned(Math.max(1, dst.byteSize()));
        try (TensorAllocator scratch = newAllocator()) {
            Tensor packed = Tensor.host(staging.segment(), dst.dtype(), dst.shape());
            HostTensors.copy(src, packed);
            Tensor target = dst.isContiguous() ? dst : scratch.allocate(dst.dtype(), dst.shape());
            calls.copyToDevice(packed.contiguousSegment(), target.contiguousDevicePointer(), stream);
            if (target != dst) {
                copyOnDevice(target, dst);
            }
            calls.synchronize(stream); // the staging memory is freed when this block ends
        } finally {
            calls.free(staging);
        }
    }

    /** Device to host: pack (and convert) on the device, one transfer into pinned memory, then place. */
    private void download(Tensor src, Tensor dst) {
        requireThisDevice(src);
        DeviceCalls.HostStaging staging = calls.allocatePinned(Math.max(1, dst.byteSize()));
        try (TensorAllocator scratch = newAllocator()) {
            Tensor packed = src.isContiguous() && src.dtype() == dst.dtype() ? src : scratch.allocate(dst.dtype(), src.shape());
            if (packed != src) {
                copyOnDevice(src, packed);
            }
            Tensor host = Tensor.host(staging.segment(), dst.dtype(), dst.shape());
            calls.copyToHost(packed.contiguousDevicePointer(), host.contiguousSegment(), stream);
            calls.synchronize(stream);
            HostTensors.copy(host, dst);
        } finally {
            calls.free(staging);
        }
    }

    @Override
    public void fill(Tensor dst, float value) {
        requireOpen();
        if (dst.isHost()) {
            HostTensors.forEachOffset(dst, (i, off) -> dst.dtype().write(dst.segment(), off, value));
            return;
        }
        requireThisDevice(dst);
        if (value == 0f && dst.isContiguous()) {
            calls.memset(dst.contiguousDevicePointer(), 0, stream);
        } else {
            kernels.fill(dst, value, stream);
        }
    }

    @Override
    public void add(Tensor dst, Tensor src) {
        requireOpen();
        requireThisDevice(dst);
        requireThisDevice(src);
        kernels.add(dst, src, stream);
    }

    @Override
    public void mergeAttention(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse) {
        requireOpen();
        for (Tensor t : new Tensor[] {out, lse, blockOut, blockLse}) {
            requireThisDevice(t);
        }
        if (out.rank() != 4 || blockOut.rank() != 4 || !out.sameShape(blockOut)) {
            throw new IllegalArgumentException("merge needs out and blockOut of one [b,s,h,d] shape, got "
                    + out.describe() + " and " + blockOut.describe());
        }
        long[] lseShape = {out.size(0), out.size(2), out.size(1)};
        if (!Arrays.equals(lse.shape(), lseShape) || !Arrays.equals(blockLse.shape(), lseShape)
                || out.dtype() != DType.F32 || lse.dtype() != DType.F32 || blockLse.dtype() != DType.F32) {
            throw new IllegalArgumentException("merge needs F32 out, lse " + Arrays.toString(lseShape)
                    + " and F32 block lse, got " + out.describe() + ", " + lse.describe() + ", " + blockLse.describe());
        }
        kernels.mergeAttention(out, lse, blockOut, blockLse, stream);
    }

    @Override
    public void synchronize() {
        requireOpen();
        calls.synchronize(stream);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            calls.synchronize(stream);
        } finally {
            attention.close();
            if (transport != null) {
                transport.close();
            }
            memory.close();
            if (ownsStream) {
                calls.destroyStream(stream);
            }
        }
    }

    private void requireThisDevice(Tensor t) {
        if (!t.isDevice()) {
            throw new IllegalArgumentException(t.describe() + " is in host memory; the CUDA backend computes on device " + device);
        }
        if (t.devicePointer().device() != device) {
            throw new IllegalArgumentException(t.describe() + " is on device " + t.devicePointer().device()
                    + ", this backend on device " + device);
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("CUDA backend of device " + device + " is closed");
        }
    }
}
