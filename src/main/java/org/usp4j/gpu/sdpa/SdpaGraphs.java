package org.usp4j.gpu.sdpa;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.cudnn.DataType;
import org.usp4j.cudnn.PointwiseMode;
import org.usp4j.cudnn.ReductionOperator;
import org.usp4j.gpu.GraphSpec.Matmul;
import org.usp4j.gpu.GraphSpec.Op;
import org.usp4j.gpu.GraphSpec.Pointwise;
import org.usp4j.gpu.GraphSpec.Reduction;
import org.usp4j.gpu.GraphSpec.Reshape;
import org.usp4j.gpu.GraphSpec.Tensor;
import org.usp4j.gpu.GraphSpec;
import org.usp4j.kernel.Mask;

/**
 * The composite SDPA graphs that cuDNN's fused-attention engines recognise on every 9.x release: the
 * forward (matmul, scale, optional causal mask, softmax with its log-sum-exp stats, matmul) and the
 * backward (softmax_sum = rowsum(dO * O), P recomputed from the stats, dV, dP, dS, dK, dQ through a
 * float32 accumulator), in the order and with the data types cudnn-frontend's composite nodes use.
 *
 * <p>Logical layouts are cuDNN's [b, h, s, d]; usp4j's tensors are [b, s, h, d], so every io tensor's
 * strides are given in bshd order and permuted here. K (and V in the backward) enter transposed:
 * dims [b, h_kv, d, s_kv], a view with swapped strides.
 */
public final class SdpaGraphs {

    /** Uids of the tensors the caller binds; virtual tensors start at {@link #FIRST_VIRTUAL_UID}. */
    public static final long Q = 1, K = 2, V = 3, O = 4, STATS = 5, SCALE = 6, NEG_INF = 7,
            DO = 8, DQ = 9, DK = 10, DV = 11, SOFTMAX_SUM = 12, DQ_ACCUM = 13, ONE = 14,
            SEQ_LEN_Q = 15, SEQ_LEN_KV = 16;
    static final long FIRST_VIRTUAL_UID = 100;

    private SdpaGraphs() {
    }

    /** Sizes of one attention call: q [b, s_q, h, d], k/v [b, s_kv, h_kv, d]. */
    public record Shape(long batch, long heads, long kvHeads, long seqQ, long seqKv, long headDim) {
        public Shape {
            if (batch < 1 || heads < 1 || kvHeads < 1 || seqQ < 1 || seqKv < 1 || headDim < 1) {
                throw new IllegalArgumentException("non-positive SDPA size in " + this);
            }
            if (heads % kvHeads != 0) {
                throw new IllegalArgumentException("heads (" + heads + ") must be a multiple of KV heads (" + kvHeads + ")");
            }
        }
    }

    /**
     * Forward graph. Binds Q, K, V (io type), O (io type), STATS (f32 [b,h,s_q,1], dense), SCALE (f32 by
     * value) and, when causal, NEG_INF (f32 by value).
     *
     * @param bshdStrides  strides of q, k, v, o in bshd order (index 0..3 of the array)
     * @param cudnnVersion the loaded cuDNN's version code (e.g. 91400), which decides version workarounds
     */
    public static GraphSpec forward(Shape s, DataType io, boolean causal, long[][] bshdStrides, long cudnnVersion) {
        return forward(s, io, causal ? Mask.CAUSAL : Mask.NONE, bshdStrides, cudnnVersion);
    }

