package org.usp4j.cpu;

import static org.usp4j.cpu.TileGemm.LANES;
import static org.usp4j.cpu.TileGemm.PANEL;
import static org.usp4j.cpu.TileGemm.SPECIES;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import org.usp4j.kernel.Mask;

/**
 * The backward pass of one call, in three parallel phases.
 * <ol>
 * <li>Row statistics: D = rowsum(dout * out) and lse in base 2, per (b, h, query row); dq is zeroed
 * here when it is written directly and not accumulated into.</li>
 * <li>Gradients, in work items of (key chunk, batch, KV head). An item owns dK and dV of its keys and
 * loops over the query heads that share its KV head and the query tiles that can see its keys,
 * recomputing P = 2^(S - lse) from the stored lse. dQ tiles are added under the query head's lock,
 * straight into dq when it is float32, else into a float32 accumulator per head.</li>
 * <li>dq from the accumulators (only when dq is not float32).</li>
 * </ol>
 *
 * <p>Layout: keys are the vector lanes. No running max is needed here (lse is known), so each score
 * row is exponentiated on its own, and the item packs K^T and V^T once for all its query tiles, which
 * are then read as they are: with Q' = scale log2(e) Q, S = Q' K^T and dP = dO V^T are [rows][keys],
 * P = 2^(S - lse), dS = P * (dP - D), then dV^T += dO^T P, dK^T += ln 2 Q'^T dS (both [d][keys], kept
 * for the whole item) and dQ = scale dS K.
 */
final class FlashBackward {

    private static final float LOG2_E = (float) (1 / Math.log(2));
    private static final float LN_2 = (float) Math.log(2);
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private final TensorRows q;
    private final TensorRows k;
    private final TensorRows v;
    private final TensorRows out;
    private final TensorRows dout;
    private final LseTensor lse;
    private final TensorRows dq;
    private final TensorRows dk;
    private final TensorRows dv;
    private final boolean accumulate;
    private final int batch;
    private final int seqQ;
    private final int seqKv;
    private final int heads;
    private final int kvHeads;
    private final int group;
    private final int headDim;
    private final int rowStride;   // head_dim padded to whole vectors
    private final int gradRows;    // head_dim padded to a register block: the rows of dK^T, dV^T
    private final boolean causal;
    private final int diagonal; // causal: row i sees keys j <= i + diagonal
    private final float scale;
    private final float qScale;
    private final int tileRows;
    private final int rowsStride;  // tileRows padded to a register block: the rows of a packed query tile
    private final int chunkKeys;
    private final int chunks;
    private final int statBlock;
    private final int statBlocks;

    // Phase 1 results, indexed ((b * heads + h) * seqQ + i).
    private final float[] delta;
    private final float[] lse2;
    // One lock per (b, h) for dq rows; with a non-F32 dq also its [seqQ][headDim] float32 accumulator.
    private final Object[] dqLocks;
    private final float[][] dqAccumulators;

    FlashBackward(AttentionDims dims, TensorRows q, TensorRows k, TensorRows v, TensorRows out, TensorRows dout,
                  LseTensor lse, TensorRows dq, boolean dqIsF32, TensorRows dk, TensorRows dv, boolean accumulate,
                  Mask mask, float scale, Tiling tiling, int parallelism) {
        this.q = q;
        this.k = k;
        this.v = v;
        this.out = out;
        this.dout = dout;
        this.lse = lse;
        this.dq = dq;
        this.dk = dk;
        this.dv = dv;
        this.accumulate = accumulate;
        this.batch = dims.batch();
        this.seqQ = dims.seqQ();
        this.seqKv = dims.seqKv();
        this.heads = dims.heads();
        this.kvHeads = dims.kvHeads();
        this.group = dims.groupSize();
        this.headDim = dims.headDim();
        this.rowStride = Tiling.roundUp(headDim, LANES);
        this.gradRows = Tiling.roundUp(headDim, TileGemm.BLOCK_ROWS);
        this.causal = mask.causal();
        this.diagonal = Math.toIntExact(mask.diagonal());
        this.scale = scale;
        this.qScale = scale * LOG2_E;
        this.tileRows = Math.min(tiling.backwardRows(), Tiling.roundUp(Math.max(seqQ, 1), TileGemm.BLOCK_ROWS));
        this.rowsStride = Tiling.roundUp(tileRows, TileGemm.BLOCK_ROWS);
        this.chunkKeys = Tiling.shrinkForParallelism(tiling.backwardKeys(), TileGemm.PANEL, seqKv,
                (long) batch * kvHeads, 4 * parallelism);
        this.chunks = Tiling.ceilDiv(seqKv, chunkKeys);
        this.statBlock = 256;
        this.statBlocks = Tiling.ceilDiv(seqQ, statBlock);
        int rows = batch * heads * seqQ;
        this.delta = new float[rows];
        this.lse2 = new float[rows];
        this.dqLocks = new Object[batch * heads];
        for (int i = 0; i < dqLocks.length; i++) {
            dqLocks[i] = new Object();
        }
        this.dqAccumulators = dqIsF32 ? null : new float[batch * heads][];
    }

