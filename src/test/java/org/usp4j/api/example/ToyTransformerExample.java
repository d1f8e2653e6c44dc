package org.usp4j.api.example;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.InProcessWorld;
import org.usp4j.api.Mesh;
import org.usp4j.api.RankContext;
import org.usp4j.api.SequenceLayout;
import org.usp4j.api.SequenceParallelLayer;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The worked example of the README's "Embedding usp4j" section, which quotes the region between the
 * {@code README:begin} and {@code README:end} markers verbatim ({@code ReadmeExampleTest} keeps them
 * equal): the attention step of a toy two-layer transformer, written the way a JVM framework embeds
 * usp4j. Each layer is y = x + attention(x Wq, x Wk, x Wv) with plain-Java projections on off-heap rows;
 * usp4j computes causal attention over the whole sequence while every rank holds S/P rows of it.
 */
public final class ToyTransformerExample {

    private ToyTransformerExample() {
    }

    // README:begin
    /** The model: query heads, key/value heads (GQA), head size; activations in dtype; width C = heads * headDim. */
    public record Shape(int heads, int kvHeads, int headDim, DType dtype) {
        int width() { return heads * headDim; }
        int kvWidth() { return kvHeads * headDim; }
    }

    /** One layer's weights, row-major float32 off-heap: q = x Wq [C x C], k = x Wk and v = x Wv [C x Ckv]. */
    public record Weights(MemorySegment wq, MemorySegment wk, MemorySegment wv) { }

    /** One layer on one rank, as a framework module: forward keeps what backward needs. */
    public static final class Block implements AutoCloseable {
        private final SequenceParallelLayer attention;
        private final Weights w;
        private final Shape shape;
        private final Staging staging;
        private final Arena arena;
        MemorySegment x, q, k, v, out, dy, dq, dk, dv; // this rank's rows, [n x C] or [n x Ckv]

        Block(SequenceParallelLayer attention, Weights w, Shape shape, Staging staging, Arena arena) {
            this.attention = attention; this.w = w; this.shape = shape; this.staging = staging; this.arena = arena;
        }

        /** y = x + attention(x Wq, x Wk, x Wv) for this rank's rows x. */
        MemorySegment forward(MemorySegment input) {
            x = input;
            q = matmul(x, w.wq(), shape.width(), shape, arena);
            k = matmul(x, w.wk(), shape.kvWidth(), shape, arena);
            v = matmul(x, w.wv(), shape.kvWidth(), shape, arena);
            out = rows(x, shape.width(), shape, arena);
            Tensor o = heads(out, shape.heads());
            attention.forward(heads(q, shape.heads()), heads(k, shape.kvHeads()), heads(v, shape.kvHeads()), o);
            staging.fromRank(o, out); // on CPU ranks usp4j wrote into `out` itself: nothing to do
            return add(x, out, shape, arena);
        }

        /** dLoss/dx from dLoss/dy: the residual plus the three projections' input gradients. */
        MemorySegment backward(MemorySegment upstream) {
            dy = upstream;
            dq = rows(dy, shape.width(), shape, arena);
            dk = rows(dy, shape.kvWidth(), shape, arena);
            dv = rows(dy, shape.kvWidth(), shape, arena);
            Tensor tq = heads(dq, shape.heads()), tk = heads(dk, shape.kvHeads()), tv = heads(dv, shape.kvHeads());
            attention.backward(heads(dy, shape.heads()), tq, tk, tv);
            staging.fromRank(tq, dq); staging.fromRank(tk, dk); staging.fromRank(tv, dv);
            MemorySegment dx = arena.allocate(dy.byteSize(), 64).copyFrom(dy); // the residual passes dy on
            addMatmulTransposed(dq, w.wq(), dx, shape);
            addMatmulTransposed(dk, w.wk(), dx, shape);
            addMatmulTransposed(dv, w.wv(), dx, shape);
            return dx;
        }