    /** The forward graph under {@code mask}, which {@link #requireMaskSupported} must accept. */
    public static GraphSpec forward(Shape s, DataType io, Mask mask, long[][] bshdStrides, long cudnnVersion) {
        requireMaskSupported(mask);
        boolean causal = mask.causal();
        float maskFill = maskFill(cudnnVersion);
        Builder g = new Builder("sdpa_fwd" + suffix(mask));
        long b = s.batch(), h = s.heads(), hk = s.kvHeads(), sq = s.seqQ(), skv = s.seqKv(), d = s.headDim();
        Tensor q = g.io(Q, "Q", io, dims(b, h, sq, d), bhsd(bshdStrides[0]));
        Tensor kt = g.io(K, "K^T", io, dims(b, hk, d, skv), transposedBhsd(bshdStrides[1]));
        Tensor v = g.io(V, "V", io, dims(b, hk, skv, d), bhsd(bshdStrides[2]));
        Tensor o = g.io(O, "O", io, dims(b, h, sq, d), bhsd(bshdStrides[3]));
        Tensor stats = g.io(STATS, "Stats", DataType.FLOAT, dims(b, h, sq, 1), dims(h * sq, sq, 1, 1));
        Tensor scale = g.scalar(SCALE, "attn_scale");

        Tensor scores = g.matmul(q, kt, g.virtual("S", DataType.FLOAT, b, h, sq, skv));
        Tensor scaled = g.pointwise(PointwiseMode.MUL, scores, scale, g.virtual("S_scaled", DataType.FLOAT, b, h, sq, skv));
        Tensor masked = causal ? g.causalMask(scaled, maskFill, mask.diagonal()) : scaled;
        // Softmax with stats: Stats = max + log(sum(exp(s - max))), P = exp(s - max) / sum.
        Tensor max = g.reduce(ReductionOperator.MAX, masked, g.virtual("max", DataType.FLOAT, b, h, sq, 1));
        Tensor shifted = g.pointwise(PointwiseMode.SUB, masked, max, g.virtual("S_minus_max", DataType.FLOAT, b, h, sq, skv));
        Tensor exp = g.pointwise(PointwiseMode.EXP, shifted, null, g.virtual("exp", DataType.FLOAT, b, h, sq, skv));
        Tensor sum = g.reduce(ReductionOperator.ADD, exp, g.virtual("sum_exp", DataType.FLOAT, b, h, sq, 1));
        Tensor logSum = g.pointwise(PointwiseMode.LOG, sum, null, g.virtual("log_sum", DataType.FLOAT, b, h, sq, 1));
        g.pointwise(PointwiseMode.ADD, max, logSum, stats);
        // The engines expect the second matmul's A operand in the io type.
        Tensor p = g.pointwise(PointwiseMode.DIV, exp, sum, g.virtual("P", io, b, h, sq, skv));
        g.matmul(p, v, o);
        return g.build();
    }

    /**
     * Backward graph. Binds Q, K, V, O, DO (io type), STATS (f32, dense), DQ, DK, DV (io type), SCALE,
     * ONE (f32 by value), NEG_INF when causal, and two float32 scratch buffers: SOFTMAX_SUM
     * [b,h,s_q,1] and DQ_ACCUM [b,h,s_q,d], both dense. DQ_ACCUM is cuDNN's scratch (zeroed before
     * 9.6), not a result: dQ is the io-typed output of the final IDENTITY op, as in cudnn-frontend.
     *
     * <p>Up to cuDNN 9.15.0 the backward engines need a padding mask when s_kv is not a multiple of
     * 128 (cudnn-frontend adds one silently): the graph then also binds SEQ_LEN_Q and SEQ_LEN_KV,
     * INT32 [b,1,1,1] tensors holding s_q and s_kv, which also bound the matmuls.
     *
     * @param bshdStrides  strides of q, k, v, o, dO, dQ, dK, dV in bshd order
     * @param cudnnVersion the loaded cuDNN's version code (e.g. 91400)
     */
    public static GraphSpec backward(Shape s, DataType io, boolean causal, long[][] bshdStrides, long cudnnVersion) {
        return backward(s, io, causal ? Mask.CAUSAL : Mask.NONE, bshdStrides, cudnnVersion);
    }

