package org.usp4j.jmh;

import java.util.concurrent.TimeUnit;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.cuda.global.cudnn;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The same version queries as {@link DowncallBenchmark} through JavaCPP's JNI presets
 * ({@code org.bytedeco:cuda}, the JNI binding users have today), on the same NCCL and cuDNN files (jmh/run
 * puts them on the loader's path); the CUDA runtime is the 12.x the presets were built for. Their JNI
 * libraries link the CUDA driver ({@code libcuda.so.1}); where none is installed jmh/run supplies an empty
 * stand-in, which these version queries never call.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class JavaCppDowncallBenchmark {

    private IntPointer version;

    @Setup
    public void setup() {
        try {
            Loader.load(cudart.class);
            Loader.load(cudnn.class);
            Loader.load(nccl.class);
        } catch (UnsatisfiedLinkError e) {
            throw new IllegalStateException("JavaCPP's cuda presets do not load here (they need libcuda.so.1 and the "
                    + "libraries in target/javacpp-libs on LD_LIBRARY_PATH; jmh/run sets that up): " + e.getMessage(), e);
        }
        version = new IntPointer(1);
    }

    @TearDown
    public void tearDown() {
        version.close();
    }

    @Benchmark
    public int javaCppNcclGetVersion() {
        nccl.ncclGetVersion(version);
        return version.get();
    }

    @Benchmark
    public long javaCppCudnnGetVersion() {
        return cudnn.cudnnGetVersion();
    }

    @Benchmark
    public int javaCppCudaRuntimeGetVersion() {
        cudart.cudaRuntimeGetVersion(version);
        return version.get();
    }
}
