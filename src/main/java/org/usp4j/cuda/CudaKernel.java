package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A kernel of a {@link PtxModule}. Launches go through {@code cudaLaunchKernel}, with the kernel
 * handle ({@code cudaKernel_t}) passed where the runtime takes a function pointer.
 */
public final class CudaKernel {

    private final PtxModule module;
    private final String name;
    private final MemorySegment handle;

    CudaKernel(PtxModule module, String name, MemorySegment handle) {
        this.module = module;
        this.name = name;
        this.handle = handle;
    }

    public String name() {
        return name;
    }

    /** Queues the kernel on {@code stream}; the argument list must match the kernel's parameters. */
    public void launch(Dim3 grid, Dim3 block, int dynamicSharedMemoryBytes, CudaStream stream, KernelArg... args) {
        launch(grid, block, dynamicSharedMemoryBytes, stream, List.of(args));
    }

    /** Queues the kernel on {@code stream}; the argument list must match the kernel's parameters. */
    public void launch(Dim3 grid, Dim3 block, int dynamicSharedMemoryBytes, CudaStream stream, List<KernelArg> args) {
        if (dynamicSharedMemoryBytes < 0) {
            throw new IllegalArgumentException("dynamic shared memory must be >= 0 bytes, got " + dynamicSharedMemoryBytes);
        }
        if (block.volume() > 1024) {
            throw new IllegalArgumentException("a block has at most 1024 threads, got " + block.volume() + " " + block);
        }
        module.requireLoaded();
        MemorySegment streamHandle = CudaStream.handleOf(stream);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment argv = KernelArguments.marshal(args, arena);
            Cuda.check(cudaLaunchKernel(handle, dim3(arena, grid), dim3(arena, block), argv,
                    dynamicSharedMemoryBytes, streamHandle), "cudaLaunchKernel(" + name + ")");
        }
    }

    /** Allows launches with up to {@code bytes} of dynamic shared memory (beyond the 48 KiB default). */
    public void setMaxDynamicSharedMemory(int bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("shared memory size must be >= 0 bytes, got " + bytes);
        }
        module.requireLoaded();
        Cuda.check(cudaFuncSetAttribute(handle, cudaFuncAttributeMaxDynamicSharedMemorySize(), bytes),
                "cudaFuncSetAttribute(" + name + ")");
    }

    static MemorySegment dim3(Arena arena, Dim3 d) {
        MemorySegment s = org.usp4j.bindings.cuda.dim3.allocate(arena);
        org.usp4j.bindings.cuda.dim3.x(s, d.x());
        org.usp4j.bindings.cuda.dim3.y(s, d.y());
        org.usp4j.bindings.cuda.dim3.z(s, d.z());
        return s;
    }

    @Override
    public String toString() {
        return "CudaKernel[" + name + "]";
    }
}