    /** The backward graph under {@code mask}, which {@link #requireMaskSupported} must accept. */
    public static GraphSpec backward(Shape s, DataType io, Mask mask, long[][] bshdStrides, long cudnnVersion) {
        requireMaskSupported(mask);
        requireBackwardSupported(s, cudnnVersion);
        boolean causal = mask.causal();
        float maskFill = maskFill(cudnnVersion);
        boolean padded = needsPaddingWorkaround(s, cudnnVersion);
        Builder g = new Builder("sdpa_bwd" + suffix(mask));
        long b = s.batch(), h = s.heads(), hk = s.kvHeads(), sq = s.seqQ(), skv = s.seqKv(), d = s.headDim();
        boolean gqa = h != hk;
        Tensor q = g.io(Q, "Q", io, dims(b, h, sq, d), bhsd(bshdStrides[0]));
        Tensor kt = g.io(K, "K^T", io, dims(b, hk, d, skv), transposedBhsd(bshdStrides[1]));
        Tensor vt = g.io(V, "V^T", io, dims(b, hk, d, skv), transposedBhsd(bshdStrides[2]));
        Tensor o = g.io(O, "O", io, dims(b, h, sq, d), bhsd(bshdStrides[3]));
        Tensor dO = g.io(DO, "dO", io, dims(b, h, sq, d), bhsd(bshdStrides[4]));
        Tensor dQ = g.io(DQ, "dQ", io, dims(b, h, sq, d), bhsd(bshdStrides[5]));
        Tensor dK = g.io(DK, "dK", io, dims(b, hk, skv, d), bhsd(bshdStrides[6]));
        Tensor dV = g.io(DV, "dV", io, dims(b, hk, skv, d), bhsd(bshdStrides[7]));
        Tensor stats = g.io(STATS, "Stats", DataType.FLOAT, dims(b, h, sq, 1), dims(h * sq, sq, 1, 1));
        Tensor softmaxSum = g.io(SOFTMAX_SUM, "softmax_sum", DataType.FLOAT, dims(b, h, sq, 1), dims(h * sq, sq, 1, 1));
        Tensor dQAccum = g.io(DQ_ACCUM, "dQ_accum", DataType.FLOAT, dims(b, h, sq, d), dims(h * sq * d, sq * d, d, 1));
        Tensor scale = g.scalar(SCALE, "attn_scale");
        Tensor one = g.scalar(ONE, "one");
        Tensor seqQ = padded ? g.io(SEQ_LEN_Q, "seq_len_q", DataType.INT32, dims(b, 1, 1, 1), dims(1, 1, 1, 1)) : null;
        Tensor seqKv = padded ? g.io(SEQ_LEN_KV, "seq_len_kv", DataType.INT32, dims(b, 1, 1, 1), dims(1, 1, 1, 1)) : null;

        // softmax_sum = rowsum(dO * O): the D of the backward formulas.
        Tensor dOxO = g.pointwise(PointwiseMode.MUL, dO, o,
                g.virtualStrided("dO_times_O", DataType.FLOAT, dims(b, h, sq, d), dims(h * sq * d, sq * d, h * d, 1)));
        Tensor rowSum = g.reduce(ReductionOperator.ADD, dOxO, g.virtual("rowsum_dO_O", DataType.FLOAT, b, h, sq, 1));
        g.pointwise(PointwiseMode.MUL, rowSum, one, softmaxSum);

        // P = exp(scale * Q K^T - Stats), masked like the forward.
        Tensor scores = g.matmul(q, kt, g.virtual("S", DataType.FLOAT, b, h, sq, skv), seqQ, seqKv, null);
        Tensor scaled = g.pointwise(PointwiseMode.MUL, scores, scale, g.virtual("S_scaled", DataType.FLOAT, b, h, sq, skv));
        if (padded) {
            scaled = g.paddingMask(scaled, seqQ, seqKv, maskFill);
        }
        Tensor centered = g.pointwise(PointwiseMode.SUB, scaled, stats, g.virtual("S_minus_stats", DataType.FLOAT, b, h, sq, skv));
        if (padded && cudnnVersion < 91000) {
            centered = g.paddingMask(centered, seqQ, seqKv, maskFill); // 9.0-9.9 need it again after the stats
        }
        Tensor masked = causal ? g.causalMask(centered, maskFill, mask.diagonal()) : centered;
        Tensor p = g.pointwise(PointwiseMode.EXP, masked, null, g.virtual("P", DataType.FLOAT, b, h, sq, skv));

        // dV = P^T dO (summed over the query heads of each KV head for GQA).
        Tensor pT = g.reshape(p, g.virtualStrided("P^T", io, dims(b, h, skv, sq), dims(h * sq * skv, sq * skv, 1, skv)));
        g.matmulMaybeReduced(pT, dO, dV, gqa, "dV_fullhead", io, dims(b, h, skv, d), seqKv, null, seqQ);

        // dS = scale * P * (dO V^T - softmax_sum).
        Tensor dP = g.matmul(dO, vt, g.virtual("dP", DataType.FLOAT, b, h, sq, skv), seqQ, seqKv, null);
        Tensor dPminus = g.pointwise(PointwiseMode.SUB, dP, softmaxSum, g.virtual("dP_minus_sum", DataType.FLOAT, b, h, sq, skv));
        Tensor dPxP = g.pointwise(PointwiseMode.MUL, dPminus, p, g.virtual("dP_times_P", DataType.FLOAT, b, h, sq, skv));
        Tensor dS = g.pointwise(PointwiseMode.MUL, dPxP, scale, g.virtual("dS", DataType.FLOAT, b, h, sq, skv));

        // dK = dS^T Q.
        Tensor dST = g.reshape(dS, g.virtualStrided("dS^T", io, dims(b, h, skv, sq), dims(h * sq * skv, sq * skv, 1, skv)));
        g.matmulMaybeReduced(dST, q, dK, gqa, "dK_fullhead", io, dims(b, h, skv, d), seqKv, null, seqQ);

        // dQ = dS K, accumulated in float32 scratch, then converted into the io-typed dQ (the result).
        long[] kStrides = kt.strides();
        Tensor k = g.reshape(kt, g.virtualStrided("K", DataType.FLOAT, dims(b, hk, skv, d),
                dims(kStrides[0], kStrides[1], kStrides[3], kStrides[2])));
        g.matmul(dS, k, dQAccum, seqQ, null, seqKv);
        g.pointwise(PointwiseMode.IDENTITY, dQAccum, null, dQ);
        return g.build();
    }

