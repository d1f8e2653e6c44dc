package org.usp4j.jmh;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.usp4j.cpu.FmaPeak;

/**
 * The machine's float32 FMA peak: {@link FmaPeak}'s vectorised loop on every processor at once
 * ({@code @Threads(MAX)}), in loop calls per second; {@link ResultTable} multiplies by
 * {@link #TRIPS} x {@link FmaPeak#flopsPerTrip(int)} for GFLOP/s. It is the denominator of the CPU
 * kernel's fraction of peak, measured in the same run with the same vector width ({@code vectorBits}, as
 * in {@link CpuKernelBenchmark}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class FmaPeakBenchmark {

    /** Loop trips per call: long enough that the call overhead vanishes (about 0.1 ms). */
    public static final long TRIPS = 1 << 14;

    private float seed = 1f;

    /** The vector width, set once per fork before FmaPeak loads. */
    @State(Scope.Benchmark)
    public static class Width {
        @Param({VectorBits.MAX, "256"})
        public String vectorBits;

        @Setup
        public void setup() {
            VectorBits.select(vectorBits, FmaPeak::vectorBitSize);
        }
    }

    @Benchmark
    @Threads(Threads.MAX)
    public float fmaLoop(Width width) {
        return FmaPeak.fmaLoop(TRIPS, seed);
    }
}
