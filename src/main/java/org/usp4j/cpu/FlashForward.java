package org.usp4j.cpu;

import static org.usp4j.cpu.TileGemm.LANES;
import static org.usp4j.cpu.TileGemm.PANEL;
import static org.usp4j.cpu.TileGemm.SPECIES;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import org.usp4j.kernel.Mask;

/**
 * The forward pass of one call, cut into work items of (query-row block, batch, head). An item streams
 * the key/value tiles past its query block with the online softmax: per query row a running max m and
 * sum l in base 2, and an unnormalised output that is rescaled by 2^(m_old - m_new) whenever the max
 * grows. At the end out = O / l and lse = ln 2 * m + ln l.
 *
 * <p>Layout: query rows are the vector lanes of every tile. Q is packed transposed (scaled by
 * scale * log2 e) in panels of {@link TileGemm#PANEL} rows, so S^T = K Q^T is [keys][rows] and the
 * softmax runs down the columns, row statistics staying in vectors with no horizontal reductions; the
 * output is kept as O^T [d][rows] and updated by O^T += V^T P^T. Every operand is in the packed layout
 * {@link TileGemm} reads (S^T and O^T in the same panels as Q^T, K and V^T in blocks of 4 rows), and
 * each K and V row is converted from its storage dtype once per key tile.
 */
final class FlashForward {

    private static final float LOG2_E = (float) (1 / Math.log(2));
    private static final double LN_2 = Math.log(2);
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private final TensorRows q;
    private final TensorRows k;
    private final TensorRows v;
    private final TensorRows out;
    private final LseTensor lse;
    private final int batch;
    private final int seqQ;
    private final int seqKv;
    private final int heads;
    private final int group;
    private final int headDim;
    private final int rowStride;   // head_dim padded to whole vectors: the length of a row buffer
    private final int outTRows;    // head_dim padded to a register block: the rows of O^T
    private final boolean causal;
    private final int diagonal; // causal: row i sees keys j <= i + diagonal
    private final float qScale;
    private final int blockRows;
    private final int keyTile;
    private final int keyStride;   // keyTile padded to a register block: the key rows of a packed tile
    private final int rowBlocks;

    FlashForward(AttentionDims dims, TensorRows q, TensorRows k, TensorRows v, TensorRows out, LseTensor lse,
                 Mask mask, float scale, Tiling tiling, int parallelism) {
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.lse = lse;
        this.batch = dims.batch();
        this.seqQ = dims.seqQ();
        this.seqKv = dims.seqKv();
        this.heads = dims.heads();
        this.group = dims.heads() / dims.kvHeads();
        this.headDim = dims.headDim();
        this.rowStride = Tiling.roundUp(headDim, LANES);
        this.outTRows = Tiling.roundUp(headDim, TileGemm.BLOCK_ROWS);
        this.causal = mask.causal();
        this.diagonal = Math.toIntExact(mask.diagonal());
        this.qScale = scale * LOG2_E;
        this.blockRows = Tiling.shrinkForParallelism(tiling.forwardRows(), TileGemm.PANEL, seqQ,
                (long) batch * heads, 4 * parallelism);
        this.keyTile = tiling.forwardKeys();
        this.keyStride = Tiling.roundUp(keyTile, TileGemm.BLOCK_ROWS);
        this.rowBlocks = Tiling.ceilDiv(seqQ, blockRows);
    }

    int items() {
        return batch * heads * rowBlocks;
    }

    /** Runs items in descending row-block order: under a causal mask the last blocks are the longest. */
    void run(int item) {
        int bh = item % (batch * heads);
        int block = rowBlocks - 1 - item / (batch * heads);
        run(bh / heads, bh % heads, block * blockRows, SCRATCH.get());
    }

