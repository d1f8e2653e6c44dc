package org.usp4j.nativelib;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The native libraries usp4j binds: their file names, where Python wheels put them, the versions
 * accepted, how a library reports its version, and which bound functions came after the minimum
 * version (those fail only when called, see {@link NativeLibraries#requireFunction}).
 */
public enum NativeLibrary {

    /** The CUDA runtime. The bindings' struct layouts come from the CUDA 13 headers, hence 13.x only. */
    CUDA_RUNTIME("cudart", "CUDA runtime", "libcudart.so.13", null, List.of(),
            List.of("nvidia/cuda_runtime/lib", "nvidia/cu13/lib"),
            LibraryVersion.of(13, 0, 0), LibraryVersion.of(14, 0, 0), Map.of()) {
        @Override
        LibraryVersion queryVersion(SymbolLookup lookup) {
            int code = callIntOut(lookup, "cudaRuntimeGetVersion");
            return LibraryVersion.of(code / 1000, code % 1000 / 10, 0); // 13000 -> 13.0
        }
    },

    /** NCCL 2; 2.18 brings ncclCommSplit, which the mesh needs. */
    NCCL("nccl", "NCCL", "libnccl.so.2", null, List.of(),
            List.of("nvidia/nccl/lib", "nvidia/cu13/lib"),
            LibraryVersion.of(2, 18, 0), LibraryVersion.of(3, 0, 0),
            Map.of("ncclMemAlloc", LibraryVersion.of(2, 19, 0),
                    "ncclMemFree", LibraryVersion.of(2, 19, 0),
                    "ncclCommRegister", LibraryVersion.of(2, 19, 0),
                    "ncclCommDeregister", LibraryVersion.of(2, 19, 0),
                    "ncclAlltoAll", LibraryVersion.of(2, 28, 3))) {
        @Override
        LibraryVersion queryVersion(SymbolLookup lookup) {
            int code = callIntOut(lookup, "ncclGetVersion");
            // NCCL_VERSION(X,Y,Z) is X*10000+Y*100+Z since 2.9, X*1000+Y*100+Z before.
            return code >= 20900
                    ? LibraryVersion.of(code / 10000, code % 10000 / 100, code % 100)
                    : LibraryVersion.of(code / 1000, code % 1000 / 100, code % 100);
        }
    },

    /**
     * cuDNN 9 (backend API). libcudnn.so.9 is a small shim that loads its sibling sub-libraries
     * (libcudnn_graph, _engines_*, _heuristic, ...) from its own directory. Even cudnnGetVersion
     * needs libcudnn_graph, and the shim aborts the process when it cannot load it, so a file
     * without that sibling is never probed.
     */
    CUDNN("cudnn", "cuDNN", "libcudnn.so.9", "libcudnn", List.of("libcudnn_graph.so.9"),
            List.of("nvidia/cudnn/lib", "nvidia/cu13/lib"),
            LibraryVersion.of(9, 0, 0), LibraryVersion.of(10, 0, 0), Map.of()) {
        @Override
        LibraryVersion queryVersion(SymbolLookup lookup) {
            long code = callSizeT(lookup, "cudnnGetVersion");
            // major*10000 + minor*100 + patch since 9.0 (8.x used major*1000 + minor*100 + patch)
            return code >= 90000
                    ? LibraryVersion.of((int) (code / 10000), (int) (code % 10000 / 100), (int) (code % 100))
                    : LibraryVersion.of((int) (code / 1000), (int) (code % 1000 / 100), (int) (code % 100));
        }

        /** Machines often carry several (the system's, PyTorch's wheel): the newest has the fastest engines. */
        @Override
        boolean loadsNewestFound() {
            return true;
        }
    };

    private final String key;
    private final String displayName;
    private final String fileName;
    private final String companionPrefix;
    private final List<String> requiredSiblings;
    private final List<String> pythonLibDirs;
    private final LibraryVersion minimumVersion;
    private final LibraryVersion versionLimit;
    private final Map<String, LibraryVersion> laterFunctions;

    NativeLibrary(String key, String displayName, String fileName, String companionPrefix, List<String> requiredSiblings,
                  List<String> pythonLibDirs,
                  LibraryVersion minimumVersion, LibraryVersion versionLimit, Map<String, LibraryVersion> laterFunctions) {
        this.key = key;
        this.displayName = displayName;
        this.fileName = fileName;
        this.companionPrefix = companionPrefix;
        this.requiredSiblings = requiredSiblings;
        this.pythonLibDirs = pythonLibDirs;
        this.minimumVersion = minimumVersion;
        this.versionLimit = versionLimit;
        this.laterFunctions = laterFunctions;
    }

    /** Asks the library at {@code lookup} for its version. */
    abstract LibraryVersion queryVersion(SymbolLookup lookup);

    /**
     * Whether, without an explicit setting, the newest acceptable copy found anywhere is loaded rather
     * than the first one on the search path.
     */
    boolean loadsNewestFound() {
        return false;
    }

    /** Short name used in settings: cudart, nccl, cudnn. */
    public String key() {
        return key;
    }

    public String displayName() {
        return displayName;
    }

    /** The file name (with the ABI major version) that is searched for. */
    public String fileName() {
        return fileName;
    }

    /** System property naming the library file or its directory, e.g. {@code usp4j.nccl.path}. */
    public String propertyName() {
        return "usp4j." + key + ".path";
    }

    /** Environment variable naming the library file or its directory, e.g. {@code USP4J_NCCL_PATH}. */
    public String environmentVariable() {
        return "USP4J_" + key.toUpperCase(Locale.ROOT) + "_PATH";
    }

    /** Library directories inside a site-packages folder where Python wheels (nvidia-*) install it. */
    public List<String> pythonLibDirs() {
        return pythonLibDirs;
    }

    /**
     * Prefix of sibling files that must sit in the same directory (cuDNN's sub-libraries), or
     * empty when the library is self-contained.
     */
    public Optional<String> companionPrefix() {
        return Optional.ofNullable(companionPrefix);
    }

    /** Files that must sit in the same directory before the library may even be opened. */
    public List<String> requiredSiblings() {
        return requiredSiblings;
    }

    /** Oldest version accepted (inclusive). */
    public LibraryVersion minimumVersion() {
        return minimumVersion;
    }

    /** First version no longer accepted (exclusive): a new ABI major. */
    public LibraryVersion versionLimit() {
        return versionLimit;
    }

    public boolean accepts(LibraryVersion version) {
        return version.isAtLeast(minimumVersion) && !version.isAtLeast(versionLimit);
    }

    /**
     * The version that introduced {@code function} when that is newer than {@link #minimumVersion()};
     * empty for functions every accepted version has.
     */
    public Optional<LibraryVersion> functionSince(String function) {
        return Optional.ofNullable(laterFunctions.get(function));
    }

    /** Bound functions newer than the minimum version, with the version that brought each. */
    public Map<String, LibraryVersion> laterFunctions() {
        return laterFunctions;
    }

    private static int callIntOut(SymbolLookup lookup, String function) {
        MethodHandle handle = downcall(lookup, function,
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
            int status = (int) handle.invokeExact(out);
            if (status != 0) {
                throw new IllegalStateException(function + " returned status " + status);
            }
            return out.get(ValueLayout.JAVA_INT, 0);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(function + " failed", t);
        }
    }

    private static long callSizeT(SymbolLookup lookup, String function) {
        MethodHandle handle = downcall(lookup, function, FunctionDescriptor.of(ValueLayout.JAVA_LONG));
        try {
            return (long) handle.invokeExact();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(function + " failed", t);
        }
    }

    @SuppressWarnings("restricted") // a version probe: the one downcall made before the library is accepted
    private static MethodHandle downcall(SymbolLookup lookup, String function, FunctionDescriptor descriptor) {
        MemorySegment address = lookup.find(function)
                .orElseThrow(() -> new IllegalStateException("no symbol " + function));
        return Linker.nativeLinker().downcallHandle(address, descriptor);
    }
}
