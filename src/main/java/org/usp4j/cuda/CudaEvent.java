package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.nativelib.NativeResource;

/** An owned CUDA event ({@code cudaEvent_t}) for ordering streams and timing; destroyed once on close. */
public final class CudaEvent extends NativeResource {

    private final MemorySegment handle;
    private final boolean timing;

    private CudaEvent(MemorySegment handle, boolean timing) {
        this.handle = handle;
        this.timing = timing;
    }

    /** An event that records timestamps, for {@link #elapsedMillis}. */
    public static CudaEvent create() {
        return create(true);
    }

    /** An event for ordering only ({@code cudaEventDisableTiming}, cheaper) when {@code timing} is false. */
    public static CudaEvent create(boolean timing) {
        Cuda.library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cuda.check(cudaEventCreateWithFlags(out, timing ? cudaEventDefault() : cudaEventDisableTiming()),
                    "cudaEventCreateWithFlags");
            return new CudaEvent(out.get(ValueLayout.ADDRESS, 0), timing);
        }
    }

    /** The raw {@code cudaEvent_t}; valid until closed. */
    public MemorySegment handle() {
        checkOpen();
        return handle;
    }

    public boolean isTiming() {
        return timing;
    }

    /** Captures the work queued so far on {@code stream}. */
    public void record(CudaStream stream) {
        Cuda.check(CudaCriticalCalls.eventRecord(handle(), CudaStream.handleOf(stream)), "cudaEventRecord");
    }

    /** Blocks until the captured work has finished. */
    public void synchronize() {
        Cuda.check(cudaEventSynchronize(handle()), "cudaEventSynchronize");
    }

    /** True when the captured work has finished ({@code cudaEventQuery}); never blocks. */
    public boolean isComplete() {
        int status = CudaCriticalCalls.eventQuery(handle());
        if (status == cudaErrorNotReady()) {
            return false;
        }
        Cuda.check(status, "cudaEventQuery");
        return true;
    }

    /** Milliseconds between two recorded, completed timing events (about 0.5 microsecond resolution). */
    public static float elapsedMillis(CudaEvent start, CudaEvent end) {
        if (!start.timing || !end.timing) {
            throw new IllegalArgumentException("elapsed time needs two timing events (created with timing=true)");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ms = arena.allocate(ValueLayout.JAVA_FLOAT);
            Cuda.check(cudaEventElapsedTime(ms, start.handle(), end.handle()), "cudaEventElapsedTime");
            return ms.get(ValueLayout.JAVA_FLOAT, 0);
        }
    }

    @Override
    protected String describe() {
        return "CUDA event";
    }

    @Override
    protected void release() {
        Cuda.check(cudaEventDestroy(handle), "cudaEventDestroy");
    }
}