    private void run(int b, int h, int q0, Scratch s) {
        int kvHead = h / group;
        int d = headDim;
        int nq = Math.min(blockRows, seqQ - q0);
        int lanes = Tiling.roundUp(nq, PANEL); // row count padded to whole panels
        s.ensure(lanes, keyStride, rowStride, outTRows, d);
        float[] qT = s.qT;
        float[] kPacked = s.kPacked;
        float[] vPacked = s.vPacked;
        float[] scores = s.scores;
        float[] outT = s.outT;
        float[] rowMax = s.rowMax;
        float[] rowSum = s.rowSum;
        float[] row = s.row;
        short[] shorts = s.shorts;

        // Q^T in panels, [lanes / PANEL][d][PANEL]; padding rows are zero.
        for (int i = 0; i < lanes; i++) {
            if (i < nq) {
                q.read(b, q0 + i, h, row, 0, qScale, shorts);
            } else {
                Arrays.fill(row, 0, d, 0f);
            }
            int at = i / PANEL * d * PANEL + i % PANEL;
            for (int x = 0; x < d; x++) {
                qT[at + x * PANEL] = row[x];
            }
        }
        Arrays.fill(rowMax, 0, lanes, Float.NEGATIVE_INFINITY);
        Arrays.fill(rowSum, 0, lanes, 0f);
        Arrays.fill(outT, 0, outTRows * lanes, 0f);
        // V^T's padding rows d .. outTRows stay zero for the whole item.
        Arrays.fill(vPacked, 0, outTRows * keyStride, 0f);

        // Causal: row i sees keys j <= i + diagonal, so keys at or past qd + nq are hidden from the block.
        int qd = q0 + diagonal;
        int kvEnd = causal ? Math.clamp((long) qd + nq, 0, seqKv) : seqKv;
        for (int k0 = 0; k0 < kvEnd; k0 += keyTile) {
            int nk = Math.min(keyTile, kvEnd - k0);
            int nkBlock = Tiling.roundUp(nk, TileGemm.BLOCK_ROWS);
            // K in 4-key blocks, [keys / 4][d][4], and V^T in 4-column blocks, [outTRows / 4][keyStride][4]:
            // each row converted from its dtype once per tile.
            for (int j = 0; j < nkBlock; j++) {
                if (j < nk) {
                    k.read(b, k0 + j, kvHead, row, 0, 1f, shorts);
                } else {
                    Arrays.fill(row, 0, d, 0f);
                }
                int at = j / 4 * 4 * d + j % 4;
                for (int x = 0; x < d; x++) {
                    kPacked[at + 4 * x] = row[x];
                }
                if (j < nk) {
                    v.read(b, k0 + j, kvHead, row, 0, 1f, shorts);
                    for (int x = 0; x < d; x++) {
                        vPacked[x / 4 * 4 * keyStride + 4 * j + x % 4] = row[x];
                    }
                }
            }
            boolean onDiagonal = causal && k0 + nk - 1 > qd;
            // On the diagonal, skip the keys that come after every row of a panel (band = qd - k0):
            // their scores are masked to -inf anyway and their P is 0.
            int band = onDiagonal ? qd - k0 : TileGemm.NO_BAND;
            // S^T[j][i] = sum_x K[j][x] Q^T[x][i], into panels [lanes / PANEL][keyStride][PANEL]
            TileGemm.multiply(kPacked, 0, 4 * d, qT, 0, d * PANEL, scores, 0, keyStride * PANEL, PANEL,
                    nkBlock, lanes, d, false, band, TileGemm.NO_BAND);
            softmaxUpdate(scores, keyStride, nk, lanes, qd, k0, onDiagonal, rowMax, rowSum, s.softmax, outT, outTRows);
            // O^T[x][i] += sum_j V^T[x][j] P^T[j][i], O^T in panels [lanes / PANEL][outTRows][PANEL]
            TileGemm.multiply(vPacked, 0, 4 * keyStride, scores, 0, keyStride * PANEL, outT, 0, outTRows * PANEL,
                    PANEL, outTRows, lanes, nk, true, TileGemm.NO_BAND, band);
        }

        for (int i = 0; i < nq; i++) {
            float sum = rowSum[i];
            if (sum == 0f) { // the row saw no key
                Arrays.fill(row, 0, d, 0f);
                lse.set(b, h, q0 + i, Float.NEGATIVE_INFINITY);
            } else {
                float inv = 1f / sum;
                int at = i / PANEL * outTRows * PANEL + i % PANEL;
                for (int x = 0; x < d; x++) {
                    row[x] = outT[at + x * PANEL] * inv;
                }
                lse.set(b, h, q0 + i, (float) (rowMax[i] * LN_2 + Math.log(sum)));
            }
            out.write(b, q0 + i, h, row, 0, false, shorts);
        }
    }

