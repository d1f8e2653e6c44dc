package org.usp4j.cudnn;

import static org.usp4j.bindings.cudnn.CudnnApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.nativelib.LibraryVersion;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/**
 * Entry to cuDNN: version and errors. Every wrapper in this package goes through
 * {@link #library()} before its first native call, which loads {@code libcudnn.so.9} (9.0 or newer).
 */
public final class Cudnn {

    static final Logger LOG = LogManager.getLogger(Cudnn.class);

    private static final int LAST_ERROR_CAPACITY = 4096;

    private static volatile LoadedLibrary library;

    private Cudnn() {
    }

    /** The loaded cuDNN, loading it on first use. */
    public static LoadedLibrary library() {
        LoadedLibrary loaded = library;
        if (loaded == null) {
            loaded = NativeLibraries.load(NativeLibrary.CUDNN);
            library = loaded;
        }
        return loaded;
    }

    /** The loaded library's version, e.g. 9.5.1. */
    public static LibraryVersion version() {
        return library().version();
    }

    /** {@code cudnnGetVersion}: major*10000 + minor*100 + patch, e.g. 90501. */
    public static long versionCode() {
        library();
        return CudnnCriticalCalls.getVersion();
    }

    /** The CUDA runtime version cuDNN was built against ({@code cudnnGetCudartVersion}), e.g. 12060. */
    public static long cudartVersion() {
        library();
        return cudnnGetCudartVersion();
    }

    /** cuDNN's name for a status code, e.g. "CUDNN_STATUS_BAD_PARAM"; "CUDNN_UNKNOWN_STATUS" if unknown. */
    public static String errorString(int code) {
        library();
        return CudnnCriticalCalls.errorString(code);
    }

    /** The message of the last error cuDNN recorded on this thread; "" when none. */
    public static String lastErrorString() {
        library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(LAST_ERROR_CAPACITY);
            cudnnGetLastErrorString(buffer, LAST_ERROR_CAPACITY);
            return buffer.getString(0);
        }
    }

    /** True when the loaded cuDNN is at least {@code version}. */
    public static boolean isAtLeast(LibraryVersion version) {
        return version().isAtLeast(version);
    }

    /** Throws {@link CudnnException} unless {@code status} is CUDNN_STATUS_SUCCESS. */
    static void check(int status, String function) {
        if (LOG.isTraceEnabled()) {
            LOG.trace("{} -> {}", function, status);
        }
        if (status != CUDNN_STATUS_SUCCESS()) {
            throw new CudnnException(function, status, errorString(status), lastErrorString());
        }
    }

    /** Refuses, before any native call, a feature newer than the loaded cuDNN. */
    static void requireVersion(LibraryVersion since, String what) {
        LoadedLibrary loaded = library();
        if (!loaded.version().isAtLeast(since)) {
            throw new UnsupportedOperationException(what + " needs cuDNN " + since + " or newer; the loaded "
                    + loaded.path().getFileName() + " is cuDNN " + loaded.version() + " (" + loaded.path() + ")");
        }
    }
}
