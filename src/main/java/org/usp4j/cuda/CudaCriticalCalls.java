package org.usp4j.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import org.usp4j.bindings.cuda.CudaRuntimeApi;
import org.usp4j.nativelib.CriticalDowncalls;

/**
 * The CUDA runtime's trivial calls through critical downcall handles ({@link CriticalDowncalls}): the
 * runtime version and error names and strings (static data), and the stream and event queries and the
 * event record, which return at once by contract (a query answers cudaErrorNotReady rather than wait; a
 * record only enqueues a marker). Synchronisation, copies, launches and allocation stay on the generated,
 * non-critical handles. Initialised on first use, after {@link Cuda#library()} has loaded the runtime.
 */
final class CudaCriticalCalls {

    private static final MethodHandle RUNTIME_GET_VERSION = CriticalDowncalls.link(
            CudaRuntimeApi.cudaRuntimeGetVersion$address(), CudaRuntimeApi.cudaRuntimeGetVersion$descriptor());
    private static final MethodHandle GET_ERROR_NAME = CriticalDowncalls.link(
            CudaRuntimeApi.cudaGetErrorName$address(), CudaRuntimeApi.cudaGetErrorName$descriptor());
    private static final MethodHandle GET_ERROR_STRING = CriticalDowncalls.link(
            CudaRuntimeApi.cudaGetErrorString$address(), CudaRuntimeApi.cudaGetErrorString$descriptor());
    private static final MethodHandle STREAM_QUERY = CriticalDowncalls.link(
            CudaRuntimeApi.cudaStreamQuery$address(), CudaRuntimeApi.cudaStreamQuery$descriptor());
    private static final MethodHandle EVENT_QUERY = CriticalDowncalls.link(
            CudaRuntimeApi.cudaEventQuery$address(), CudaRuntimeApi.cudaEventQuery$descriptor());
    private static final MethodHandle EVENT_RECORD = CriticalDowncalls.link(
            CudaRuntimeApi.cudaEventRecord$address(), CudaRuntimeApi.cudaEventRecord$descriptor());

    private CudaCriticalCalls() {
    }

    /** {@code cudaRuntimeGetVersion(&out[0])}: the error code. */
    static int runtimeGetVersion(int[] out) {
        try {
            return (int) RUNTIME_GET_VERSION.invokeExact(MemorySegment.ofArray(out));
        } catch (Throwable t) {
            throw CriticalDowncalls.rethrow(t);
        }
    }

    static String errorName(int code) {
        return CriticalDowncalls.stringOf(GET_ERROR_NAME, code);
    }

    static String errorString(int code) {
        return CriticalDowncalls.stringOf(GET_ERROR_STRING, code);
    }

    static int streamQuery(MemorySegment stream) {
        try {
            return (int) STREAM_QUERY.invokeExact(stream);
        } catch (Throwable t) {
            throw CriticalDowncalls.rethrow(t);
        }
    }

    static int eventQuery(MemorySegment event) {
        try {
            return (int) EVENT_QUERY.invokeExact(event);
        } catch (Throwable t) {
            throw CriticalDowncalls.rethrow(t);
        }
    }

    static int eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            return (int) EVENT_RECORD.invokeExact(event, stream);
        } catch (Throwable t) {
            throw CriticalDowncalls.rethrow(t);
        }
    }
}
