package org.usp4j.jmh;

import java.lang.foreign.Arena;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.kernel.Mask;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The CPU attention kernel on one device's whole problem (b = 1, h = 16), forward and backward, in
 * milliseconds per call. {@link ResultTable} turns the times into GFLOP/s over unmasked pairs (forward
 * 4 b h pairs d, backward 2.5 times that) and a fraction of {@link FmaPeakBenchmark}'s peak of the same
 * vector width from the same run. Inputs live in a shared arena so that the kernel uses all its threads.
 *
 * <p>{@code vectorBits} picks the kernel's vector width: {@code max} (the machine's widest) or a narrower
 * one, so a 512-bit machine also measures the 256-bit code path. JMH runs every parameter combination in
 * a fresh fork, and the width is read once when the kernel classes load, so the setup sets it first.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class CpuKernelBenchmark {

    static final int HEADS = 16;

    @Param({"4096"})
    public int seq;

    @Param({"64", "128"})
    public int headDim;

    @Param({"BF16", "F32"})
    public String dtype;

    @Param({"false"})
    public boolean causal;

    @Param({VectorBits.MAX, "256"})
    public String vectorBits;

    private Arena arena;
    private CpuAttentionKernel kernel;
    private Tensor q, k, v, out, lse, dout, dq, dk, dv;
    private Mask mask;
    private float scale;

    @Setup
    public void setup() {
        VectorBits.select(vectorBits, CpuAttentionKernel::vectorBitSize);
        arena = Arena.ofShared();
        kernel = new CpuAttentionKernel();
        DType type = DType.valueOf(dtype);
        q = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        k = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        v = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        dout = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        out = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        dq = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        dk = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        dv = Tensor.allocate(arena, type, 1, seq, HEADS, headDim);
        lse = Tensor.allocate(arena, DType.F32, 1, HEADS, seq);
        HostTensors.fillNormal(q, 1);
        HostTensors.fillNormal(k, 2);
        HostTensors.fillNormal(v, 3);
        HostTensors.fillNormal(dout, 4);
        mask = causal ? Mask.CAUSAL : Mask.NONE;
        scale = (float) (1 / Math.sqrt(headDim));
        kernel.forward(q, k, v, mask, scale, out, lse); // the backward's out and lse
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    /** Writes out and lse; the results live in the state, so nothing is eliminated. */
    @Benchmark
    public Tensor forward() {
        kernel.forward(q, k, v, mask, scale, out, lse);
        return out;
    }

    @Benchmark
    public Tensor backward() {
        kernel.backward(q, k, v, out, dout, lse, mask, scale, dq, dk, dv, false);
        return dq;
    }
}
