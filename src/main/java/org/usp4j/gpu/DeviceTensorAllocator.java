package org.usp4j.gpu;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Scratch device tensors for one piece of work, from the backend's {@link DeviceMemoryCache} (blocks
 * reused in stream order, else {@code cudaMallocAsync}) and given back on close, so that closing the
 * scope while kernels that use the memory are still queued is safe. Contents are undefined: every user in usp4j writes its scratch
 * tensors whole before reading them (accumulators are filled explicitly), so zeroing each one would be
 * a memset per allocation for nothing.
 */
final class DeviceTensorAllocator implements TensorAllocator {

    private final DeviceMemoryCache cache;
    private final List<DeviceCalls.Allocation> allocations = new ArrayList<>();
    private boolean closed;

    DeviceTensorAllocator(DeviceMemoryCache cache) {
        this.cache = cache;
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        if (closed) {
            throw new IllegalStateException("device allocator is closed");
        }
        long bytes = Math.max(16, Math.multiplyExact(Tensor.numel(shape), dtype.byteSize()));
        DeviceCalls.Allocation allocation = cache.take(bytes);
        allocations.add(allocation);
        return Tensor.device(allocation.pointer().slice(0, bytes), dtype, shape);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (int i = allocations.size() - 1; i >= 0; i--) {
            cache.give(allocations.get(i));
        }
        allocations.clear();
    }
}
