package org.usp4j.api.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.usp4j.api.InProcessWorld;
import org.usp4j.api.Mesh;
import org.usp4j.api.Usp4j;
import org.usp4j.api.example.ToyTransformerExample.RankStep;
import org.usp4j.api.example.ToyTransformerExample.Shape;
import org.usp4j.api.example.ToyTransformerExample.Staging;
import org.usp4j.api.example.ToyTransformerExample.Weights;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The README's worked example on 4 in-process CPU ranks (mesh 2x2, causal, zigzag), float32:
 * <ul>
 *   <li>every layer's attention output and its gradients with respect to q, k, v equal float64 attention
 *       ({@link ReferenceAttention}) over the gathered whole-sequence q, k, v and upstream gradient:
 *       relative Frobenius error at most 1e-5 (measured: about 3e-7);</li>
 *   <li>the block outputs y and dLoss/dx equal the same code on a single rank: at most 1e-5 (measured: 3e-7);</li>
 *   <li>dLoss/dx equals central finite differences of loss = sum(y * dy) on a few coordinates of x, which
 *       checks the whole backward chain (attention and projections) without usp4j's backward: absolute error
 *       at most 5e-4 + 1e-3 |dx| (eps 1e-2; measured: up to 2.4e-4 on |dx| of 0.6 to 2.8, from float32 rounding of
 *       the loss divided by 2 eps and the O(eps^2) truncation).</li>
 * </ul>
 */
class ToyTransformerExampleTest {

    static final Shape SHAPE = new Shape(4, 2, 8, DType.F32);
    static final long SEQ = 32;
    static final Mesh MESH = new Mesh(2, 2);

    @Test
    void fourRanksEqualFloat64AttentionAndOneRank() {
        try (Arena arena = Arena.ofShared()) {
            List<Weights> layers = List.of(ToyTransformerExample.randomWeights(SHAPE, 1, arena),
                    ToyTransformerExample.randomWeights(SHAPE, 2, arena));
            MemorySegment x = ToyTransformerExample.randomRows(SHAPE, SEQ, 3, arena);
            MemorySegment dy = ToyTransformerExample.randomRows(SHAPE, SEQ, 4, arena);
            List<RankStep> four;
            try (InProcessWorld world = Usp4j.cpuWorld(4)) {
                four = ToyTransformerExample.step(world, MESH, SHAPE, layers, x, dy, Staging.HOST, arena);
            }
            List<RankStep> one;
            try (InProcessWorld world = Usp4j.cpuWorld(1)) {
                one = ToyTransformerExample.step(world, new Mesh(1, 1), SHAPE, layers, x, dy, Staging.HOST, arena);
            }
            assertEquals(4, four.size());
            for (RankStep r : four) {
                assertEquals(SEQ / 4, r.positions().length);
            }
            int c = SHAPE.width();
            int ckv = SHAPE.kvWidth();
            for (int layer = 0; layer < layers.size(); layer++) {
                int l = layer;
                double[] q = gather(four, r -> r.blocks().get(l).q, c);
                double[] k = gather(four, r -> r.blocks().get(l).k, ckv);
                double[] v = gather(four, r -> r.blocks().get(l).v, ckv);
                double[] dout = gather(four, r -> r.blocks().get(l).dy, c);
                Reference ref = reference(q, k, v, dout, arena);
                String at = "layer " + layer + " ";
                check(at + "out", ref.out, gather(four, r -> r.blocks().get(l).out, c), 1e-5);
                check(at + "dq", ref.dq, gather(four, r -> r.blocks().get(l).dq, c), 1e-5);
                check(at + "dk", ref.dk, gather(four, r -> r.blocks().get(l).dk, ckv), 1e-5);
                check(at + "dv", ref.dv, gather(four, r -> r.blocks().get(l).dv, ckv), 1e-5);
                check(at + "dq vs one rank", gather(one, r -> r.blocks().get(l).dq, c),
                        gather(four, r -> r.blocks().get(l).dq, c), 1e-5);
            }
            check("y vs one rank", gather(one, RankStep::y, c), gather(four, RankStep::y, c), 1e-5);
            check("dx vs one rank", gather(one, RankStep::dx, c), gather(four, RankStep::dx, c), 1e-5);
        }
    }

