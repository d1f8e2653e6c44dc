package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.nativelib.NativeResource;

/** An owned CUDA stream ({@code cudaStream_t}); destroyed once on {@link #close()}. */
public final class CudaStream extends NativeResource {

    private final MemorySegment handle;
    private final boolean nonBlocking;

    private CudaStream(MemorySegment handle, boolean nonBlocking) {
        this.handle = handle;
        this.nonBlocking = nonBlocking;
    }

    /**
     * A stream that does not synchronize with the legacy default stream
     * ({@code cudaStreamNonBlocking}), as compute and NCCL streams should be.
     */
    public static CudaStream create() {
        return create(true);
    }

    /** A stream, non-blocking with respect to the legacy default stream or not. */
    public static CudaStream create(boolean nonBlocking) {
        Cuda.library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cuda.check(cudaStreamCreateWithFlags(out, nonBlocking ? cudaStreamNonBlocking() : cudaStreamDefault()),
                    "cudaStreamCreateWithFlags");
            return new CudaStream(out.get(ValueLayout.ADDRESS, 0), nonBlocking);
        }
    }

    /** The raw {@code cudaStream_t}, for NCCL, cuDNN and kernel launches; valid until closed. */
    public MemorySegment handle() {
        checkOpen();
        return handle;
    }

    /** The handle of {@code stream}, refusing null with an {@link IllegalArgumentException}. */
    public static MemorySegment handleOf(CudaStream stream) {
        if (stream == null) {
            throw new IllegalArgumentException("stream is null");
        }
        return stream.handle();
    }

    public boolean isNonBlocking() {
        return nonBlocking;
    }

    /** Blocks until all work queued on this stream has finished. */
    public void synchronize() {
        Cuda.check(cudaStreamSynchronize(handle()), "cudaStreamSynchronize");
    }

    /** True when all queued work has finished ({@code cudaStreamQuery}); never blocks. */
    public boolean isIdle() {
        int status = cudaStreamQuery(handle());
        if (status == cudaErrorNotReady()) {
            return false;
        }
        Cuda.check(status, "cudaStreamQuery");
        return true;
    }

    /** Makes later work on this stream wait until {@code event} has completed. */
    public void waitFor(CudaEvent event) {
        if (event == null) {
            throw new IllegalArgumentException("event is null");
        }
        Cuda.check(cudaStreamWaitEvent(handle(), event.handle(), 0), "cudaStreamWaitEvent");
    }

    @Override
    protected String describe() {
        return "CUDA stream";
    }

    @Override
    protected void release() {
        Cuda.check(cudaStreamDestroy(handle), "cudaStreamDestroy");
    }
}
