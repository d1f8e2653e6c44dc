package org.usp4j.cudnn;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import org.usp4j.bindings.cudnn.CudnnApi;
import org.usp4j.nativelib.CriticalDowncalls;

/**
 * cuDNN's trivial calls through critical downcall handles ({@link CriticalDowncalls}): the version and
 * the status names, which only read static data. Initialised on first use, after
 * {@link Cudnn#library()} has loaded cuDNN. ({@code cudnnBackendExecute} and the other calls that work
 * are not among them.)
 */
final class CudnnCriticalCalls {

    private static final MethodHandle GET_VERSION =
            CriticalDowncalls.link(CudnnApi.cudnnGetVersion$address(), CudnnApi.cudnnGetVersion$descriptor());
    private static final MethodHandle GET_ERROR_STRING =
            CriticalDowncalls.link(CudnnApi.cudnnGetErrorString$address(), CudnnApi.cudnnGetErrorString$descriptor());

    private CudnnCriticalCalls() {
    }

    static long getVersion() {
        try {
            return (long) GET_VERSION.invokeExact();
        } catch (Throwable t) {
            throw CriticalDowncalls.rethrow(t);
        }
    }

    static String errorString(int code) {
        return CriticalDowncalls.stringOf(GET_ERROR_STRING, code);
    }
}