    @Test
    void dxEqualsFiniteDifferencesOfTheLoss() {
        double eps = 1e-2;
        long[][] coordinates = {{0, 3}, {13, 20}, {22, 0}, {31, 31}};
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(4)) {
            List<Weights> layers = List.of(ToyTransformerExample.randomWeights(SHAPE, 5, arena),
                    ToyTransformerExample.randomWeights(SHAPE, 6, arena));
            MemorySegment x = ToyTransformerExample.randomRows(SHAPE, SEQ, 7, arena);
            MemorySegment dy = ToyTransformerExample.randomRows(SHAPE, SEQ, 8, arena);
            double[] dx = gather(ToyTransformerExample.step(world, MESH, SHAPE, layers, x, dy, Staging.HOST, arena),
                    RankStep::dx, SHAPE.width());
            for (long[] at : coordinates) {
                long index = at[0] * SHAPE.width() + at[1];
                float original = ToyTransformerExample.get(x, SHAPE, index);
                ToyTransformerExample.set(x, SHAPE, index, (float) (original + eps));
                double plus = loss(world, layers, x, dy, arena);
                ToyTransformerExample.set(x, SHAPE, index, (float) (original - eps));
                double minus = loss(world, layers, x, dy, arena);
                ToyTransformerExample.set(x, SHAPE, index, original);
                double fd = (plus - minus) / (2 * eps);
                double analytic = dx[(int) index];
                assertTrue(Math.abs(fd - analytic) <= 5e-4 + 1e-3 * Math.abs(analytic),
                        "dLoss/dx at row " + at[0] + ", column " + at[1] + ": usp4j " + analytic
                                + ", finite difference " + fd);
            }
        }
    }

    /** loss = sum(y * dy), so that dLoss/dy is dy. */
    private static double loss(InProcessWorld world, List<Weights> layers, MemorySegment x, MemorySegment dy, Arena arena) {
        List<RankStep> steps = ToyTransformerExample.step(world, MESH, SHAPE, layers, x, dy, Staging.HOST, arena);
        double[] y = gather(steps, RankStep::y, SHAPE.width());
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += y[i] * ToyTransformerExample.get(dy, SHAPE, i);
        }
        return sum;
    }

    /** Every rank's rows of one quantity [n x width], put back at their global positions: [S x width]. */
    static double[] gather(List<RankStep> steps, Function<RankStep, MemorySegment> part, int width) {
        return gather(steps, part, width, SHAPE);
    }

    static double[] gather(List<RankStep> steps, Function<RankStep, MemorySegment> part, int width, Shape shape) {
        int seq = steps.stream().mapToInt(r -> r.positions().length).sum();
        double[] global = new double[seq * width];
        for (RankStep r : steps) {
            MemorySegment rows = part.apply(r);
            for (int i = 0; i < r.positions().length; i++) {
                for (int j = 0; j < width; j++) {
                    global[(int) r.positions()[i] * width + j] = ToyTransformerExample.get(rows, shape, (long) i * width + j);
                }
            }
        }
        return global;
    }

    record Reference(double[] out, double[] dq, double[] dk, double[] dv) {
    }

    /** Float64 causal attention over the whole sequence, forward and backward. */
    private static Reference reference(double[] q, double[] k, double[] v, double[] dout, Arena arena) {
        int h = SHAPE.heads();
        int hkv = SHAPE.kvHeads();
        int d = SHAPE.headDim();
        Tensor tq = tensor(q, arena, 1, SEQ, h, d);
        Tensor tk = tensor(k, arena, 1, SEQ, hkv, d);
        Tensor tv = tensor(v, arena, 1, SEQ, hkv, d);
        Tensor tdout = tensor(dout, arena, 1, SEQ, h, d);
        Tensor out = Tensor.allocate(arena, DType.F32, 1, SEQ, h, d);
        Tensor lse = Tensor.allocate(arena, DType.F32, 1, h, SEQ);
        float scale = (float) (1 / Math.sqrt(d));
        ReferenceAttention ref = new ReferenceAttention();
        ref.forward(tq, tk, tv, Mask.CAUSAL, scale, out, lse);
        Tensor dq = Tensor.allocate(arena, DType.F32, tq.shape());
        Tensor dk = Tensor.allocate(arena, DType.F32, tk.shape());
        Tensor dv = Tensor.allocate(arena, DType.F32, tv.shape());
        ref.backward(tq, tk, tv, out, tdout, lse, Mask.CAUSAL, scale, dq, dk, dv, false);
        return new Reference(HostTensors.toDoubleArray(out), HostTensors.toDoubleArray(dq),
                HostTensors.toDoubleArray(dk), HostTensors.toDoubleArray(dv));
    }

    private static Tensor tensor(double[] values, Arena arena, long... shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        for (int i = 0; i < values.length; i++) {
            DType.F32.write(t.segment(), (long) i * Float.BYTES, (float) values[i]);
        }
        return t;
    }

    static void check(String what, double[] expected, double[] actual, double tolerance) {
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, what + ": relative error " + error + " > " + tolerance);
    }
}
