package org.usp4j.sp.linear;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.api.Mesh;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.cpu.CpuLinearAttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.LinearMask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.kernel.ReferenceLinearAttention;
import org.usp4j.sp.Forward;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.SequenceParallelAttention;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * LASP-2 inside Ulysses on in-process ranks: out, dq, dk, dv gathered from every rank equal the CPU
 * kernel run on the whole sequence on one rank, which itself equals the float64 reference; every rank's
 * bytes equal the plan's cost model (Ulysses plus {@link Lasp2Attention#algorithm}'s) and do not grow with
 * the sequence. Tolerances (relative Frobenius
 * error): F32 1e-5 (float32 sums in another order); BF16 1e-2 (outputs and gradients rounded to bf16 on
 * both sides, replicated KV heads' gradients rounded before they are summed).
 */
class Lasp2AttentionTest {

    private static final long SEED = Long.getLong("usp4j.test.seed", System.nanoTime());
    private static final int[][] MESHES = {{1, 2}, {1, 4}, {2, 2}, {1, 8}, {2, 1}, {1, 3}, {4, 2}};

    record Case(int ulysses, int ring, LinearMask mask, int batch, int seq, int heads, int kvHeads, int headDim,
                DType dtype, float scale) {
        @Override
        public String toString() {
            return ulysses + "x" + ring + " " + mask + " b" + batch + " S" + seq + " h" + heads + "/" + kvHeads + " d"
                    + headDim + " " + dtype + " scale " + scale;
        }
    }

    /** Every mesh with each mask in f32 and bf16; head grouping, head_dim and batch rotate. */
    static Stream<Case> cases() {
        List<Case> cases = new ArrayList<>();
        LinearMask[] masks = {LinearMask.NONE, LinearMask.causal(1), LinearMask.causal(0.9)};
        int i = 0;
        for (int[] m : MESHES) {
            int u = m[0];
            int p = m[0] * m[1];
            int h = u >= 4 ? 8 : 4;
            for (LinearMask mask : masks) {
                for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                    int[] kv = {h, Math.max(1, h / 2), 1}; // MHA, GQA, MQA (replicated when h_kv < U)
                    int d = new int[] {8, 13, 24}[i % 3];
                    int seq = p * (i % 2 == 0 ? 9 : 5); // local blocks that are not a chunk multiple
                    cases.add(new Case(u, m[1], mask, i % 4 == 1 ? 2 : 1, seq, h, kv[i % 3], d, dtype,
                            i % 5 == 2 ? 0.5f : 1f));
                    i++;
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void distributedEqualsOneRankAndTheCostModel(Case c) {
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, c.dtype(), SEED, c.batch(), c.seq(), c.heads(), c.headDim());
            Tensor k = random(arena, c.dtype(), SEED + 1, c.batch(), c.seq(), c.kvHeads(), c.headDim());
            Tensor v = random(arena, c.dtype(), SEED + 2, c.batch(), c.seq(), c.kvHeads(), c.headDim());
            Tensor dout = random(arena, c.dtype(), SEED + 3, c.batch(), c.seq(), c.heads(), c.headDim());
            LinearAttentionOptions options = new LinearAttentionOptions(c.mask(), c.scale());
            Run run = distributed(arena, new Mesh(c.ulysses(), c.ring()), options, q, k, v, dout);

            // One rank: the CPU kernel on the whole sequence, in the input dtype, then float64.
            CpuLinearAttentionKernel kernel = new CpuLinearAttentionKernel();
            Tensor[] one = {like(arena, q), like(arena, q), like(arena, k), like(arena, v)};
            kernel.forward(q, k, v, c.mask(), c.scale(), null, one[0]);
            kernel.backward(q, k, v, dout, c.mask(), c.scale(), null, null, one[1], one[2], one[3]);
            ReferenceLinearAttention reference = new ReferenceLinearAttention();
            Tensor[] exact = {f32(arena, q), f32(arena, q), f32(arena, k), f32(arena, v)};
            reference.forward(q, k, v, c.mask(), c.scale(), null, exact[0]);
            reference.backward(q, k, v, dout, c.mask(), c.scale(), null, null, exact[1], exact[2], exact[3]);

            double tolerance = c.dtype() == DType.F32 ? 1e-5 : 1e-2;
            String[] names = {"out", "dq", "dk", "dv"};
            for (int t = 0; t < 4; t++) {
                assertEquals(c.dtype(), run.results[t].dtype());
                assertClose(names[t] + " vs one rank", run.results[t], one[t], tolerance);
                assertClose(names[t] + " of one rank vs float64", one[t], exact[t], c.dtype() == DType.F32 ? 1e-5 : 4e-3);
            }

            Mesh mesh = new Mesh(c.ulysses(), c.ring());
            UspPlan plan = Lasp2Attention.plan(mesh, options);
            AttentionShapes global = new AttentionShapes(c.batch(), c.seq(), c.seq(), c.heads(), c.kvHeads(), c.headDim());
            RankBytes fwd = plan.forwardBytes(global, c.dtype());
            RankBytes bwd = plan.backwardBytes(global, c.dtype());
            // The model itself: all_gather b (h_kv'/U) d^2 4 in each pass, no p2p.
            long states = (c.ring() - 1L) * c.batch() * (Math.max(c.kvHeads(), c.ulysses()) / c.ulysses())
                    * c.headDim() * c.headDim() * 4;
            assertEquals(states, fwd.get(TrafficKind.ALL_GATHER));
            assertEquals(states, bwd.get(TrafficKind.ALL_GATHER));
            assertEquals(0, fwd.get(TrafficKind.P2P) + bwd.get(TrafficKind.P2P));
            for (int r = 0; r < mesh.size(); r++) {
                assertEquals(fwd, new RankBytes(run.forwardBytes.get(r)), "forward bytes of rank " + r);
                assertEquals(bwd, new RankBytes(run.backwardBytes.get(r)), "backward bytes of rank " + r);
            }
        }
    }

    @Test
    void stateBytesFollowTheModelAndDoNotGrowWithTheSequence() {
        Mesh mesh = new Mesh(2, 4);
        LinearAttentionOptions options = new LinearAttentionOptions(LinearMask.causal(0.99), 1f);
        long[] gathered = new long[2];
        int[] lengths = {64, 256};
        for (int t = 0; t < 2; t++) {
            try (Arena arena = Arena.ofShared()) {
                Tensor q = random(arena, DType.BF16, SEED, 1, lengths[t], 8, 16);
                Tensor dout = random(arena, DType.BF16, SEED + 3, 1, lengths[t], 8, 16);
                Run run = distributed(arena, mesh, options, q, q, q, dout);
                gathered[t] = run.forwardBytes.get(0).get(TrafficKind.ALL_GATHER);
                assertEquals(gathered[t], run.backwardBytes.get(0).get(TrafficKind.ALL_GATHER));
                assertEquals(0L, run.forwardBytes.get(0).get(TrafficKind.P2P));
            }
        }
        // (R-1) (h/U) d^2 4 for MHA: 3 * 4 * 256 * 4 bytes, at S and 4 S alike.
        assertEquals(3L * 4 * 16 * 16 * 4, gathered[0]);
        assertEquals(gathered[0], gathered[1]);
    }

    @Test
    void decayWithoutCausalIsRefusedAndTheLseIsNull() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LinearAttentionOptions.of(false, 0.9, null));
        assertTrue(e.getMessage().contains("--decay needs --causal"), e.getMessage());
        assertEquals(1f, LinearAttentionOptions.of(true, null, null).scale());
        assertEquals(LinearMask.causal(0.5), LinearAttentionOptions.of(true, 0.5, null).mask());
        // lse is not part of linear attention.
        try (LocalWorld world = new LocalWorld(1, Duration.ofSeconds(10)); Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, DType.F32, SEED, 1, 4, 2, 4);
            world.run((rank, comm) -> {
                CpuBackend backend = new CpuBackend(new ReferenceAttention());
                try (Forward f = new Lasp2Attention(comm, backend, options()).forward(q, q, q)) {
                    assertEquals(null, f.lse());
                }
                return null;
            });
        }
    }

    private static LinearAttentionOptions options() {
        return LinearAttentionOptions.of(true, 0.9, null);
    }

    /** What a distributed run gathered (out, dq, dk, dv in global order) and each rank's bytes per pass. */
    private record Run(Tensor[] results, List<Map<TrafficKind, Long>> forwardBytes,
                       List<Map<TrafficKind, Long>> backwardBytes) {
    }

    private static Run distributed(Arena arena, Mesh mesh, LinearAttentionOptions options, Tensor q, Tensor k,
                                   Tensor v, Tensor dout) {
        Tensor[] results = {like(arena, q), like(arena, q), like(arena, k), like(arena, v)};
        long local = q.size(1) / mesh.size();
        SequenceLayout layout = SequenceLayout.CONTIGUOUS;
        List<List<Map<TrafficKind, Long>>> bytes;
        try (LocalWorld world = new LocalWorld(mesh.size(), Duration.ofSeconds(60))) {
            bytes = world.run((rank, comm) -> {
                CpuBackend backend = new CpuBackend(new ReferenceAttention());
                try (MeshGroups groups = MeshGroups.split(mesh, comm)) {
                    Tensor[] in = new Tensor[4];
                    Tensor[] global = {q, k, v, dout};
                    for (int t = 0; t < 4; t++) {
                        in[t] = Tensor.allocate(arena, global[t].dtype(), global[t].size(0), local, global[t].size(2),
                                global[t].size(3));
                        layout.shard(global[t], in[t], 1, mesh, rank, backend::copy);
                    }
                    SequenceParallelAttention lasp = Lasp2Attention.plan(mesh, options).create(groups, backend);
                    Map<TrafficKind, Long> start = comm.traffic().snapshot();
                    try (Forward f = lasp.forward(in[0], in[1], in[2])) {
                        Map<TrafficKind, Long> afterForward = comm.traffic().snapshot();
                        Gradients g = lasp.backward(f, in[3]);
                        Map<TrafficKind, Long> afterBackward = comm.traffic().snapshot();
                        Tensor[] mine = {f.out(), g.dq(), g.dk(), g.dv()};
                        for (int t = 0; t < 4; t++) {
                            layout.unshard(mine[t], results[t], 1, mesh, rank, backend::copy);
                        }
                        return List.of(difference(afterForward, start), difference(afterBackward, afterForward));
                    }
                }
            });
        }
        return new Run(results, bytes.stream().map(b -> b.get(0)).toList(), bytes.stream().map(b -> b.get(1)).toList());
    }

    private static Map<TrafficKind, Long> difference(Map<TrafficKind, Long> later, Map<TrafficKind, Long> earlier) {
        java.util.EnumMap<TrafficKind, Long> d = new java.util.EnumMap<>(TrafficKind.class);
        later.forEach((kind, n) -> d.put(kind, n - earlier.get(kind)));
        return d;
    }

    private static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    private static Tensor like(Arena arena, Tensor t) {
        return Tensor.allocate(arena, t.dtype(), t.shape());
    }

    private static Tensor f32(Arena arena, Tensor t) {
        return Tensor.allocate(arena, DType.F32, t.shape());
    }

    private static void assertClose(String name, Tensor actual, Tensor expected, double tolerance) {
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, name + ": relative Frobenius error " + error + " > " + tolerance + ", seed " + SEED);
    }
}