    /** Whether dq is accumulated in float32 arrays and needs phase 3. */
    boolean needsDqPass() {
        return dqAccumulators != null;
    }

    // ---- phase 1: row statistics -------------------------------------------------------------

    int statisticsItems() {
        return batch * heads * statBlocks;
    }

    void runStatistics(int item) {
        int bh = item / statBlocks;
        int b = bh / heads;
        int h = bh % heads;
        int first = (item % statBlocks) * statBlock;
        int last = Math.min(seqQ, first + statBlock);
        Scratch s = SCRATCH.get();
        s.ensureRows(rowStride);
        if (first == 0 && dqAccumulators != null) {
            dqAccumulators[bh] = new float[seqQ * headDim];
        }
        for (int i = first; i < last; i++) {
            out.read(b, i, h, s.row, 0, 1f, s.shorts);
            dout.read(b, i, h, s.row2, 0, 1f, s.shorts);
            float sum = 0;
            for (int x = 0; x < headDim; x++) {
                sum += s.row[x] * s.row2[x];
            }
            int at = bh * seqQ + i;
            delta[at] = sum;
            float l = lse.get(b, h, i);
            // A row that saw no key (lse = -inf) gets P = 2^(S - inf) = 0: no gradient, no NaN.
            lse2[at] = l == Float.NEGATIVE_INFINITY ? Float.POSITIVE_INFINITY : l * LOG2_E;
            if (dqAccumulators == null && !accumulate) {
                Arrays.fill(s.row, 0, headDim, 0f);
                dq.write(b, i, h, s.row, 0, false, s.shorts);
            }
        }
    }

    // ---- phase 2: dK, dV per key chunk, dQ contributions -------------------------------------

    int gradientItems() {
        return chunks * batch * kvHeads;
    }

    /** Items in ascending chunk order: under a causal mask the first chunks see the most queries. */
    void runGradients(int item) {
        int bk = item % (batch * kvHeads);
        int chunk = item / (batch * kvHeads);
        runChunk(bk / kvHeads, bk % kvHeads, chunk * chunkKeys, SCRATCH.get());
    }

