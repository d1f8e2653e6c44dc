package org.usp4j.jmh;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.usp4j.bindings.cuda.CudaRuntimeApi;
import org.usp4j.bindings.cudnn.CudnnApi;
import org.usp4j.bindings.nccl.NcclApi;
import org.usp4j.cuda.Cuda;
import org.usp4j.cudnn.Cudnn;
import org.usp4j.nccl.Nccl;

/**
 * The cost of one trivial downcall (a version query) into the real NCCL, cuDNN and CUDA runtime files, by
 * route: usp4j's generated FFM bindings called directly ({@code ffmBinding*}: a plain downcall handle and a
 * preallocated out-parameter), usp4j's wrappers ({@code ffmWrapper*}: a critical downcall handle, an
 * {@code int[1]} as the out-parameter and a status check per call), and the JNI shim ({@code jniShim*},
 * jmh/src/main/c/usp4j_jni_shim.c) calling the same functions of the same files.
 * JavaCPP's presets are in {@link JavaCppDowncallBenchmark}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class DowncallBenchmark {

    private Arena arena;
    private MemorySegment version;

    @Setup
    public void setup() {
        // The wrappers find and load the libraries; the generated bindings then resolve their symbols.
        Path nccl = Nccl.library().path();
        Path cudnn = Cudnn.library().path();
        Path cudart = Cuda.library().path();
        String shim = System.getProperty("usp4j.jmh.shim");
        if (shim == null) {
            throw new IllegalStateException("-Dusp4j.jmh.shim=<path of libusp4j_jni_shim.so> is not set (jmh/run builds it)");
        }
        JniShim.load(Path.of(shim), nccl, cudnn, cudart);
        arena = Arena.ofConfined();
        version = arena.allocate(ValueLayout.JAVA_INT);
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public int ffmBindingNcclGetVersion() {
        NcclApi.ncclGetVersion(version);
        return version.get(ValueLayout.JAVA_INT, 0);
    }

    @Benchmark
    public long ffmBindingCudnnGetVersion() {
        return CudnnApi.cudnnGetVersion();
    }

    @Benchmark
    public int ffmBindingCudaRuntimeGetVersion() {
        CudaRuntimeApi.cudaRuntimeGetVersion(version);
        return version.get(ValueLayout.JAVA_INT, 0);
    }

    @Benchmark
    public int ffmWrapperNcclGetVersion() {
        return Nccl.versionCode();
    }

    @Benchmark
    public long ffmWrapperCudnnGetVersion() {
        return Cudnn.versionCode();
    }

    @Benchmark
    public int ffmWrapperCudaRuntimeGetVersion() {
        return Cuda.runtimeVersion();
    }

    @Benchmark
    public int jniShimNcclGetVersion() {
        return JniShim.ncclGetVersion();
    }

    @Benchmark
    public long jniShimCudnnGetVersion() {
        return JniShim.cudnnGetVersion();
    }

    @Benchmark
    public int jniShimCudaRuntimeGetVersion() {
        return JniShim.cudaRuntimeGetVersion();
    }
}
