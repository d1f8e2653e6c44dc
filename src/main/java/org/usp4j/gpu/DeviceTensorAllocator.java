package org.usp4j.gpu;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.CudaStream;
import org.usp4j.cuda.DeviceBuffer;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Scratch device tensors for one piece of work, allocated and freed in stream order
 * ({@code cudaMallocAsync}/{@code cudaFreeAsync}) so that closing the scope while kernels that use the
 * memory are still queued is safe. Memory is zeroed, as the CPU backend's is.
 */
final class DeviceTensorAllocator implements TensorAllocator {

    private final CudaStream stream;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private boolean closed;

    DeviceTensorAllocator(CudaStream stream) {
        this.stream = stream;
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        if (closed) {
            throw new IllegalStateException("device allocator is closed");
        }
        long bytes = Math.max(16, Math.multiplyExact(Tensor.numel(shape), dtype.byteSize()));
        DeviceBuffer buffer = DeviceBuffer.allocateAsync(bytes, stream);
        buffers.add(buffer);
        CudaMemory.memsetAsync(buffer.pointer(), 0, stream);
        return Tensor.device(buffer.pointer(), dtype, shape);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (int i = buffers.size() - 1; i >= 0; i--) {
            buffers.get(i).close();
        }
        buffers.clear();
    }
}
