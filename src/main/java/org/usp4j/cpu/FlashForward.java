package org.usp4j.cpu;

import static org.usp4j.cpu.TileGemm.LANES;
import static org.usp4j.cpu.TileGemm.SPECIES;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The forward pass of one call, cut into work items of (query-row block, batch, head). An item streams
 * the key/value tiles past its query block with the online softmax: per query row a running max m and
 * sum l in base 2, and an unnormalised output that is rescaled by 2^(m_old - m_new) whenever the max
 * grows. At the end out = O / l and lse = ln 2 * m + ln l.
 *
 * <p>Layout: query rows are the vector lanes of every tile. Q is packed transposed ([d][rows], scaled
 * by scale * log2 e), so S^T = K Q^T is [keys][rows] and the softmax runs down the columns, row
 * statistics staying in vectors with no horizontal reductions; the output is kept as O^T [d][rows] and
 * updated by O^T += V^T P^T. K and V tiles are copied as they are ([keys][d]).
 */
final class FlashForward {

    private static final VectorSpecies<Integer> INT_SPECIES = SPECIES.withLanes(int.class);
    private static final IntVector LANE_INDEX = IntVector.zero(INT_SPECIES).addIndex(1);
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
    private final int rowStride;   // head_dim padded to whole vectors: the row length of packed K, V
    private final int outTRows;    // head_dim padded to a register block: the rows of O^T
    private final boolean causal;
    private final float qScale;
    private final int blockRows;
    private final int keyTile;
    private final int rowBlocks;

    FlashForward(AttentionDims dims, TensorRows q, TensorRows k, TensorRows v, TensorRows out, LseTensor lse,
                 boolean causal, float scale, Tiling tiling, int parallelism) {
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
        this.causal = causal;
        this.qScale = scale * LOG2_E;
        this.blockRows = Tiling.shrinkForParallelism(tiling.forwardRows(), TileGemm.BLOCK_COLS, seqQ,
                (long) batch * heads, 4 * parallelism);
        this.keyTile = tiling.forwardKeys();
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
        int lanes = Tiling.roundUp(nq, TileGemm.BLOCK_COLS); // row count padded to whole micro-kernel blocks
        s.ensure(lanes, keyTile, rowStride, outTRows);
        float[] qT = s.qT;
        float[] kTile = s.kTile;
        float[] vTile = s.vTile;
        float[] scores = s.scores;
        float[] outT = s.outT;
        float[] rowMax = s.rowMax;
        float[] rowSum = s.rowSum;
        float[] row = s.row;
        short[] shorts = s.shorts;

        for (int i = 0; i < nq; i++) {
            q.read(b, q0 + i, h, row, 0, qScale, shorts);
            for (int x = 0; x < d; x++) {
                qT[x * lanes + i] = row[x];
            }
        }
        for (int x = 0; x < d; x++) {
            java.util.Arrays.fill(qT, x * lanes + nq, (x + 1) * lanes, 0f);
        }
        java.util.Arrays.fill(rowMax, 0, lanes, Float.NEGATIVE_INFINITY);
        java.util.Arrays.fill(rowSum, 0, lanes, 0f);
        java.util.Arrays.fill(outT, 0, outTRows * lanes, 0f);

        // Top-left causal: row i sees keys j <= i, so keys at or past q0 + nq are hidden from the block.
        int kvEnd = causal ? Math.min(seqKv, q0 + nq) : seqKv;
        for (int k0 = 0; k0 < kvEnd; k0 += keyTile) {
            int nk = Math.min(keyTile, kvEnd - k0);
            int nkBlock = Tiling.roundUp(nk, TileGemm.BLOCK_ROWS);
            for (int j = 0; j < nk; j++) {
                k.read(b, k0 + j, kvHead, kTile, j * rowStride, 1f, shorts);
                v.read(b, k0 + j, kvHead, vTile, j * rowStride, 1f, shorts);
                java.util.Arrays.fill(vTile, j * rowStride + d, j * rowStride + outTRows, 0f);
            }
            java.util.Arrays.fill(kTile, nk * rowStride, nkBlock * rowStride, 0f);
            // S^T[j][i] = sum_x K[j][x] Q^T[x][i]
            TileGemm.multiply(kTile, 0, rowStride, 1, qT, 0, lanes, scores, 0, lanes, nkBlock, lanes, d, false);
            boolean diagonal = causal && k0 + nk - 1 > q0;
            softmaxUpdate(scores, nk, lanes, q0, k0, diagonal, rowMax, rowSum, outT);
            // O^T[x][i] += sum_j V[j][x] P^T[j][i]
            TileGemm.multiply(vTile, 0, 1, rowStride, scores, 0, lanes, outT, 0, lanes, outTRows, lanes, nk, true);
        }

        for (int i = 0; i < nq; i++) {
            float sum = rowSum[i];
            if (sum == 0f) { // the row saw no key
                java.util.Arrays.fill(row, 0, d, 0f);
                lse.set(b, h, q0 + i, Float.NEGATIVE_INFINITY);
            } else {
                float inv = 1f / sum;
                for (int x = 0; x < d; x++) {
                    row[x] = outT[x * lanes + i] * inv;
                }
                lse.set(b, h, q0 + i, (float) (rowMax[i] * LN_2 + Math.log(sum)));
            }
            out.write(b, q0 + i, h, row, 0, false, shorts, s.rowAccumulate);
        }
    }