    private void runChunk(int b, int kvHead, int k0, Scratch s) {
        int d = headDim;
        int nk = Math.min(chunkKeys, seqKv - k0);
        int lanes = Tiling.roundUp(nk, PANEL); // key count padded to whole panels
        s.ensure(rowsStride, lanes, rowStride, gradRows, d);
        float[] kT = s.kT;
        float[] vT = s.vT;
        float[] kPanels = s.kPanels;
        float[] row = s.row;
        // K^T and V^T in key panels, [lanes / PANEL][d][PANEL], and K in head_dim panels for dQ = dS K,
        // [ceil(rowStride / PANEL)][lanes][PANEL]; padded keys and columns are zero, so their scores are finite.
        for (int j = 0; j < lanes; j++) {
            if (j < nk) {
                k.read(b, k0 + j, kvHead, row, 0, 1f, s.shorts);
            } else {
                Arrays.fill(row, 0, d, 0f);
            }
            Arrays.fill(row, d, rowStride, 0f);
            int at = j / PANEL * d * PANEL + j % PANEL;
            for (int x = 0; x < d; x++) {
                kT[at + x * PANEL] = row[x];
            }
            for (int x = 0; x < rowStride; x++) {
                kPanels[x / PANEL * lanes * PANEL + j * PANEL + x % PANEL] = row[x];
            }
            if (j < nk) {
                v.read(b, k0 + j, kvHead, row, 0, 1f, s.shorts);
            } else {
                Arrays.fill(row, 0, d, 0f);
            }
            for (int x = 0; x < d; x++) {
                vT[at + x * PANEL] = row[x];
            }
        }
        Arrays.fill(s.dkT, 0, gradRows * lanes, 0f);
        Arrays.fill(s.dvT, 0, gradRows * lanes, 0f);
        // The padding rows d .. gradRows of Q'^T and dO^T stay zero for the whole item.
        Arrays.fill(s.qTBlocks, 0, gradRows * rowsStride, 0f);
        Arrays.fill(s.doTBlocks, 0, gradRows * rowsStride, 0f);

        // Causal: rows before k0 - diagonal see none of these keys.
        int firstRow = causal ? Math.clamp((long) k0 - diagonal, 0, seqQ) : 0;
        for (int hh = 0; hh < group; hh++) {
            int h = kvHead * group + hh;
            for (int q0 = firstRow; q0 < seqQ; q0 += tileRows) {
                queryTile(b, h, q0, k0, nk, lanes, s);
            }
        }

        float[] dkT = s.dkT;
        float[] dvT = s.dvT;
        for (int j = 0; j < nk; j++) {
            int at = j / PANEL * gradRows * PANEL + j % PANEL;
            for (int x = 0; x < d; x++) {
                row[x] = dkT[at + x * PANEL] * LN_2;
                s.row2[x] = dvT[at + x * PANEL];
            }
            dk.write(b, k0 + j, kvHead, row, 0, accumulate, s.shorts);
            dv.write(b, k0 + j, kvHead, s.row2, 0, accumulate, s.shorts);
        }
    }

    private void queryTile(int b, int h, int q0, int k0, int nk, int lanes, Scratch s) {
        int d = headDim;
        int nq = Math.min(tileRows, seqQ - q0);
        int nqBlock = Tiling.roundUp(nq, TileGemm.BLOCK_ROWS);
        float[] row = s.row;
        // Q' and dO in 4-row blocks ([rows / 4][d][4]) for S and dP, and transposed in 4-column blocks
        // ([gradRows / 4][rowsStride][4]) for dK^T and dV^T; each row converted from its dtype once.
        packRows(q, b, q0, h, nq, nqBlock, qScale, s.qBlocks, s.qTBlocks, s);
        packRows(dout, b, q0, h, nq, nqBlock, 1f, s.doBlocks, s.doTBlocks, s);

        // Under a causal mask (where q0 + diagonal >= k0) no row of this tile sees a key at or past q0 + nq: the
        // products below stop at the last key panel any row sees (keyLanes) and leave the rest alone.
        int keyEnd = causal ? Math.clamp((long) q0 + diagonal + nq - k0, 0, nk) : nk;
        int keyLanes = Tiling.roundUp(keyEnd, PANEL);
        float[] probs = s.probs;
        float[] dScores = s.dScores;
        int panelStride = rowsStride * PANEL;
        // S = Q' K^T and dP = dO V^T, both [rows][keys] in key panels [lanes / PANEL][rowsStride][PANEL]
        TileGemm.multiply(s.qBlocks, 0, 4 * d, s.kT, 0, d * PANEL, probs, 0, panelStride, PANEL, nqBlock,
                keyLanes, d, false, TileGemm.NO_BAND, TileGemm.NO_BAND);
        TileGemm.multiply(s.doBlocks, 0, 4 * d, s.vT, 0, d * PANEL, dScores, 0, panelStride, PANEL, nqBlock,
                keyLanes, d, false, TileGemm.NO_BAND, TileGemm.NO_BAND);
        int stats = (b * heads + h) * seqQ + q0;
        for (int i = 0; i < nqBlock; i++) {
            // Keys past s_kv's padding, and under a causal mask keys after row q0 + i, get P = dS = 0.
            int visible = i >= nq ? 0 : causal ? Math.clamp((long) q0 + diagonal + i - k0 + 1, 0, nk) : nk;
            float rowLse = i < nq ? lse2[stats + i] : 0f;
            float rowDelta = i < nq ? delta[stats + i] : 0f;
            for (int p = 0; p < keyLanes; p += PANEL) {
                int at = p / PANEL * panelStride + i * PANEL;
                softmaxGradientRow(probs, dScores, at, Math.max(0, Math.min(PANEL, visible - p)), rowLse, rowDelta);
            }
        }
        // dV^T[x][j] += sum_i dO^T[x][i] P[i][j];  dK^T[x][j] += sum_i Q'^T[x][i] dS[i][j]
        TileGemm.multiply(s.doTBlocks, 0, 4 * rowsStride, probs, 0, panelStride, s.dvT, 0, gradRows * PANEL, PANEL,
                gradRows, keyLanes, nq, true, TileGemm.NO_BAND, TileGemm.NO_BAND);
        TileGemm.multiply(s.qTBlocks, 0, 4 * rowsStride, dScores, 0, panelStride, s.dkT, 0, gradRows * PANEL, PANEL,
                gradRows, keyLanes, nq, true, TileGemm.NO_BAND, TileGemm.NO_BAND);
        // dQ[i][x] = sum_j dS[i][j] K[j][x], dS read in its key panels
        float[] dqTile = s.dqTile;
        TileGemm.multiplyPanelA(dScores, 0, panelStride, s.kPanels, 0, lanes * PANEL, dqTile, 0, PANEL, rowStride,
                nqBlock, rowStride, keyEnd, false);
        addDq(b, h, q0, nq, dqTile, s);
    }

