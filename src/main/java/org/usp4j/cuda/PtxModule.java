package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.usp4j.nativelib.NativeResource;

/**
 * Our own PTX, loaded through the runtime's library API ({@code cudaLibraryLoadData}), so that
 * kernels need neither NVRTC nor the driver API. The driver JIT-compiles the PTX for the current
 * device; kernels are looked up by their (extern "C") name. Unloaded once on close; its kernels are
 * unusable after that.
 */
public final class PtxModule extends NativeResource {

    private final MemorySegment library;
    private final Map<String, CudaKernel> kernels = new ConcurrentHashMap<>();

    private PtxModule(MemorySegment library) {
        this.library = library;
    }

    /** Loads PTX source text (as produced by {@code nvcc -ptx} or written by hand). */
    public static PtxModule load(String ptx) {
        if (ptx == null || ptx.isBlank() || !ptx.contains(".entry")) {
            throw new IllegalArgumentException("not PTX with a kernel: the text has no '.entry' directive");
        }
        Cuda.library();
        try (Arena arena = Arena.ofConfined()) {
            // PTX is passed as a NUL-terminated string.
            MemorySegment code = arena.allocateFrom(ptx, StandardCharsets.US_ASCII);
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cuda.check(cudaLibraryLoadData(out, code, MemorySegment.NULL, MemorySegment.NULL, 0,
                    MemorySegment.NULL, MemorySegment.NULL, 0), "cudaLibraryLoadData");
            return new PtxModule(out.get(ValueLayout.ADDRESS, 0));
        }
    }

    /** The kernel {@code name} of this module ({@code cudaLibraryGetKernel}), looked up once. */
    public CudaKernel kernel(String name) {
        checkOpen();
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("kernel name is empty");
        }
        return kernels.computeIfAbsent(name, n -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
                Cuda.check(cudaLibraryGetKernel(out, library, arena.allocateFrom(n)), "cudaLibraryGetKernel(" + n + ")");
                return new CudaKernel(this, n, out.get(ValueLayout.ADDRESS, 0));
            }
        });
    }

    @Override
    protected String describe() {
        return "PTX module";
    }

    @Override
    protected void release() {
        Cuda.check(cudaLibraryUnload(library), "cudaLibraryUnload");
    }

    void requireLoaded() {
        checkOpen();
    }
}
