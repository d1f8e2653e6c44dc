package org.usp4j.api.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
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
 * The checks are written for any model built from the example's blocks ({@link Model}, one float64
 * {@link Oracle} per layer); {@code HybridModelExampleTest} runs them on the hybrid model.
 */
class ToyTransformerExampleTest {

    static final Shape SHAPE = new Shape(4, 2, 8, DType.F32);
    static final long SEQ = 32;
    static final Mesh MESH = new Mesh(2, 2);

    /** One training step of a model made of the example's blocks. */
    interface Model {
        List<RankStep> step(InProcessWorld world, Mesh mesh, List<Weights> layers, MemorySegment x, MemorySegment dy,
                            Arena arena);
    }

    /** A layer's attention over the whole sequence in float64, forward and backward, on F32 tensors. */
    interface Oracle {
        void attend(Tensor q, Tensor k, Tensor v, Tensor dout, Tensor out, Tensor dq, Tensor dk, Tensor dv);
    }

    /** Causal softmax attention, scale 1/sqrt(d): {@link ReferenceAttention}. */
    static final Oracle CAUSAL_SOFTMAX = (q, k, v, dout, out, dq, dk, dv) -> {
        float scale = (float) (1 / Math.sqrt(q.size(3)));
        Tensor lse = Tensor.allocate(Arena.ofAuto(), DType.F32, q.size(0), q.size(2), q.size(1));
        ReferenceAttention ref = new ReferenceAttention();
        ref.forward(q, k, v, Mask.CAUSAL, scale, out, lse);
        ref.backward(q, k, v, out, dout, lse, Mask.CAUSAL, scale, dq, dk, dv, false);
    };

    static final Model TOY = (world, mesh, layers, x, dy, arena) ->
            ToyTransformerExample.step(world, mesh, SHAPE, layers, x, dy, Staging.HOST, arena);

    @Test
    void fourRanksEqualFloat64AttentionAndOneRank() {
        fourRanksEqualFloat64AttentionAndOneRank(TOY, MESH, Collections.nCopies(2, CAUSAL_SOFTMAX), 1e-5);
    }

    @Test
    void dxEqualsFiniteDifferencesOfTheLoss() {
        dxEqualsFiniteDifferencesOfTheLoss(TOY, 2, 1e-2, 5e-4, 1e-3);
    }

    /**
     * The model on {@code mesh} and on one rank, from the same random weights, x and dy: every layer's out,
     * dq, dk, dv against its oracle over the gathered whole-sequence inputs, and dq, y, dx against one rank,
     * each within {@code tolerance} (relative Frobenius error).
     */
    static void fourRanksEqualFloat64AttentionAndOneRank(Model model, Mesh mesh, List<Oracle> oracles, double tolerance) {
        try (Arena arena = Arena.ofShared()) {
            List<Weights> layers = new ArrayList<>();
            for (int l = 0; l < oracles.size(); l++) {
                layers.add(ToyTransformerExample.randomWeights(SHAPE, 1 + l, arena));
            }
            MemorySegment x = ToyTransformerExample.randomRows(SHAPE, SEQ, 3, arena);
            MemorySegment dy = ToyTransformerExample.randomRows(SHAPE, SEQ, 4, arena);
            List<RankStep> many;
            try (InProcessWorld world = Usp4j.cpuWorld(mesh.size())) {
                many = model.step(world, mesh, layers, x, dy, arena);
            }
            List<RankStep> one;
            try (InProcessWorld world = Usp4j.cpuWorld(1)) {
                one = model.step(world, new Mesh(1, 1), layers, x, dy, arena);
            }
            assertEquals(mesh.size(), many.size());
            for (RankStep r : many) {
                assertEquals(SEQ / mesh.size(), r.positions().length);
            }
            int c = SHAPE.width();
            int ckv = SHAPE.kvWidth();
            for (int layer = 0; layer < layers.size(); layer++) {
                int l = layer;
                Reference ref = reference(oracles.get(l), gather(many, r -> r.blocks().get(l).q, c),
                        gather(many, r -> r.blocks().get(l).k, ckv), gather(many, r -> r.blocks().get(l).v, ckv),
                        gather(many, r -> r.blocks().get(l).dy, c), arena);
                String at = "layer " + layer + " ";
                check(at + "out", ref.out, gather(many, r -> r.blocks().get(l).out, c), tolerance);
                check(at + "dq", ref.dq, gather(many, r -> r.blocks().get(l).dq, c), tolerance);
                check(at + "dk", ref.dk, gather(many, r -> r.blocks().get(l).dk, ckv), tolerance);
                check(at + "dv", ref.dv, gather(many, r -> r.blocks().get(l).dv, ckv), tolerance);
                check(at + "dq vs one rank", gather(one, r -> r.blocks().get(l).dq, c),
                        gather(many, r -> r.blocks().get(l).dq, c), tolerance);
            }
            check("y vs one rank", gather(one, RankStep::y, c), gather(many, RankStep::y, c), tolerance);
            check("dx vs one rank", gather(one, RankStep::dx, c), gather(many, RankStep::dx, c), tolerance);
        }
    }