    /**
     * Refuses what cudnn-frontend refuses for the composite backward, before any work: a 1 x 1 score
     * matrix (no engine) and cuDNN 9.10.0/9.10.1, whose fp16/bf16 SDPA backward has known bugs.
     *
     * @throws IllegalArgumentException      for s_q = s_kv = 1
     * @throws UnsupportedOperationException on cuDNN 9.10.0 and 9.10.1
     */
    public static void requireBackwardSupported(Shape s, long cudnnVersion) {
        if (cudnnVersion == 91000 || cudnnVersion == 91001) {
            throw new UnsupportedOperationException("cuDNN " + cudnnVersion + " (9.10.0/9.10.1) has known bugs in the"
                    + " fp16/bf16 SDPA backward; use cuDNN 9.10.2 or newer (or another 9.x)");
        }
        if (s.seqQ() == 1 && s.seqKv() == 1) {
            throw new IllegalArgumentException("cuDNN SDPA backward does not support s_q = s_kv = 1, got " + s);
        }
    }

    /** The value masked scores take: -inf from cuDNN 9.10, -FLT_MAX before (as cudnn-frontend does). */
    /**
     * Refuses a mask these graphs cannot express: causal masks with diagonal 0 (row &gt;= col) or -1
     * (row &gt; col), which is what the strategies' ring steps use; other diagonals would need an index
     * shift in the graph.
     */
    public static void requireMaskSupported(Mask mask) {
        if (mask.segmented()) {
            throw new IllegalArgumentException("the cuDNN attention graphs take plain masks, not " + mask
                    + " (CudnnAttention runs packed sequences one segment at a time)");
        }
        if (mask.causal() && mask.diagonal() != 0 && mask.diagonal() != -1) {
            throw new IllegalArgumentException("the cuDNN attention graphs express causal masks with diagonal 0 or -1, "
                    + "not " + mask);
        }
    }

    private static String suffix(Mask mask) {
        return !mask.causal() ? "" : mask.diagonal() == 0 ? "_causal" : "_causal_strict";
    }

    static float maskFill(long cudnnVersion) {
        return cudnnVersion >= 91000 ? Float.NEGATIVE_INFINITY : -Float.MAX_VALUE;
    }

    /** Whether the backward needs the full-length padding mask that cuDNN <= 9.15.0 requires. */
    public static boolean needsPaddingWorkaround(Shape s, long cudnnVersion) {
        return s.seqKv() % 128 != 0 && cudnnVersion <= 91500;
    }

