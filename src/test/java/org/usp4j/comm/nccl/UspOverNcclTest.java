package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.api.Mesh;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.Forward;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspAttention;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The whole USP orchestration over the NCCL communicator (fake NCCL, one thread per rank, the same CPU
 * reference kernel) gives exactly the results of the same orchestration over the in-process
 * communicator, which {@code DistributedAttentionTest} checks against single-rank attention; and every
 * rank's bytes equal the cost model. Exact equality holds because both run identical arithmetic in the
 * same order; only who moves the bytes differs.
 */
@Timeout(120)
class UspOverNcclTest {

    record Case(int ulysses, int ring, boolean causal, SequenceLayout layout, int heads, int kvHeads, DType dtype,
                boolean nativeAllToAll, String algorithm) {
        @Override
        public String toString() {
            return ulysses + "x" + ring + " " + algorithm + (causal ? " causal " : " full ") + layout + " h" + heads + "/" + kvHeads + " "
                    + dtype + (nativeAllToAll ? " ncclAlltoAll" : " grouped all-to-all");
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case(2, 2, true, SequenceLayout.ZIGZAG, 4, 2, DType.BF16, false, "ring"),
                new Case(1, 3, false, SequenceLayout.CONTIGUOUS, 2, 2, DType.F32, true, "ring"),
                new Case(4, 1, true, SequenceLayout.CONTIGUOUS, 4, 1, DType.F32, true, "ring"),
                new Case(1, 4, true, SequenceLayout.STRIPED, 2, 1, DType.F32, true, "ring"),
                new Case(2, 2, true, SequenceLayout.STRIPED, 4, 2, DType.BF16, false, "allgather"),
                new Case(1, 3, true, SequenceLayout.ZIGZAG, 2, 2, DType.F32, true, "allgather"),
                new Case(2, 2, true, SequenceLayout.ZIGZAG, 4, 2, DType.BF16, false, "tokenring"),
                new Case(1, 4, true, SequenceLayout.STRIPED, 2, 1, DType.F32, true, "tokenring"),
                new Case(1, 4, true, SequenceLayout.CONTIGUOUS, 2, 2, DType.F32, true, "lightseq"),
                new Case(2, 3, true, SequenceLayout.CONTIGUOUS, 4, 1, DType.BF16, false, "lightseq"),
                new Case(1, 2, true, SequenceLayout.CONTIGUOUS, 2, 2, DType.F32, true, "lightseq"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void equalsTheInProcessRunExactlyAndMatchesTheCostModel(Case c) throws Exception {
        Mesh mesh = new Mesh(c.ulysses(), c.ring());
        AttentionOptions options = new AttentionOptions(c.causal(), c.layout(), null);
        UspPlan plan = new UspPlan(mesh, options, RingAlgorithms.named(c.algorithm()));
        int b = 1, s = 8 * mesh.size(), d = 8;
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, c.dtype(), 1, b, s, c.heads(), d);
            Tensor k = random(arena, c.dtype(), 2, b, s, c.kvHeads(), d);
            Tensor v = random(arena, c.dtype(), 3, b, s, c.kvHeads(), d);
            Tensor dout = random(arena, c.dtype(), 4, b, s, c.heads(), d);
            ForwardResult expected;
            Gradients expectedGrads;
            try (AttentionEngine local = AttentionEngine.inProcess(plan,
                    r -> new CpuBackend(new ReferenceAttention()), Duration.ofSeconds(30))) {
                expected = local.forward(q, k, v, arena);
                expectedGrads = local.backward(dout, arena);
            }
            Tensor out = Tensor.allocate(arena, c.dtype(), q.shape());
            Tensor dq = Tensor.allocate(arena, c.dtype(), q.shape());
            Tensor dk = Tensor.allocate(arena, c.dtype(), k.shape());
            Tensor dv = Tensor.allocate(arena, c.dtype(), v.shape());
            FakeNccl nccl = new FakeNccl(mesh.size(), c.nativeAllToAll());
            List<Map<TrafficKind, Long>> traffic = FakeRanks.values(FakeRanks.run(nccl, mesh.size(),
                    Duration.ofSeconds(30), true, r -> {
                        HostDeviceBackend backend = new HostDeviceBackend(new ReferenceAttention());
                        try (MeshGroups groups = MeshGroups.split(mesh, r.world());
                             TensorAllocator mine = backend.newAllocator()) {
                            UspAttention usp = plan.create(groups, backend);
                            int rank = r.rank();
                            Tensor[] in = new Tensor[4];
                            Tensor[] global = {q, k, v, dout};
                            for (int i = 0; i < 4; i++) {
                                in[i] = mine.allocate(c.dtype(), b, s / mesh.size(), global[i].size(2), d);
                                c.layout().shard(global[i], in[i], 1, mesh, rank, backend::copy);
                            }
                            try (Forward f = usp.forward(in[0], in[1], in[2])) {
                                Map<TrafficKind, Long> forwardBytes = r.world().traffic().snapshot();
                                Gradients g = usp.backward(f, in[3]);
                                synchronized (out) { // ranks write disjoint rows; the lock only publishes them
                                    c.layout().unshard(f.out(), out, 1, mesh, rank, backend::copy);
                                    c.layout().unshard(g.dq(), dq, 1, mesh, rank, backend::copy);
                                    c.layout().unshard(g.dk(), dk, 1, mesh, rank, backend::copy);
                                    c.layout().unshard(g.dv(), dv, 1, mesh, rank, backend::copy);
                                }
                                return forwardBytes;
                            }
                        }
                    }));
            assertEquals(0, HostTensors.relativeError(out, expected.out()), "out");
            assertEquals(0, HostTensors.relativeError(dq, expectedGrads.dq()), "dq");
            assertEquals(0, HostTensors.relativeError(dk, expectedGrads.dk()), "dk");
            assertEquals(0, HostTensors.relativeError(dv, expectedGrads.dv()), "dv");
            for (int r = 0; r < mesh.size(); r++) {
                assertEquals(plan.forwardBytes(new AttentionShapes(b, s, s, c.heads(), c.kvHeads(), d), c.dtype(), r),
                        new RankBytes(traffic.get(r)), "forward bytes of rank " + r);
            }
        }
    }

    private static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }
}
