package org.usp4j.info;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.DeviceProperties;
import org.usp4j.nativelib.LibraryNotFoundException;
import org.usp4j.nativelib.LibraryVersion;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;
import org.usp4j.nativelib.ResolverEnvironment;

/**
 * A diagnosis of this machine as usp4j sees it. Collecting it never throws for a missing library or
 * device: each part says what was found or why not.
 *
 * @param usp4j        usp4j's version
 * @param jdk          the running JDK
 * @param cpu          processors and the Vector API's preferred float vector width
 * @param libraries    CUDA runtime, NCCL and cuDNN: found (path, version, where) or the places tried
 * @param cuda         driver and runtime versions and the visible devices, or why there are none
 * @param cudnnSdpa    which cuDNN SDPA routes the cuDNN found offers, and the one usp4j uses
 * @param ncclAllToAll whether the NCCL found has a native all-to-all
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SystemReport(String usp4j, Jdk jdk, Cpu cpu, List<Library> libraries, CudaStatus cuda,
                           @JsonProperty("cudnn_sdpa") CudnnSdpa cudnnSdpa,
                           @JsonProperty("nccl_all_to_all") NcclAllToAll ncclAllToAll) {

    /** cuDNN's dedicated SDPA forward operation has engines from this release on. */
    public static final LibraryVersion CUDNN_SDPA_OPERATION = LibraryVersion.of(9, 13, 1);

    /** NCCL's native equal-count all-to-all ({@code ncclAlltoAll}) arrived in this release. */
    public static final LibraryVersion NCCL_ALL_TO_ALL = LibraryVersion.of(2, 28, 3);

    public record Jdk(String version, String vendor, String home, String vm) {
    }

    public record Cpu(int processors, String arch, @JsonProperty("vector_bits") int vectorBits) {
    }

    /**
     * One native library: found (version, path, location, and other acceptable copies not chosen) or not
     * (placesTried, and the settings that name it explicitly).
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Library(String name, String file, boolean found, String version, String path, String location,
                          @JsonProperty("places_tried") List<String> placesTried, String hint,
                          @JsonProperty("also_found") List<String> alsoFound) {
    }

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record CudaStatus(@JsonProperty("driver_version") String driverVersion,
                             @JsonProperty("runtime_version") String runtimeVersion, List<Device> devices,
                             String problem) {
    }

    public record Device(int index, String name, @JsonProperty("compute_capability") String computeCapability,
                         @JsonProperty("memory_bytes") long memoryBytes, int multiprocessors,
                         @JsonProperty("max_shared_memory_per_block_optin") int maxSharedMemoryPerBlockOptin) {
    }

    /** The composite graph works on every cuDNN 9; the dedicated operation from 9.13.1. */
    public record CudnnSdpa(@JsonProperty("composite_graph") boolean compositeGraph,
                            @JsonProperty("dedicated_operation") boolean dedicatedOperation, String used, String note) {
    }

    public record NcclAllToAll(@JsonProperty("native") boolean nativeAllToAll, String used, String note) {
    }

    /** This process's diagnosis: libraries resolved as the wrappers would load them, devices queried. */
    public static SystemReport collect(String usp4jVersion) {
        return collect(usp4jVersion, ResolverEnvironment.current(), true);
    }

    /**
     * The diagnosis with libraries resolved in {@code env}. Devices are queried (through the process's
     * loaded CUDA runtime) only when {@code queryDevices} is set and {@code env} has a CUDA runtime.
     */
    public static SystemReport collect(String usp4jVersion, ResolverEnvironment env, boolean queryDevices) {
        Objects.requireNonNull(env, "env");
        Jdk jdk = new Jdk(Runtime.version().toString(), System.getProperty("java.vendor"),
                System.getProperty("java.home"), System.getProperty("java.vm.name"));
        Cpu cpu = new Cpu(Runtime.getRuntime().availableProcessors(), System.getProperty("os.arch"),
                FloatVector.SPECIES_PREFERRED.vectorBitSize());
        List<Library> libraries = new ArrayList<>();
        Map<NativeLibrary, LoadedLibrary> found = new java.util.EnumMap<>(NativeLibrary.class);
        for (NativeLibrary lib : NativeLibrary.values()) {
            try {
                LoadedLibrary l = NativeLibraries.resolve(lib, env);
                found.put(lib, l);
                libraries.add(new Library(lib.key(), lib.fileName(), true, l.version().toString(), l.path().toString(),
                        l.location(), null, null, l.alsoFound().isEmpty() ? null : l.alsoFound()));
            } catch (LibraryNotFoundException e) {
                libraries.add(new Library(lib.key(), lib.fileName(), false, null, null, null, e.placesTried(), hint(lib),
                        null));
            } catch (RuntimeException | LinkageError e) {
                libraries.add(new Library(lib.key(), lib.fileName(), false, null, null, null,
                        List.of("resolution failed: " + e), hint(lib), null));
            }
        }
        CudaStatus cuda = cuda(found.get(NativeLibrary.CUDA_RUNTIME), queryDevices);
        return new SystemReport(usp4jVersion, jdk, cpu, List.copyOf(libraries), cuda,
                cudnnSdpa(found.get(NativeLibrary.CUDNN)), ncclAllToAll(found.get(NativeLibrary.NCCL)));
    }

    private static CudaStatus cuda(LoadedLibrary runtime, boolean queryDevices) {
        if (runtime == null) {
            return new CudaStatus(null, null, List.of(), "no CUDA runtime found (see libraries)");
        }
        if (!queryDevices) {
            return new CudaStatus(null, runtime.version().toString(), List.of(), "devices not queried");
        }
        String driver = null;
        try {
            int code = Cuda.driverVersion();
            driver = code == 0 ? "none" : code / 1000 + "." + code % 1000 / 10;
            int count = Cuda.deviceCount();
            List<Device> devices = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                DeviceProperties p = Cuda.deviceProperties(i);
                devices.add(new Device(i, p.name(), p.computeCapability(), p.totalMemoryBytes(),
                        p.multiprocessorCount(), p.maxSharedMemoryPerBlockOptin()));
            }
            return new CudaStatus(driver, runtime.version().toString(), List.copyOf(devices),
                    count == 0 ? "no CUDA device visible" : null);
        } catch (RuntimeException | LinkageError e) {
            return new CudaStatus(driver, runtime.version().toString(), List.of(), firstLine(e));
        }
    }

    static CudnnSdpa cudnnSdpa(LoadedLibrary cudnn) {
        if (cudnn == null) {
            return new CudnnSdpa(false, false, "none", "no cuDNN found: the cuda backend cannot run attention");
        }
        LibraryVersion v = cudnn.version();
        boolean dedicated = v.isAtLeast(CUDNN_SDPA_OPERATION);
        String note = "composite SDPA graph (fused flash-attention engines, forward with stats and backward) "
                + "on cuDNN " + v + "; dedicated SDPA operation " + (dedicated ? "available" : "needs " + CUDNN_SDPA_OPERATION)
                + "; usp4j builds the composite graph";
        return new CudnnSdpa(true, dedicated, "composite graph", note);
    }

    static NcclAllToAll ncclAllToAll(LoadedLibrary nccl) {
        if (nccl == null) {
            return new NcclAllToAll(false, "none", "no NCCL found: multi-process GPU runs cannot communicate");
        }
        LibraryVersion v = nccl.version();
        boolean nativeA2a = v.isAtLeast(NCCL_ALL_TO_ALL);
        return new NcclAllToAll(nativeA2a, nativeA2a ? "ncclAlltoAll" : "grouped ncclSend/ncclRecv",
                nativeA2a ? "NCCL " + v + " has the native all-to-all"
                        : "NCCL " + v + ": the native all-to-all needs " + NCCL_ALL_TO_ALL + "; grouped send/recv instead");
    }

    private static String hint(NativeLibrary lib) {
        return "name the file or its directory with " + lib.environmentVariable() + " or -D" + lib.propertyName();
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
