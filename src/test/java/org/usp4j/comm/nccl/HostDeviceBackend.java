package org.usp4j.comm.nccl;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.Mask;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/**
 * A backend whose tensors are "device" tensors (so the NCCL communicator accepts them) over host memory
 * (so {@link FakeNccl} can move them and the CPU kernels compute on them): every operation views its
 * device tensors as host tensors of the same geometry and hands them to a {@link CpuBackend}.
 */
final class HostDeviceBackend implements Backend {

    static final int DEVICE = 0;

    private final CpuBackend cpu;
    private final AttentionKernel kernel;

    HostDeviceBackend(AttentionKernel kernel) {
        this.cpu = new CpuBackend(kernel);
        this.kernel = new AttentionKernel() {
            @Override
            public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
                kernel.forward(host(q), host(k), host(v), mask, scale, host(out), host(lse));
            }

            @Override
            public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask,
                                 float scale, Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
                kernel.backward(host(q), host(k), host(v), host(out), host(dout), host(lse), mask, scale, host(dq),
                        host(dk), host(dv), accumulate);
            }
        };
    }

    /**
     * A "device" tensor over host memory that is never freed. A fake stream, like a GPU kernel, may still
     * write into a buffer after its rank has failed and given it up (a stalled peer's late message); on a
     * GPU the abort stops NCCL's kernels before buffers go, here leaking keeps such late writes out of
     * memory the heap has reused. Tests allocate little, so the leak is small.
     */
    static Tensor deviceTensor(DType dtype, long... shape) {
        long bytes = Math.max(16, Tensor.numel(shape) * dtype.byteSize());
        MemorySegment memory = Arena.global().allocate(bytes, 64);
        return Tensor.device(new DevicePointer(memory.address(), bytes, DEVICE), dtype, shape);
    }

    /** The host view of a tensor of this backend (host tensors as they are). */
    static Tensor host(Tensor t) {
        if (t.isHost()) {
            return t;
        }
        DevicePointer p = t.devicePointer();
        long elements = p.byteSize() / t.dtype().byteSize();
        Tensor whole = Tensor.host(MemorySegment.ofAddress(p.address()).reinterpret(p.byteSize()), t.dtype(), elements);
        return whole.withGeometry(t.shape(), t.strides(), t.offset());
    }

    @Override
    public String name() {
        return "host-device";
    }

    @Override
    public AttentionKernel kernel() {
        return kernel;
    }

    @Override
    public TensorAllocator newAllocator() {
        return new TensorAllocator() {
            @Override
            public Tensor allocate(DType dtype, long... shape) {
                return deviceTensor(dtype, shape);
            }

            @Override
            public void close() {
                // fake device memory is never freed (see deviceTensor)
            }
        };
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        cpu.copy(host(src), host(dst));
    }

    @Override
    public void fill(Tensor dst, float value) {
        cpu.fill(host(dst), value);
    }

    @Override
    public void add(Tensor dst, Tensor src) {
        cpu.add(host(dst), host(src));
    }

    @Override
    public void mergeAttention(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse) {
        cpu.mergeAttention(host(out), host(lse), host(blockOut), host(blockLse));
    }

    @Override
    public void synchronize() {
    }

    @Override
    public void close() {
        cpu.close();
    }
}