    /**
     * One online-softmax step over a score tile S^T (base-2 units) in panels [lanes / PANEL][keyStride]
     * [PANEL], turned into P^T in place: m' = max(m, max_j s_j); alpha = 2^(m - m');
     * l = alpha l + sum_j 2^(s_j - m'); O^T *= alpha. Rows that have seen only hidden keys keep
     * m = -inf; subtracting 0 instead keeps them NaN-free.
     *
     * <p>Each pass is its own small method that sweeps one panel row and keeps per-lane state in
     * arrays, not in loop-carried vector variables: C2 then knows every vector's exact class and
     * compiles each operation to instructions. (Loop-carried vectors and large methods made it fall
     * back to allocating Java code, 3-10x slower.) The state arrays stay in L1.
     */
    static void softmaxUpdate(float[] scores, int keyStride, int nk, int lanes, int q0, int k0, boolean diagonal,
                              float[] rowMax, float[] rowSum, SoftmaxState state, float[] outT, int outTRows) {
        if (diagonal) {
            hideLaterKeys(scores, keyStride, nk, lanes, q0, k0);
        }
        int panelStride = keyStride * PANEL;
        float[] newMax = state.newMax;
        System.arraycopy(rowMax, 0, newMax, 0, lanes);
        for (int p = 0; p < lanes; p += PANEL) {
            int at = p / PANEL * panelStride;
            for (int j = 0; j < nk; j++) {
                columnMax(scores, at + j * PANEL, newMax, p);
            }
        }
        rescaleFactors(rowMax, newMax, state.shift, state.alpha, lanes);
        Arrays.fill(state.sum, 0, lanes, 0f);
        for (int p = 0; p < lanes; p += PANEL) {
            int at = p / PANEL * panelStride;
            for (int j = 0; j < nk; j++) {
                exponentiateRow(scores, at + j * PANEL, state.shift, state.sum, p);
            }
        }
        addScaled(rowSum, state.alpha, state.sum, lanes);
        for (int p = 0; p < lanes; p += PANEL) {
            int at = p / PANEL * outTRows * PANEL;
            for (int x = 0; x < outTRows; x++) {
                scaleRow(outT, at + x * PANEL, state.alpha, p);
            }
        }
    }

    /** Per-lane buffers of one softmax step. */
    static final class SoftmaxState {
        float[] newMax = new float[0];
        float[] shift = new float[0];
        float[] alpha = new float[0];
        float[] sum = new float[0];

        void ensure(int lanes) {
            if (newMax.length < lanes) {
                newMax = new float[lanes];
                shift = new float[lanes];
                alpha = new float[lanes];
                sum = new float[lanes];
            }
        }
    }

    /**
     * Top-left causal mask: S^T[j][i] = -inf where key k0 + j comes after row q0 + i, i.e. for the
     * leading rows i < k0 + j - q0 of each key's score row: one fill per key. (Plain fills rather than
     * vector blends also keep this rarely run path fast before the JIT has compiled it: Vector API code
     * is slow until C2 compiles it.)
     */
    private static void hideLaterKeys(float[] scores, int keyStride, int nk, int lanes, int q0, int k0) {
        for (int p = 0; p < lanes; p += PANEL) {
            int at = p / PANEL * keyStride * PANEL;
            for (int j = 0; j < nk; j++) {
                int hiddenRows = Math.max(0, Math.min(PANEL, k0 + j - q0 - p));
                Arrays.fill(scores, at + j * PANEL, at + j * PANEL + hiddenRows, Float.NEGATIVE_INFINITY);
            }
        }
    }

    /** max[from ..] = max(max, one panel row of scores at {@code at}). */
    private static void columnMax(float[] scores, int at, float[] max, int from) {
        for (int iv = 0; iv < PANEL; iv += LANES) {
            greater(FloatVector.fromArray(SPECIES, max, from + iv), FloatVector.fromArray(SPECIES, scores, at + iv))
                    .intoArray(max, from + iv);
        }
    }

