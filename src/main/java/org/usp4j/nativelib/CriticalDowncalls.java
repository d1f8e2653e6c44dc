package org.usp4j.nativelib;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Downcall handles for trivial native functions (version queries, error strings, stream and event
 * queries), linked with {@link Linker.Option#critical(boolean)}: the call skips the Java-to-native
 * thread-state transition, which is most of a trivial call's cost, and with heap access allowed an
 * out-parameter can be a Java array instead of an arena allocation. The price is that the JVM cannot
 * reach a safepoint (GC included) while such a call runs, so only functions that return at once, never
 * block and never call back into Java may be linked this way. The handles are made from the symbol
 * address and descriptor that the jextract bindings already hold, in our own wrapper classes beside
 * them, so the generated code stays generated.
 */
public final class CriticalDowncalls {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final Linker.Option CRITICAL_WITH_HEAP = Linker.Option.critical(true);

    private CriticalDowncalls() {
    }

    /** A critical downcall handle that may also be passed heap segments (e.g. of an {@code int[1]}). */
    public static MethodHandle link(MemorySegment address, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(address, descriptor, CRITICAL_WITH_HEAP);
    }

    /** {@code handle(code)} for a function {@code const char *f(int)}: the C string it returns. */
    public static String stringOf(MethodHandle handle, int code) {
        try {
            return ((MemorySegment) handle.invokeExact(code)).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The unchecked form of a throwable from {@code invokeExact}: downcalls throw none of their own. */
    public static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException e) {
            return e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("downcall failed", t);
    }
}