    /** Rows q0 .. q0 + nq of {@code t} (times {@code factor}) into 4-row blocks and 4-column blocks; zeros to nqBlock. */
    private void packRows(TensorRows t, int b, int q0, int h, int nq, int nqBlock, float factor, float[] blocks,
                          float[] transposedBlocks, Scratch s) {
        int d = headDim;
        float[] row = s.row;
        for (int i = 0; i < nqBlock; i++) {
            if (i < nq) {
                t.read(b, q0 + i, h, row, 0, factor, s.shorts);
            } else {
                Arrays.fill(row, 0, d, 0f);
            }
            int at = i / 4 * 4 * d + i % 4;
            for (int x = 0; x < d; x++) {
                blocks[at + 4 * x] = row[x];
            }
            for (int x = 0; x < d; x++) {
                transposedBlocks[x / 4 * 4 * rowsStride + 4 * i + x % 4] = row[x];
            }
        }
    }

    /**
     * One panel row of P = 2^(S - lse) (in place of S) and dS = P * (dP - D) (in place of dP) over its
     * first {@code visible} keys; the rest of the panel row gets 0.
     */
    private static void softmaxGradientRow(float[] probs, float[] dScores, int at, int visible, float rowLse,
                                           float rowDelta) {
        // Whole vectors up to the visible edge, then plain fills from the edge on: a masked blend here
        // would be the one vector operation that only causal calls run, slow until C2 compiles it.
        for (int j = 0; j < visible; j += LANES) {
            FloatVector p = VectorExp2.exp2Unbounded(FloatVector.fromArray(SPECIES, probs, at + j).sub(rowLse));
            p.intoArray(probs, at + j);
            p.mul(FloatVector.fromArray(SPECIES, dScores, at + j).sub(rowDelta)).intoArray(dScores, at + j);
        }
        Arrays.fill(probs, at + visible, at + PANEL, 0f);
        Arrays.fill(dScores, at + visible, at + PANEL, 0f);
    }