    /**
     * Strides of contiguous bshd tensors in the order the graphs take them (q, k, v, o, dO, dQ, dK,
     * dV), the first {@code count} of them.
     */
    public static long[][] contiguousStrides(Shape s, int count) {
        long[] q = {s.seqQ() * s.heads() * s.headDim(), s.heads() * s.headDim(), s.headDim(), 1};
        long[] kv = {s.seqKv() * s.kvHeads() * s.headDim(), s.kvHeads() * s.headDim(), s.headDim(), 1};
        long[][] pattern = {q, kv, kv, q, q, q, kv, kv};
        long[][] out = new long[count][];
        for (int i = 0; i < count; i++) {
            out[i] = pattern[i].clone();
        }
        return out;
    }

    /** [s0, s1, s2, s3] of a bshd tensor as bhsd strides. */
    static long[] bhsd(long[] bshd) {
        requireRank4(bshd);
        return new long[] {bshd[0], bshd[2], bshd[1], bshd[3]};
    }

    /** A bshd K or V seen as [b, h, d, s]. */
    static long[] transposedBhsd(long[] bshd) {
        requireRank4(bshd);
        return new long[] {bshd[0], bshd[2], bshd[3], bshd[1]};
    }

    private static void requireRank4(long[] strides) {
        if (strides.length != 4) {
            throw new IllegalArgumentException("expected 4 strides, got " + strides.length);
        }
        if (strides[3] != 1) {
            throw new IllegalArgumentException("head_dim must be contiguous (stride 1), got stride " + strides[3]);
        }
    }

    static long[] dims(long... values) {
        return values;
    }

    /** Accumulates tensors and ops; hands out virtual uids. */
    private static final class Builder {
        private final String name;
        private final List<Tensor> tensors = new ArrayList<>();
        private final List<Op> ops = new ArrayList<>();
        private long nextVirtual = FIRST_VIRTUAL_UID;

        Builder(String name) {
            this.name = name;
        }

        Tensor io(long uid, String tensorName, DataType type, long[] dims, long[] strides) {
            return add(new Tensor(uid, tensorName, type, dims, strides, false, false));
        }

        Tensor scalar(long uid, String tensorName) {
            return add(new Tensor(uid, tensorName, DataType.FLOAT, dims(1, 1, 1, 1), dims(1, 1, 1, 1), false, true));
        }

        Tensor virtual(String tensorName, DataType type, long b, long h, long rows, long cols) {
            return virtualStrided(tensorName, type, dims(b, h, rows, cols), dims(h * rows * cols, rows * cols, cols, 1));
        }

        Tensor virtualStrided(String tensorName, DataType type, long[] dims, long[] strides) {
            return add(new Tensor(nextVirtual++, tensorName, type, dims, strides, true, false));
        }

        Tensor pointwise(PointwiseMode mode, Tensor x, Tensor b, Tensor y) {
            ops.add(new Pointwise(mode, DataType.FLOAT, null, x, b, null, y));
            return y;
        }

        Tensor matmul(Tensor a, Tensor b, Tensor c) {
            return matmul(a, b, c, null, null, null);
        }

        Tensor matmul(Tensor a, Tensor b, Tensor c, Tensor m, Tensor n, Tensor k) {
            ops.add(new Matmul(a, b, c, m, n, k));
            return c;
        }

        Tensor reduce(ReductionOperator op, Tensor x, Tensor y) {
            ops.add(new Reduction(op, x, y));
            return y;
        }

        Tensor reshape(Tensor x, Tensor y) {
            ops.add(new Reshape(x, y));
            return y;
        }

        /** c = a @ b, or for GQA a full-head product reduced over each KV head's query heads. */
        void matmulMaybeReduced(Tensor a, Tensor b, Tensor out, boolean gqa, String fullName, DataType io, long[] fullDims,
                                Tensor m, Tensor n, Tensor k) {
            if (!gqa) {
                matmul(a, b, out, m, n, k);
                return;
            }
            long[] f = fullDims;
            Tensor full = virtualStrided(fullName, io, f, dims(f[1] * f[2] * f[3], f[2] * f[3], f[3], 1));
            matmul(a, b, full, m, n, k);
            reduce(ReductionOperator.ADD, full, out);
        }