    /**
     * dLoss/dx of the model on {@link #MESH} against central finite differences (step {@code eps}) of
     * loss = sum(y * dy) on a few coordinates of x: |fd - dx| at most {@code absolute + relative |dx|}.
     */
    static void dxEqualsFiniteDifferencesOfTheLoss(Model model, int layerCount, double eps, double absolute,
                                                   double relative) {
        long[][] coordinates = {{0, 3}, {13, 20}, {22, 0}, {31, 31}};
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(MESH.size())) {
            List<Weights> layers = new ArrayList<>();
            for (int l = 0; l < layerCount; l++) {
                layers.add(ToyTransformerExample.randomWeights(SHAPE, 5 + l, arena));
            }
            MemorySegment x = ToyTransformerExample.randomRows(SHAPE, SEQ, 7, arena);
            MemorySegment dy = ToyTransformerExample.randomRows(SHAPE, SEQ, 8, arena);
            double[] dx = gather(model.step(world, MESH, layers, x, dy, arena), RankStep::dx, SHAPE.width());
            for (long[] at : coordinates) {
                long index = at[0] * SHAPE.width() + at[1];
                float original = ToyTransformerExample.get(x, SHAPE, index);
                ToyTransformerExample.set(x, SHAPE, index, (float) (original + eps));
                double plus = loss(model, world, layers, x, dy, arena);
                ToyTransformerExample.set(x, SHAPE, index, (float) (original - eps));
                double minus = loss(model, world, layers, x, dy, arena);
                ToyTransformerExample.set(x, SHAPE, index, original);
                double fd = (plus - minus) / (2 * eps);
                double analytic = dx[(int) index];
                assertTrue(Math.abs(fd - analytic) <= absolute + relative * Math.abs(analytic),
                        "dLoss/dx at row " + at[0] + ", column " + at[1] + ": usp4j " + analytic
                                + ", finite difference " + fd);
            }
        }
    }

    /** loss = sum(y * dy), so that dLoss/dy is dy. */
    private static double loss(Model model, InProcessWorld world, List<Weights> layers, MemorySegment x,
                               MemorySegment dy, Arena arena) {
        double[] y = gather(model.step(world, MESH, layers, x, dy, arena), RankStep::y, SHAPE.width());
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

    /** The oracle over whole-sequence rows [S x C] (q, dout) and [S x Ckv] (k, v), as [1, S, heads, d]. */
    private static Reference reference(Oracle oracle, double[] q, double[] k, double[] v, double[] dout, Arena arena) {
        int h = SHAPE.heads();
        int hkv = SHAPE.kvHeads();
        int d = SHAPE.headDim();
        Tensor tq = tensor(q, arena, 1, SEQ, h, d);
        Tensor tk = tensor(k, arena, 1, SEQ, hkv, d);
        Tensor tv = tensor(v, arena, 1, SEQ, hkv, d);
        Tensor tdout = tensor(dout, arena, 1, SEQ, h, d);
        Tensor out = Tensor.allocate(arena, DType.F32, tq.shape());
        Tensor dq = Tensor.allocate(arena, DType.F32, tq.shape());
        Tensor dk = Tensor.allocate(arena, DType.F32, tk.shape());
        Tensor dv = Tensor.allocate(arena, DType.F32, tv.shape());
        oracle.attend(tq, tk, tv, tdout, out, dq, dk, dv);
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
