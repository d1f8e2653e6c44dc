package org.usp4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The public API on in-process CPU worlds: every rank calls its layer on its own shard, results land in
 * the caller's buffers, and the gathered results equal float64 attention over the whole sequence.
 * Relative Frobenius error: F32 1e-4; BF16 2e-2 (inputs, outputs and exchanged data round to bf16).
 */
class InProcessWorldTest {

    @ParameterizedTest(name = "mesh {0}x{1} causal={2} {3} h={4} hkv={5} {6}")
    @CsvSource({
            "1, 1, false, CONTIGUOUS, 4, 4, F32",
            "2, 2, true, ZIGZAG, 4, 2, F32",
            "4, 1, true, CONTIGUOUS, 4, 1, F32",
            "1, 4, true, ZIGZAG, 4, 4, F32",
            "2, 2, false, CONTIGUOUS, 4, 4, BF16"})
    void layersOnEveryRankEqualWholeSequenceAttention(int u, int r, boolean causal, SequenceLayout layout, long h,
                                                      long hkv, DType dtype) {
        long b = 2, s = 32, d = 8;
        Mesh mesh = new Mesh(u, r);
        AttentionOptions options = AttentionOptions.defaults().withCausal(causal).withLayout(layout);
        int p = mesh.size();
        try (Arena arena = Arena.ofShared()) {
            Tensor q = GlobalAttention.random(arena, dtype, 1, b, s, h, d);
            Tensor k = GlobalAttention.random(arena, dtype, 2, b, s, hkv, d);
            Tensor v = GlobalAttention.random(arena, dtype, 3, b, s, hkv, d);
            Tensor dout = GlobalAttention.random(arena, dtype, 4, b, s, h, d);
            Tensor out = Tensor.allocate(arena, dtype, b, s, h, d);
            Tensor dq = Tensor.allocate(arena, dtype, b, s, h, d);
            Tensor dk = Tensor.allocate(arena, dtype, b, s, hkv, d);
            Tensor dv = Tensor.allocate(arena, dtype, b, s, hkv, d);
            try (InProcessWorld world = Usp4j.cpuWorld(p)) {
                assertEquals(p, world.size());
                assertEquals(BackendKind.CPU, world.backend());
                List<Integer> ranks = world.run(rank -> {
                    int me = rank.rank();
                    Tensor lq = GlobalAttention.shard(q, layout, mesh, me, arena);
                    Tensor lk = GlobalAttention.shard(k, layout, mesh, me, arena);
                    Tensor lv = GlobalAttention.shard(v, layout, mesh, me, arena);
                    Tensor ldout = GlobalAttention.shard(dout, layout, mesh, me, arena);
                    Tensor lout = Tensor.allocate(arena, dtype, lq.shape());
                    Tensor ldq = Tensor.allocate(arena, dtype, lq.shape());
                    Tensor ldk = Tensor.allocate(arena, dtype, lk.shape());
                    Tensor ldv = Tensor.allocate(arena, dtype, lv.shape());
                    try (AttentionLayer layer = rank.newAttention(mesh, options)) {
                        layer.forward(lq, lk, lv, lout);
                        assertTrue(layer.hasSavedState());
                        layer.backward(ldout, ldq, ldk, ldv);
                        assertFalse(layer.hasSavedState());
                    }
                    GlobalAttention.unshard(lout, out, layout, mesh, me);
                    GlobalAttention.unshard(ldq, dq, layout, mesh, me);
                    GlobalAttention.unshard(ldk, dk, layout, mesh, me);
                    GlobalAttention.unshard(ldv, dv, layout, mesh, me);
                    return me;
                });
                assertEquals(List.of(0, 1, 2, 3).subList(0, p), ranks);
            }
            GlobalAttention.Reference ref = GlobalAttention.reference(q, k, v, dout, options, arena);
            double tol = dtype == DType.F32 ? 1e-4 : 2e-2;
            check("out", ref.out(), out, tol);
            check("dq", ref.dq(), dq, tol);
            check("dk", ref.dk(), dk, tol);
            check("dv", ref.dv(), dv, tol);
        }
    }

    @Test
    void inputsMayBeStridedViewsOfOneFusedQkvBuffer() {
        // A framework's fused projection: [b, s, 3, h, d]; q, k, v are views, nothing is copied to make them.
        long b = 1, s = 16, h = 4, d = 8;
        Mesh mesh = new Mesh(2, 2);
        AttentionOptions options = AttentionOptions.defaults().withCausal(true);
        try (Arena arena = Arena.ofShared()) {
            Tensor q = GlobalAttention.random(arena, DType.F32, 11, b, s, h, d);
            Tensor k = GlobalAttention.random(arena, DType.F32, 12, b, s, h, d);
            Tensor v = GlobalAttention.random(arena, DType.F32, 13, b, s, h, d);
            Tensor dout = GlobalAttention.random(arena, DType.F32, 14, b, s, h, d);
            Tensor out = Tensor.allocate(arena, DType.F32, b, s, h, d);
            Tensor dq = Tensor.allocate(arena, DType.F32, b, s, h, d);
            try (InProcessWorld world = Usp4j.cpuWorld(mesh.size())) {
                world.run(rank -> {
                    int me = rank.rank();
                    long sl = s / mesh.size();
                    Tensor fused = Tensor.allocate(arena, DType.F32, b, sl, 3, h, d);
                    Tensor[] views = new Tensor[3];
                    Tensor[] globals = {q, k, v};
                    for (int i = 0; i < 3; i++) {
                        views[i] = fused.slice(2, i, 1).withGeometry(new long[] {b, sl, h, d},
                                new long[] {sl * 3 * h * d, 3 * h * d, d, 1}, fused.offset() + (long) i * h * d);
                        HostTensors.copy(GlobalAttention.shard(globals[i], options.layout(), mesh, me, arena), views[i]);
                    }
                    Tensor dfused = Tensor.allocate(arena, DType.F32, b, sl, 3, h, d);
                    Tensor[] grads = new Tensor[3];
                    for (int i = 0; i < 3; i++) {
                        grads[i] = dfused.withGeometry(new long[] {b, sl, h, d},
                                new long[] {sl * 3 * h * d, 3 * h * d, d, 1}, (long) i * h * d);
                    }
                    Tensor lout = Tensor.allocate(arena, DType.F32, b, sl, h, d);
                    try (AttentionLayer layer = rank.newAttention(mesh, options)) {
                        layer.forward(views[0], views[1], views[2], lout);
                        layer.backward(GlobalAttention.shard(dout, options.layout(), mesh, me, arena), grads[0],
                                grads[1], grads[2]);
                    }
                    GlobalAttention.unshard(lout, out, options.layout(), mesh, me);
                    GlobalAttention.unshard(grads[0], dq, options.layout(), mesh, me);
                    return null;
                });
            }
            GlobalAttention.Reference ref = GlobalAttention.reference(q, k, v, dout, options, arena);
            check("out", ref.out(), out, 1e-4);
            check("dq", ref.dq(), dq, 1e-4);
        }
    }

    static void check(String what, Tensor expected, Tensor actual, double tolerance) {
        double err = HostTensors.relativeError(actual, expected);
        assertTrue(err <= tolerance, () -> what + ": relative error " + err + " > " + tolerance);
    }
}