        /** These rows as a [1, n, heads, headDim] tensor where the rank computes (no copy on CPU ranks). */
        private Tensor heads(MemorySegment rows, int heads) {
            long n = rows.byteSize() / ((long) heads * shape.headDim() * shape.dtype().byteSize());
            return staging.toRank(Tensor.host(rows, shape.dtype(), 1, n, heads, shape.headDim()));
        }

        @Override
        public void close() {
            attention.close(); // frees usp4j's saved state and communicators; our rows stay ours
        }
    }

    /** What one rank ends a step with: its global row positions, its blocks, the output y and dLoss/dx. */
    public record RankStep(long[] positions, List<Block> blocks, MemorySegment y, MemorySegment dx) { }

    /** How a rank makes layer i's attention (every rank makes its layers in the same order). */
    public interface AttentionMaker {
        SequenceParallelLayer make(RankContext rank, int layer);
    }

    /** One training step of the toy: causal softmax attention in every layer, dealt zigzag. */
    public static List<RankStep> step(InProcessWorld world, Mesh mesh, Shape shape, List<Weights> layers,
                                      MemorySegment x, MemorySegment dy, Staging staging, Arena arena) {
        // Zigzag: rank r holds chunks r and 2P-1-r of 2P, which balances the causal work.
        AttentionOptions options = AttentionOptions.defaults().withCausal(true).withLayout(SequenceLayout.ZIGZAG);
        return step(world, mesh, options.layout(), (rank, layer) -> rank.newAttention(mesh, options), shape, layers,
                x, dy, staging, arena);
    }

    /** One step's forward and backward on every rank, for global x and dLoss/dy [S x C] dealt by layout. */
    public static List<RankStep> step(InProcessWorld world, Mesh mesh, SequenceLayout layout, AttentionMaker attention,
                                      Shape shape, List<Weights> layers, MemorySegment x, MemorySegment dy,
                                      Staging staging, Arena arena) {
        long seq = x.byteSize() / ((long) shape.width() * shape.dtype().byteSize());
        return world.run(rank -> {
            long[] positions = layout.globalPositions(seq, mesh, rank.rank());
            List<Block> blocks = new ArrayList<>();
            for (Weights w : layers) {
                blocks.add(new Block(attention.make(rank, blocks.size()), w, shape, staging, arena));
            }
            MemorySegment h = pick(x, positions, shape, arena);
            for (Block b : blocks) {
                h = b.forward(h);
            }
            MemorySegment g = pick(dy, positions, shape, arena);
            for (Block b : blocks.reversed()) {
                g = b.backward(g);
            }
            blocks.forEach(Block::close);
            return new RankStep(positions, blocks, h, g);
        });
    }
    // README:end

    /**
     * How a rank hands its rows to usp4j: as they are on CPU ranks ({@link #HOST}, zero copy); the GPU test
     * stages them through device memory.
     */
    public interface Staging {

        /** Rows already where usp4j reads them: host tensors, as they are. */
        Staging HOST = new Staging() {
            @Override
            public Tensor toRank(Tensor host) {
                return host;
            }

            @Override
            public void fromRank(Tensor onRank, MemorySegment rows) {
                if (onRank.segment().address() != rows.address()) {
                    throw new IllegalStateException("a host tensor must view the rows themselves");
                }
            }
        };

        /** The tensor usp4j reads or writes for the host tensor {@code host}. */
        Tensor toRank(Tensor host);

        /** Makes the result usp4j wrote into {@code onRank} visible in {@code rows}. */
        void fromRank(Tensor onRank, MemorySegment rows);
    }

    /** Random weights of standard deviation 1/sqrt(C), so that q, k, v stay of order 1. */
    public static Weights randomWeights(Shape shape, long seed, Arena arena) {
        SplittableRandom random = new SplittableRandom(seed);
        return new Weights(matrix(shape.width(), shape.width(), random, arena),
                matrix(shape.width(), shape.kvWidth(), random, arena), matrix(shape.width(), shape.kvWidth(), random, arena));
    }

