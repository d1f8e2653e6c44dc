package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.nativelib.NativeResource;

/**
 * A CUDA stream ({@code cudaStream_t}): either owned (made by {@link #create}, destroyed once on
 * {@link #close()}) or borrowed from a caller ({@link #borrow}: closing only ends this wrapper, the
 * stream itself is never destroyed by usp4j).
 */
public final class CudaStream extends NativeResource {

    private final MemorySegment handle;
    private final boolean nonBlocking;
    private final boolean borrowed;

    private CudaStream(MemorySegment handle, boolean nonBlocking, boolean borrowed) {
        this.handle = handle;
        this.nonBlocking = nonBlocking;
        this.borrowed = borrowed;
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
            return new CudaStream(out.get(ValueLayout.ADDRESS, 0), nonBlocking, false);
        }
    }

    /**
     * Wraps a caller's stream without taking ownership: {@link #close()} ends this wrapper (later use
     * throws) and never destroys the stream. No native call is made here. {@link MemorySegment#NULL} is
     * the legacy default stream, as in the CUDA runtime.
     */
    public static CudaStream borrow(MemorySegment handle) {
        if (handle == null) {
            throw new IllegalArgumentException("stream handle is null (use MemorySegment.NULL for the legacy default stream)");
        }
        return new CudaStream(MemorySegment.ofAddress(handle.address()), false, true);
    }

    /** As {@link #borrow(MemorySegment)}, from a raw address (0: the legacy default stream). */
    public static CudaStream borrow(long address) {
        return borrow(MemorySegment.ofAddress(address));
    }

    /** True for a caller's stream wrapped by {@link #borrow}, which usp4j never destroys. */
    public boolean isBorrowed() {
        return borrowed;
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

    /** Whether usp4j created it with {@code cudaStreamNonBlocking}; false for a borrowed stream (its flags are the caller's). */
    public boolean isNonBlocking() {
        return nonBlocking;
    }

    /** Blocks until all work queued on this stream has finished. */
    public void synchronize() {
        Cuda.check(cudaStreamSynchronize(handle()), "cudaStreamSynchronize");
    }

    /** True when all queued work has finished ({@code cudaStreamQuery}); never blocks. */
    public boolean isIdle() {
        int status = CudaCriticalCalls.streamQuery(handle());
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
        return borrowed ? "borrowed CUDA stream 0x" + Long.toHexString(handle.address()) : "CUDA stream";
    }

    @Override
    protected void release() {
        if (!borrowed) { // a borrowed stream belongs to the caller: only this wrapper ends
            Cuda.check(cudaStreamDestroy(handle), "cudaStreamDestroy");
        }
    }
}