    /** dq rows q0 .. q0 + nq += scale * dqTile, under the head's lock. */
    private void addDq(int b, int h, int q0, int nq, float[] dqTile, Scratch s) {
        int d = headDim;
        int bh = b * heads + h;
        for (int i = 0; i < nq; i++) {
            scaleRow(dqTile, i * rowStride, scale, rowStride);
        }
        synchronized (dqLocks[bh]) {
            if (dqAccumulators == null) {
                for (int i = 0; i < nq; i++) {
                    dq.write(b, q0 + i, h, dqTile, i * rowStride, true, s.shorts);
                }
            } else {
                float[] acc = dqAccumulators[bh];
                for (int i = 0; i < nq; i++) {
                    int at = (q0 + i) * d;
                    int from = i * rowStride;
                    for (int x = 0; x < d; x++) {
                        acc[at + x] += dqTile[from + x];
                    }
                }
            }
        }
    }

    private static void scaleRow(float[] values, int at, float factor, int length) {
        for (int x = 0; x < length; x += LANES) {
            FloatVector.fromArray(SPECIES, values, at + x).mul(factor).intoArray(values, at + x);
        }
    }

    // ---- phase 3: dq -------------------------------------------------------------------------

    int dqItems() {
        return batch * heads * statBlocks;
    }

    void writeDq(int item) {
        int bh = item / statBlocks;
        int b = bh / heads;
        int h = bh % heads;
        int first = (item % statBlocks) * statBlock;
        int last = Math.min(seqQ, first + statBlock);
        Scratch s = SCRATCH.get();
        s.ensureRows(rowStride);
        float[] acc = dqAccumulators[bh];
        for (int i = first; i < last; i++) {
            dq.write(b, i, h, acc, i * headDim, accumulate, s.shorts);
        }
    }

    /** One thread's tile buffers, grown on demand (O(tile), never O(sequence)). */
    private static final class Scratch {
        float[] kT = new float[0];        // [lanes / PANEL][d][PANEL]
        float[] vT = new float[0];        // [lanes / PANEL][d][PANEL]
        float[] kPanels = new float[0];   // [ceil(rowStride / PANEL)][lanes][PANEL]
        float[] dkT = new float[0];       // [lanes / PANEL][gradRows][PANEL], scaled by 1 / ln 2 until written
        float[] dvT = new float[0];       // [lanes / PANEL][gradRows][PANEL]
        float[] qBlocks = new float[0];   // [rows / 4][d][4], scaled by scale log2 e
        float[] qTBlocks = new float[0];  // [gradRows / 4][rowsStride][4]
        float[] doBlocks = new float[0];  // [rows / 4][d][4]
        float[] doTBlocks = new float[0]; // [gradRows / 4][rowsStride][4]
        float[] probs = new float[0];     // S then P: [lanes / PANEL][rowsStride][PANEL]
        float[] dScores = new float[0];   // dP then dS: [lanes / PANEL][rowsStride][PANEL]
        float[] dqTile = new float[0];    // [rows][rowStride]
        float[] row = new float[0];
        float[] row2 = new float[0];
        short[] shorts = new short[0];

        void ensure(int rowsStride, int lanes, int rowStride, int gradRows, int headDim) {
            int dqPanels = Tiling.ceilDiv(rowStride, PANEL);
            kT = atLeast(kT, headDim * lanes);
            vT = atLeast(vT, headDim * lanes);
            kPanels = atLeast(kPanels, dqPanels * lanes * PANEL);
            dkT = atLeast(dkT, gradRows * lanes);
            dvT = atLeast(dvT, gradRows * lanes);
            qBlocks = atLeast(qBlocks, rowsStride * headDim);
            doBlocks = atLeast(doBlocks, rowsStride * headDim);
            qTBlocks = atLeast(qTBlocks, gradRows * rowsStride);
            doTBlocks = atLeast(doTBlocks, gradRows * rowsStride);
            probs = atLeast(probs, rowsStride * lanes);
            dScores = atLeast(dScores, rowsStride * lanes);
            dqTile = atLeast(dqTile, rowsStride * rowStride);
            ensureRows(rowStride);
        }

        void ensureRows(int rowStride) {
            row = atLeast(row, rowStride);
            row2 = atLeast(row2, rowStride);
            if (shorts.length < rowStride) {
                shorts = new short[rowStride];
            }
        }

        private static float[] atLeast(float[] buffer, int length) {
            return buffer.length >= length ? buffer : new float[length];
        }
    }
}
