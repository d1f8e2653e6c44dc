package org.usp4j.cudnn;

import static org.usp4j.bindings.cudnn.CudnnApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.cuda.CudaStream;
import org.usp4j.nativelib.NativeResource;

/**
 * An owned cuDNN handle ({@code cudnnHandle_t}), bound to the current device; needs a GPU. Use one
 * per thread and device. Destroyed once on close.
 */
public final class CudnnHandle extends NativeResource {

    private final MemorySegment handle;

    private CudnnHandle(MemorySegment handle) {
        this.handle = handle;
    }

    /**
     * A handle on the current device ({@code cudnnCreate}).
     *
     * @throws CudnnException CUDNN_STATUS_NOT_INITIALIZED (1001) without a usable GPU
     */
    public static CudnnHandle create() {
        Cudnn.library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cudnn.check(cudnnCreate(out), "cudnnCreate");
            return new CudnnHandle(out.get(ValueLayout.ADDRESS, 0));
        }
    }

    /** The raw handle; valid until closed. */
    public MemorySegment handle() {
        checkOpen();
        return handle;
    }

    /** Later executions on this handle are queued on {@code stream} (owned or {@link CudaStream#borrow borrowed}). */
    public void setStream(CudaStream stream) {
        Cudnn.check(cudnnSetStream(handle(), CudaStream.handleOf(stream)), "cudnnSetStream");
    }

    /** The raw {@code cudaStream_t} executions go to (NULL for the legacy default stream). */
    public MemorySegment stream() {
        MemorySegment h = handle();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cudnn.check(cudnnGetStream(h, out), "cudnnGetStream");
            return out.get(ValueLayout.ADDRESS, 0);
        }
    }

    /** Queues {@code plan} with the buffers of {@code variantPack} on this handle's stream ({@code cudnnBackendExecute}). */
    public void execute(BackendDescriptor plan, BackendDescriptor variantPack) {
        plan.requireFinalized(DescriptorType.EXECUTION_PLAN, "plan");
        variantPack.requireFinalized(DescriptorType.VARIANT_PACK, "variant pack");
        Cudnn.check(cudnnBackendExecute(handle(), plan.handle(), variantPack.handle()), "cudnnBackendExecute");
    }

    @Override
    protected String describe() {
        return "cuDNN handle";
    }

    @Override
    protected void release() {
        Cudnn.check(cudnnDestroy(handle), "cudnnDestroy");
    }
}