    /** [S x C] rows of standard normal values in the shape's dtype. */
    public static MemorySegment randomRows(Shape shape, long seq, long seed, Arena arena) {
        SplittableRandom random = new SplittableRandom(seed);
        MemorySegment rows = arena.allocate(seq * shape.width() * shape.dtype().byteSize(), 64);
        for (long i = 0; i < seq * shape.width(); i++) {
            set(rows, shape, i, (float) gaussian(random));
        }
        return rows;
    }

    static float get(MemorySegment rows, Shape shape, long index) {
        return shape.dtype().read(rows, index * shape.dtype().byteSize());
    }

    static void set(MemorySegment rows, Shape shape, long index, float value) {
        shape.dtype().write(rows, index * shape.dtype().byteSize(), value);
    }

    private static MemorySegment matrix(int rowCount, int columns, SplittableRandom random, Arena arena) {
        MemorySegment m = arena.allocate(ValueLayout.JAVA_FLOAT, (long) rowCount * columns);
        double std = 1 / Math.sqrt(rowCount);
        for (long i = 0; i < (long) rowCount * columns; i++) {
            m.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (std * gaussian(random)));
        }
        return m;
    }

    private static double gaussian(SplittableRandom random) {
        double u = 1 - random.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.nextDouble());
    }

    /** Zeroed rows of {@code width} columns, as many as {@code like} has rows of C. */
    private static MemorySegment rows(MemorySegment like, int width, Shape shape, Arena arena) {
        long n = like.byteSize() / ((long) shape.width() * shape.dtype().byteSize());
        return arena.allocate(n * width * shape.dtype().byteSize(), 64);
    }

    /** a [n x C] times w [C x m], accumulated in float. */
    private static MemorySegment matmul(MemorySegment a, MemorySegment w, int m, Shape shape, Arena arena) {
        int c = shape.width();
        MemorySegment out = rows(a, m, shape, arena);
        long n = out.byteSize() / ((long) m * shape.dtype().byteSize());
        for (long i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                float sum = 0;
                for (int l = 0; l < c; l++) {
                    sum += get(a, shape, i * c + l) * w.getAtIndex(ValueLayout.JAVA_FLOAT, (long) l * m + j);
                }
                set(out, shape, i * m + j, sum);
            }
        }
        return out;
    }

    /** acc [n x C] += g [n x m] times w^T (w [C x m]). */
    private static void addMatmulTransposed(MemorySegment g, MemorySegment w, MemorySegment acc, Shape shape) {
        int c = shape.width();
        long n = acc.byteSize() / ((long) c * shape.dtype().byteSize());
        int m = (int) (g.byteSize() / (n * shape.dtype().byteSize()));
        for (long i = 0; i < n; i++) {
            for (int l = 0; l < c; l++) {
                float sum = get(acc, shape, i * c + l);
                for (int j = 0; j < m; j++) {
                    sum += get(g, shape, i * m + j) * w.getAtIndex(ValueLayout.JAVA_FLOAT, (long) l * m + j);
                }
                set(acc, shape, i * c + l, sum);
            }
        }
    }

    /** a + b, elementwise, into new rows. */
    private static MemorySegment add(MemorySegment a, MemorySegment b, Shape shape, Arena arena) {
        MemorySegment sum = arena.allocate(a.byteSize(), 64);
        for (long i = 0; i < a.byteSize() / shape.dtype().byteSize(); i++) {
            set(sum, shape, i, get(a, shape, i) + get(b, shape, i));
        }
        return sum;
    }

    /** The rows at {@code positions} of global rows [S x C], copied into rows of this rank's own. */
    private static MemorySegment pick(MemorySegment global, long[] positions, Shape shape, Arena arena) {
        long rowBytes = (long) shape.width() * shape.dtype().byteSize();
        MemorySegment local = arena.allocate(positions.length * rowBytes, 64);
        for (int i = 0; i < positions.length; i++) {
            MemorySegment.copy(global, positions[i] * rowBytes, local, i * rowBytes, rowBytes);
        }
        return local;
    }
}