    /**
     * shift = m' (0 where m' = -inf), alpha = 2^(m - shift), m = m'. Scalar on purpose: it runs once per
     * tile, too rarely for C2 to compile it early, and Vector API code left to C1 allocates a box per
     * operation; scalar code is fast at every tier and this is a few hundred lanes per tile.
     */
    private static void rescaleFactors(float[] rowMax, float[] newMax, float[] shift, float[] alpha, int lanes) {
        for (int i = 0; i < lanes; i++) {
            float m = newMax[i];
            float sh = m == Float.NEGATIVE_INFINITY ? 0f : m;
            shift[i] = sh;
            alpha[i] = (float) Math.exp((rowMax[i] - sh) * LN_2);
            rowMax[i] = m;
        }
    }

    private static void exponentiateRow(float[] scores, int at, float[] shift, float[] sum, int from) {
        for (int iv = 0; iv < PANEL; iv += LANES) {
            FloatVector p = VectorExp2.exp2(FloatVector.fromArray(SPECIES, scores, at + iv)
                    .sub(FloatVector.fromArray(SPECIES, shift, from + iv)));
            p.intoArray(scores, at + iv);
            p.add(FloatVector.fromArray(SPECIES, sum, from + iv)).intoArray(sum, from + iv);
        }
    }

    /** l = alpha l + sum; scalar for the same reason as {@link #rescaleFactors}. */
    private static void addScaled(float[] rowSum, float[] alpha, float[] sum, int lanes) {
        for (int i = 0; i < lanes; i++) {
            rowSum[i] = rowSum[i] * alpha[i] + sum[i];
        }
    }

    private static void scaleRow(float[] values, int at, float[] factor, int from) {
        for (int iv = 0; iv < PANEL; iv += LANES) {
            FloatVector.fromArray(SPECIES, values, at + iv).mul(FloatVector.fromArray(SPECIES, factor, from + iv))
                    .intoArray(values, at + iv);
        }
    }

    /**
     * Lane-wise max by compare and blend: two instructions, where FloatVector.max (Java's NaN and signed
     * zero rules) takes five on x86. A NaN score may be dropped from the max, but exp2 turns it into a
     * NaN probability, so the row's sum, lse and output still come out NaN.
     */
    private static FloatVector greater(FloatVector a, FloatVector b) {
        return a.blend(b, a.lt(b));
    }

    /** One thread's tile buffers, grown on demand (O(tile), never O(sequence)). */
    private static final class Scratch {
        float[] qT = new float[0];       // [lanes / PANEL][d][PANEL]
        float[] kPacked = new float[0];  // [keyStride / 4][d][4]
        float[] vPacked = new float[0];  // [outTRows / 4][keyStride][4]
        float[] scores = new float[0];   // S^T, then P^T: [lanes / PANEL][keyStride][PANEL]
        float[] outT = new float[0];     // [lanes / PANEL][outTRows][PANEL]
        float[] rowMax = new float[0];
        float[] rowSum = new float[0];
        final SoftmaxState softmax = new SoftmaxState();
        float[] row = new float[0];
        float[] rowAccumulate = new float[0];
        short[] shorts = new short[0];

        void ensure(int lanes, int keyStride, int rowStride, int outTRows, int headDim) {
            qT = atLeast(qT, headDim * lanes);
            kPacked = atLeast(kPacked, keyStride * headDim);
            vPacked = atLeast(vPacked, outTRows * keyStride);
            scores = atLeast(scores, keyStride * lanes);
            outT = atLeast(outT, outTRows * lanes);
            rowMax = atLeast(rowMax, lanes);
            rowSum = atLeast(rowSum, lanes);
            softmax.ensure(lanes);
            row = atLeast(row, rowStride);
            rowAccumulate = atLeast(rowAccumulate, rowStride);
            if (shorts.length < rowStride) {
                shorts = new short[rowStride];
            }
        }

        private static float[] atLeast(float[] buffer, int length) {
            return buffer.length >= length ? buffer : new float[length];
        }
    }
}