        /** Keep score (row, col) where row < seq_len_q and col < seq_len_kv, else the fill value. */
        Tensor paddingMask(Tensor scores, Tensor seqLenQ, Tensor seqLenKv, float fill) {
            long[] d = scores.dims();
            Tensor negInf = fill(fill);
            Tensor row = virtual("pad_row_index", DataType.INT32, d[0], d[1], d[2], d[3]);
            Tensor col = virtual("pad_col_index", DataType.INT32, d[0], d[1], d[2], d[3]);
            ops.add(new Pointwise(PointwiseMode.GEN_INDEX, DataType.INT32, 2L, scores, null, null, row));
            ops.add(new Pointwise(PointwiseMode.GEN_INDEX, DataType.INT32, 3L, scores, null, null, col));
            Tensor rowOk = virtual("row_lt_seq_q", DataType.BOOLEAN, d[0], d[1], d[2], d[3]);
            Tensor colOk = virtual("col_lt_seq_kv", DataType.BOOLEAN, d[0], d[1], d[2], d[3]);
            ops.add(new Pointwise(PointwiseMode.CMP_LT, DataType.BOOLEAN, null, row, seqLenQ, null, rowOk));
            ops.add(new Pointwise(PointwiseMode.CMP_LT, DataType.BOOLEAN, null, col, seqLenKv, null, colOk));
            Tensor keep = virtual("inside_padding", DataType.BOOLEAN, d[0], d[1], d[2], d[3]);
            ops.add(new Pointwise(PointwiseMode.LOGICAL_AND, DataType.BOOLEAN, null, rowOk, colOk, null, keep));
            Tensor masked = virtual("S_padded", DataType.FLOAT, d[0], d[1], d[2], d[3]);
            ops.add(new Pointwise(PointwiseMode.BINARY_SELECT, DataType.FLOAT, null, scores, negInf, keep, masked));
            return masked;
        }

        /** The by-value mask fill scalar, shared by every mask of the graph. */
        private Tensor fill(float value) {
            for (Tensor t : tensors) {
                if (t.uid() == NEG_INF) {
                    return t;
                }
            }
            return add(new Tensor(NEG_INF, "mask_fill(" + value + ")", DataType.FLOAT, dims(1, 1, 1, 1), dims(1, 1, 1, 1), false, true));
        }

        /**
         * Causal mask: keep score (row, col) where col &lt;= row + diagonal (row &gt;= col for diagonal 0,
         * row &gt; col for -1), else the fill value.
         */
        Tensor causalMask(Tensor scores, float fill, long diagonal) {
            long[] d = scores.dims();
            Tensor negInf = fill(fill);
            Tensor row = virtual("row_index", DataType.INT32, d[0], d[1], d[2], d[3]);
            Tensor col = virtual("col_index", DataType.INT32, d[0], d[1], d[2], d[3]);
            ops.add(new Pointwise(PointwiseMode.GEN_INDEX, DataType.FLOAT, 2L, scores, null, null, row));
            ops.add(new Pointwise(PointwiseMode.GEN_INDEX, DataType.FLOAT, 3L, scores, null, null, col));
            boolean strict = diagonal == -1;
            Tensor keep = virtual(strict ? "row_gt_col" : "row_ge_col", DataType.BOOLEAN, d[0], d[1], d[2], d[3]);
            ops.add(new Pointwise(strict ? PointwiseMode.CMP_GT : PointwiseMode.CMP_GE, DataType.BOOLEAN, null, row, col,
                    null, keep));
            Tensor masked = virtual("S_masked", DataType.FLOAT, d[0], d[1], d[2], d[3]);
            // BINARY_SELECT: y = t ? x : b.
            ops.add(new Pointwise(PointwiseMode.BINARY_SELECT, DataType.FLOAT, null, scores, negInf, keep, masked));
            return masked;
        }

        private Tensor add(Tensor t) {
            tensors.add(t);
            return t;
        }

        GraphSpec build() {
            return new GraphSpec(name, tensors, ops);
        }
    }
}
