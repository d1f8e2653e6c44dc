package org.usp4j.nccl;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import org.usp4j.bindings.nccl.NcclApi;
import org.usp4j.nativelib.CriticalDowncalls;

/**
 * NCCL's trivial calls through critical downcall handles ({@link CriticalDowncalls}): the version and
 * the error strings, which only read static data. Initialised on first use, after {@link Nccl#library()}
 * has loaded NCCL (the generated bindings resolve the symbols then).
 */
final class NcclCriticalCalls {

    private static final MethodHandle GET_VERSION =
            CriticalDowncalls.link(NcclApi.ncclGetVersion$address(), NcclApi.ncclGetVersion$descriptor());
    private static final MethodHandle GET_ERROR_STRING =
            CriticalDowncalls.link(NcclApi.ncclGetErrorString$address(), NcclApi.ncclGetErrorString$descriptor());
    private static final MethodHandle GET_LAST_ERROR =
            CriticalDowncalls.link(NcclApi.ncclGetLastError$address(), NcclApi.ncclGetLastError$descriptor());

    private NcclCriticalCalls() {
    }

    /** {@code ncclGetVersion(&out[0])}: the result code. */
    static int getVersion(int[] out) {
        try {
            return (int) GET_VERSION.invokeExact(MemorySegment.ofArray(out));
        } catch (Throwable t) {
            throw CriticalDowncalls.rethrow(t);
        }
    }

    static String errorString(int code) {
        return CriticalDowncalls.stringOf(GET_ERROR_STRING, code);
    }

    /** {@code ncclGetLastError(comm)}, NULL for the process-wide message. */
    static String lastError(MemorySegment comm) {
        try {
            return ((MemorySegment) GET_LAST_ERROR.invokeExact(comm)).getString(0);
        } catch (Throwable t) {
            throw CriticalDowncalls.rethrow(t);
        }
    }
}
