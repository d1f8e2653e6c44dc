package org.usp4j.cuda;

import static org.usp4j.bindings.cuda.CudaRuntimeApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.bindings.cuda.cudaDeviceProp;
import org.usp4j.nativelib.LibraryNotFoundException;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/**
 * Entry to the CUDA runtime: devices, versions, errors. Every wrapper in this package goes through
 * {@link #library()} before its first native call, which loads {@code libcudart.so.13}.
 */
public final class Cuda {

    static final Logger LOG = LogManager.getLogger(Cuda.class);

    private static volatile LoadedLibrary library;

    private Cuda() {
    }

    /** The loaded CUDA runtime, loading it on first use. */
    public static LoadedLibrary library() {
        LoadedLibrary loaded = library;
        if (loaded == null) {
            loaded = NativeLibraries.load(NativeLibrary.CUDA_RUNTIME);
            library = loaded;
        }
        return loaded;
    }

    /** True when the runtime loads and sees at least one device; never throws. */
    public static boolean isDeviceAvailable() {
        try {
            return deviceCount() > 0;
        } catch (CudaException | LibraryNotFoundException e) {
            return false;
        }
    }

    /**
     * Number of visible devices.
     *
     * @throws CudaException without a driver ({@code cudaErrorInsufficientDriver}) or device
     *                       ({@code cudaErrorNoDevice})
     */
    public static int deviceCount() {
        library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
            check(cudaGetDeviceCount(count), "cudaGetDeviceCount");
            return count.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** The runtime's version, e.g. 13000 for 13.0 ({@code cudaRuntimeGetVersion}). */
    public static int runtimeVersion() {
        library();
        int[] version = new int[1];
        check(CudaCriticalCalls.runtimeGetVersion(version), "cudaRuntimeGetVersion");
        return version[0];
    }

    /** The newest CUDA version the installed driver supports, e.g. 13000; 0 when there is no driver. */
    public static int driverVersion() {
        library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment version = arena.allocate(ValueLayout.JAVA_INT);
            check(cudaDriverGetVersion(version), "cudaDriverGetVersion");
            return version.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Makes {@code device} current for the calling thread. */
    public static void setDevice(int device) {
        requireDeviceOrdinal(device);
        library();
        check(cudaSetDevice(device), "cudaSetDevice");
    }

    /** The calling thread's current device. */
    public static int currentDevice() {
        library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment device = arena.allocate(ValueLayout.JAVA_INT);
            check(cudaGetDevice(device), "cudaGetDevice");
            return device.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Waits for all work on the current device ({@code cudaDeviceSynchronize}). */
    public static void synchronizeDevice() {
        library();
        check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }

    /** Free and total memory of the current device. */
    public static DeviceMemoryInfo memoryInfo() {
        library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(ValueLayout.JAVA_LONG);
            MemorySegment total = arena.allocate(ValueLayout.JAVA_LONG);
            check(cudaMemGetInfo(free, total), "cudaMemGetInfo");
            return new DeviceMemoryInfo(free.get(ValueLayout.JAVA_LONG, 0), total.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    /** Name, compute capability, memory and SM count of {@code device}. */
    public static DeviceProperties deviceProperties(int device) {
        requireDeviceOrdinal(device);
        library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment prop = cudaDeviceProp.allocate(arena);
            check(cudaGetDeviceProperties(prop, device), "cudaGetDeviceProperties");
            return new DeviceProperties(device,
                    cudaDeviceProp.name(prop).getString(0),
                    attribute(cudaDevAttrComputeCapabilityMajor(), device),
                    attribute(cudaDevAttrComputeCapabilityMinor(), device),
                    cudaDeviceProp.totalGlobalMem(prop),
                    attribute(cudaDevAttrMultiProcessorCount(), device),
                    attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin(), device));
        }
    }

    /** One {@code cudaDeviceAttr} value of {@code device}. */
    static int attribute(int attribute, int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(ValueLayout.JAVA_INT);
            check(cudaDeviceGetAttribute(value, attribute, device), "cudaDeviceGetAttribute");
            return value.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** The runtime's name for an error code, e.g. "cudaErrorNoDevice"; "unrecognized error code" if unknown. */
    public static String errorName(int code) {
        library();
        return CudaCriticalCalls.errorName(code);
    }

    /** The runtime's description of an error code, e.g. "no CUDA-capable device is detected". */
    public static String errorString(int code) {
        library();
        return CudaCriticalCalls.errorString(code);
    }

    /**
     * Throws {@link CudaException} for a failed call. The runtime's last-error slot is reset so a
     * reported, non-sticky error does not resurface later.
     */
    static void check(int status, String function) {
        if (LOG.isTraceEnabled()) {
            LOG.trace("{} -> {}", function, status);
        }
        if (status != cudaSuccess()) {
            cudaGetLastError();
            throw new CudaException(function, status, errorName(status), errorString(status));
        }
    }

    static void requireDeviceOrdinal(int device) {
        if (device < 0) {
            throw new IllegalArgumentException("device ordinal must be >= 0, got " + device);
        }
    }
}
