package org.usp4j.gpu.sdpa;

import org.usp4j.cuda.CudaStream;
import org.usp4j.gpu.CudaBackend;

/** CUDA backends whose attention blocks run on cuDNN ({@link CudnnAttention}): what callers make. */
public final class CudnnBackends {

    private CudnnBackends() {
    }

    /** A backend on {@code device} with a stream of its own. */
    public static CudaBackend create(int device) {
        return CudaBackend.create(device, CudnnAttention::new);
    }

    /** A backend that enqueues on the caller's {@code stream} (not closed with the backend). */
    public static CudaBackend onStream(int device, CudaStream stream) {
        return CudaBackend.onStream(device, stream, CudnnAttention::new);
    }
}