    /**
     * One online-softmax step over a score tile S^T [nk][lanes] (base-2 units), turned into P^T in place:
     * m' = max(m, max_j s_j); alpha = 2^(m - m'); l = alpha l + sum_j 2^(s_j - m'); O^T *= alpha.
     * Rows that have seen only hidden keys keep m = -inf; subtracting 0 instead keeps them NaN-free.
     */
    private void softmaxUpdate(float[] scores, int nk, int lanes, int q0, int k0, boolean diagonal,
                               float[] rowMax, float[] rowSum, float[] outT) {
        for (int iv = 0; iv < lanes; iv += LANES) {
            FloatVector mOld = FloatVector.fromArray(SPECIES, rowMax, iv);
            FloatVector m = mOld;
            if (diagonal) {
                IntVector rowIndex = LANE_INDEX.add(q0 + iv);
                for (int j = 0, at = iv; j < nk; j++, at += lanes) {
                    VectorMask<Float> hidden = rowIndex.lt(k0 + j).cast(SPECIES);
                    FloatVector sv = FloatVector.fromArray(SPECIES, scores, at).blend(Float.NEGATIVE_INFINITY, hidden);
                    sv.intoArray(scores, at);
                    m = m.max(sv);
                }
            } else {
                for (int j = 0, at = iv; j < nk; j++, at += lanes) {
                    m = m.max(FloatVector.fromArray(SPECIES, scores, at));
                }
            }
            FloatVector shift = m.blend(0f, m.eq(Float.NEGATIVE_INFINITY));
            FloatVector alpha = VectorExp2.exp2(mOld.sub(shift));
            FloatVector sum0 = FloatVector.zero(SPECIES);
            FloatVector sum1 = sum0;
            int j = 0;
            int at = iv;
            for (; j + 1 < nk; j += 2, at += 2 * lanes) {
                FloatVector p0 = VectorExp2.exp2(FloatVector.fromArray(SPECIES, scores, at).sub(shift));
                FloatVector p1 = VectorExp2.exp2(FloatVector.fromArray(SPECIES, scores, at + lanes).sub(shift));
                p0.intoArray(scores, at);
                p1.intoArray(scores, at + lanes);
                sum0 = sum0.add(p0);
                sum1 = sum1.add(p1);
            }
            if (j < nk) {
                FloatVector p0 = VectorExp2.exp2(FloatVector.fromArray(SPECIES, scores, at).sub(shift));
                p0.intoArray(scores, at);
                sum0 = sum0.add(p0);
            }
            FloatVector l = FloatVector.fromArray(SPECIES, rowSum, iv);
            l.fma(alpha, sum0.add(sum1)).intoArray(rowSum, iv);
            m.intoArray(rowMax, iv);
            for (int x = 0, o = iv; x < outTRows; x++, o += lanes) {
                FloatVector.fromArray(SPECIES, outT, o).mul(alpha).intoArray(outT, o);
            }
        }
    }

    /** One thread's tile buffers, grown on demand (O(tile), never O(sequence)). */
    private static final class Scratch {
        float[] qT = new float[0];      // [d][lanes]
        float[] kTile = new float[0];   // [keys][rowStride]
        float[] vTile = new float[0];   // [keys][rowStride]
        float[] scores = new float[0];  // S^T, then P^T: [keys][lanes]
        float[] outT = new float[0];    // [outTRows][lanes]
        float[] rowMax = new float[0];
        float[] rowSum = new float[0];
        float[] row = new float[0];
        float[] rowAccumulate = new float[0];
        short[] shorts = new short[0];

        void ensure(int lanes, int keys, int rowStride, int outTRows) {
            int keyBlock = Tiling.roundUp(keys, TileGemm.BLOCK_ROWS);
            qT = atLeast(qT, rowStride * lanes);
            kTile = atLeast(kTile, keyBlock * rowStride);
            vTile = atLeast(vTile, keyBlock * rowStride);
            scores = atLeast(scores, keyBlock * lanes);
            outT = atLeast(outT, outTRows * lanes);
            rowMax = atLeast(rowMax, lanes);
            rowSum = atLeast(rowSum, lanes);
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
