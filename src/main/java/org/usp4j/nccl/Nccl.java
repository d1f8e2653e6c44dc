package org.usp4j.nccl;

import static org.usp4j.bindings.nccl.NcclApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.bindings.nccl.ncclUniqueId;
import org.usp4j.nativelib.LibraryVersion;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/**
 * Entry to NCCL: version, error strings, unique ids and group scopes. Every wrapper in this
 * package goes through {@link #library()} before its first native call, which loads
 * {@code libnccl.so.2} (2.18 or newer).
 */
public final class Nccl {

    static final Logger LOG = LogManager.getLogger(Nccl.class);

    private static volatile LoadedLibrary library;

    private Nccl() {
    }

    /** The loaded NCCL, loading it on first use. */
    public static LoadedLibrary library() {
        LoadedLibrary loaded = library;
        if (loaded == null) {
            loaded = NativeLibraries.load(NativeLibrary.NCCL);
            library = loaded;
        }
        return loaded;
    }

    /** The loaded library's version, e.g. 2.23.4. */
    public static LibraryVersion version() {
        return library().version();
    }

    /** {@code ncclGetVersion}: X*10000 + Y*100 + Z, e.g. 22304. */
    public static int versionCode() {
        library();
        int[] out = new int[1];
        check(NcclCriticalCalls.getVersion(out), "ncclGetVersion", MemorySegment.NULL);
        return out[0];
    }

    /** NCCL's description of a result code. */
    public static String errorString(int code) {
        library();
        return NcclCriticalCalls.errorString(code);
    }

    /** NCCL's last error message of this process (not tied to a communicator); "" when none. */
    public static String lastError() {
        library();
        return NcclCriticalCalls.lastError(MemorySegment.NULL);
    }

    /** A fresh unique id for a new communicator ({@code ncclGetUniqueId}); needs no GPU. */
    public static NcclUniqueId uniqueId() {
        library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment id = ncclUniqueId.allocate(arena);
            check(ncclGetUniqueId(id), "ncclGetUniqueId", MemorySegment.NULL);
            return NcclUniqueId.fromSegment(id);
        }
    }

    /** Opens a group: calls up to the matching {@link #groupEnd()} are fused and launched together. */
    public static void groupStart() {
        library();
        check(ncclGroupStart(), "ncclGroupStart", MemorySegment.NULL);
    }

    /** Closes a group and launches its operations. */
    public static void groupEnd() {
        library();
        check(ncclGroupEnd(), "ncclGroupEnd", MemorySegment.NULL);
    }

    /** Runs {@code body} inside {@code ncclGroupStart()/ncclGroupEnd()}; the group is closed even if it throws. */
    public static void group(Runnable body) {
        groupStart();
        boolean ok = false;
        try {
            body.run();
            ok = true;
        } finally {
            if (ok) {
                groupEnd();
            } else {
                try {
                    groupEnd();
                } catch (NcclException suppressed) {
                    LOG.debug("ncclGroupEnd after a failed group body: {}", suppressed.getMessage());
                }
            }
        }
    }

    /** Whether the loaded NCCL exports {@code function} (e.g. ncclAlltoAll needs 2.28.3). */
    public static boolean hasFunction(String function) {
        return NativeLibraries.hasFunction(NativeLibrary.NCCL, function);
    }

    /**
     * Throws {@link org.usp4j.nativelib.NativeFunctionUnavailableException}, naming the function,
     * the version that brings it and the version loaded, unless the loaded NCCL has {@code function}.
     */
    public static void requireFunction(String function) {
        library();
        NativeLibraries.requireFunction(NativeLibrary.NCCL, function);
    }

    /** Throws {@link NcclException} unless {@code status} is ncclSuccess. */
    static void check(int status, String function, MemorySegment comm) {
        if (LOG.isTraceEnabled()) {
            LOG.trace("{} -> {}", function, status);
        }
        if (status != ncclSuccess()) {
            throw failure(status, function, comm);
        }
    }

    static NcclException failure(int status, String function, MemorySegment comm) {
        String description = errorString(status);
        if (status == ncclInProgress()) {
            // only a non-blocking communicator answers this; usp4j's wrappers never poll for completion
            description += " (the communicator is non-blocking, by its config or NCCL_COMM_BLOCKING=0; usp4j drives "
                    + "blocking communicators only)";
        }
        return new NcclException(function, status, description, NcclCriticalCalls.lastError(comm));
    }
}
