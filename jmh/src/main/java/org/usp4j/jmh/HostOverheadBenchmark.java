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
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.Forward;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The host time one rank of a P = 8 mesh spends orchestrating a USP call when kernels and transfers
 * cost nothing ({@link NoOpRank}): microseconds per forward (target below 50), and per forward plus
 * backward. Shapes are a realistic long-context layer (64K tokens, 32 heads of 128, bf16, causal zigzag);
 * with nothing executed they only decide how many views and steps there are.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class HostOverheadBenchmark {

    @Param({"8x1", "2x4", "1x8"})
    public String mesh;

    /** Which rank of the mesh this thread plays (ring rank 0 skips no step of the causal schedule). */
    @Param({"0"})
    public int rank;

    private UspAttention usp;
    private Tensor q, k, v, dout;

    @Setup
    public void setup() {
        String[] ur = mesh.split("x");
        Mesh m = new Mesh(Integer.parseInt(ur[0]), Integer.parseInt(ur[1]));
        long seq = 65536, heads = 32, headDim = 128, local = seq / m.size();
        MeshGroups groups = new MeshGroups(m, new NoOpRank.NoOpCommunicator(m.ulyssesRank(rank), m.ulysses()),
                new NoOpRank.NoOpCommunicator(m.ringRank(rank), m.ring()));
        Backend backend = new NoOpRank.NoOpBackend();
        usp = new UspAttention(groups, backend, new AttentionOptions(true, SequenceLayout.ZIGZAG, null),
                RingAlgorithms.defaultAlgorithm());
        TensorAllocator inputs = backend.newAllocator();
        q = inputs.allocate(DType.BF16, 1, local, heads, headDim);
        k = inputs.allocate(DType.BF16, 1, local, heads, headDim);
        v = inputs.allocate(DType.BF16, 1, local, heads, headDim);
        dout = inputs.allocate(DType.BF16, 1, local, heads, headDim);
    }

    /** One forward, its saved state released as a training step would after the backward. */
    @Benchmark
    public Tensor forward() {
        try (Forward f = usp.forward(q, k, v)) {
            return f.out();
        }
    }

    @Benchmark
    public Tensor forwardBackward() {
        try (Forward f = usp.forward(q, k, v)) {
            Gradients g = usp.backward(f, dout);
            return g.dq();
        }
    }
}
