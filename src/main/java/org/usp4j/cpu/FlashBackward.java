package org.usp4j.cpu;

import static org.usp4j.cpu.TileGemm.LANES;
import static org.usp4j.cpu.TileGemm.SPECIES;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The backward pass of one call, in three parallel phases.
 * <ol>
 * <li>Row statistics: D = rowsum(dout * out) and lse in base 2, per (b, h, query row).</li>
 * <li>Gradients, in work items of (key chunk, batch, KV head). An item owns dK and dV of its keys and
 * loops over the query heads that share its KV head and the query tiles that can see its keys,
 * recomputing P = 2^(S - lse) from the stored lse; dQ contributions go into a float32 accumulator per
 * query head, added tile by tile under that head's lock.</li>
 * <li>dq: the accumulators written out (converted, or added with {@code accumulate}).</li>
 * </ol>
 * Query rows are the vector lanes, as in {@link FlashForward}: with Q' = scale log2(e) Q,
 * S^T = K Q'^T, dP^T = V dO^T, dS^T = P^T * (dP^T - D), then dV += P^T dO, dK += ln 2 dS^T Q',
 * dQ^T += scale K^T dS^T.
 */
final class FlashBackward {

    private static final VectorSpecies<Integer> INT_SPECIES = SPECIES.withLanes(int.class);
    private static final IntVector LANE_INDEX = IntVector.zero(INT_SPECIES).addIndex(1);
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
    private final int rowStride;
    private final int dqTRows;
    private final boolean causal;
    private final float scale;
    private final float qScale;
    private final int tileRows;
    private final int chunkKeys;
    private final int chunks;
    private final int statBlock;
    private final int statBlocks;

    // Phase 1 results, indexed ((b * heads + h) * seqQ + i).
    private final float[] delta;
    private final float[] lse2;
    // dQ accumulators, one [seqQ][headDim] array per (b, h); each is its own lock.
    private final float[][] dqAccumulators;

    FlashBackward(AttentionDims dims, TensorRows q, TensorRows k, TensorRows v, TensorRows out, TensorRows dout,
                  LseTensor lse, TensorRows dq, TensorRows dk, TensorRows dv, boolean accumulate,
                  boolean causal, float scale, Tiling tiling, int parallelism) {
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
        this.dqTRows = Tiling.roundUp(headDim, TileGemm.BLOCK_ROWS);
        this.causal = causal;
        this.scale = scale;
        this.qScale = scale * LOG2_E;
        this.tileRows = Math.min(tiling.backwardRows(), Tiling.roundUp(Math.max(seqQ, 1), TileGemm.BLOCK_COLS));
        this.chunkKeys = Tiling.shrinkForParallelism(tiling.backwardKeys(), TileGemm.BLOCK_ROWS, seqKv,
                (long) batch * kvHeads, 4 * parallelism);
        this.chunks = Tiling.ceilDiv(seqKv, chunkKeys);
        this.statBlock = 256;
        this.statBlocks = Tiling.ceilDiv(seqQ, statBlock);
        int rows = batch * heads * seqQ;
        this.delta = new float[rows];
        this.lse2 = new float[rows];
        this.dqAccumulators = new float[batch * heads][];
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
        for (int i = first; i < last; i++) {
            out.read(b, i, h, s.row, 0, 1f, s.shorts);
            dout.read(b, i, h, s.rowAccumulate, 0, 1f, s.shorts);
            float sum = 0;
            for (int x = 0; x < headDim; x++) {
                sum += s.row[x] * s.rowAccumulate[x];
            }
            int at = bh * seqQ + i;
            delta[at] = sum;
            float l = lse.get(b, h, i);
            // A row that saw no key (lse = -inf) gets P = 2^(S - inf) = 0: no gradient, no NaN.
            lse2[at] = l == Float.NEGATIVE_INFINITY ? Float.POSITIVE_INFINITY : l * LOG2_E;
        }
    }

    /** Allocates the dQ accumulators (zeroed); called once between phase 1 and 2. */
    void allocateAccumulators() {
        for (int i = 0; i < dqAccumulators.length; i++) {
            dqAccumulators[i] = new float[seqQ * headDim];
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
        int nkBlock = Tiling.roundUp(nk, TileGemm.BLOCK_ROWS);
        s.ensure(tileRows, nkBlock, rowStride, dqTRows);
        float[] kTile = s.kTile;
        float[] vTile = s.vTile;
        float[] dkAcc = s.dkAcc;
        float[] dvAcc = s.dvAcc;
        for (int j = 0; j < nk; j++) {
            k.read(b, k0 + j, kvHead, kTile, j * rowStride, 1f, s.shorts);
            v.read(b, k0 + j, kvHead, vTile, j * rowStride, 1f, s.shorts);
            Arrays.fill(kTile, j * rowStride + d, j * rowStride + dqTRows, 0f);
        }
        Arrays.fill(kTile, nk * rowStride, nkBlock * rowStride, 0f);
        Arrays.fill(vTile, nk * rowStride, nkBlock * rowStride, 0f);
        Arrays.fill(dkAcc, 0, nkBlock * rowStride, 0f);
        Arrays.fill(dvAcc, 0, nkBlock * rowStride, 0f);

        // Top-left causal: rows before k0 see none of these keys.
        int firstRow = causal ? Math.min(k0, seqQ) : 0;
        int firstTile = firstRow / tileRows;
        for (int hh = 0; hh < group; hh++) {
            int h = kvHead * group + hh;
            for (int q0 = firstTile * tileRows; q0 < seqQ; q0 += tileRows) {
                queryTile(b, h, q0, k0, nk, nkBlock, s);
            }
        }

        for (int j = 0; j < nk; j++) {
            int at = j * rowStride;
            for (int x = 0; x < d; x++) {
                dkAcc[at + x] *= LN_2;
            }
            dk.write(b, k0 + j, kvHead, dkAcc, at, accumulate, s.shorts, s.rowAccumulate);
            dv.write(b, k0 + j, kvHead, dvAcc, at, accumulate, s.shorts, s.rowAccumulate);
        }
    }

    private void queryTile(int b, int h, int q0, int k0, int nk, int nkBlock, Scratch s) {
        int d = headDim;
        int nq = Math.min(tileRows, seqQ - q0);
        int lanes = Tiling.roundUp(nq, TileGemm.BLOCK_COLS);
        float[] qRows = s.qRows;
        float[] qT = s.qT;
        float[] doRows = s.doRows;
        float[] doT = s.doT;
        for (int i = 0; i < nq; i++) {
            int at = i * rowStride;
            q.read(b, q0 + i, h, qRows, at, qScale, s.shorts);
            dout.read(b, q0 + i, h, doRows, at, 1f, s.shorts);
            for (int x = 0; x < d; x++) {
                qT[x * lanes + i] = qRows[at + x];
                doT[x * lanes + i] = doRows[at + x];
            }
        }
        for (int x = 0; x < d; x++) {
            Arrays.fill(qT, x * lanes + nq, (x + 1) * lanes, 0f);
            Arrays.fill(doT, x * lanes + nq, (x + 1) * lanes, 0f);
        }
        int stats = (b * heads + h) * seqQ + q0;
        float[] rowLse = s.rowLse;
        float[] rowDelta = s.rowDelta;
        System.arraycopy(lse2, stats, rowLse, 0, nq);
        System.arraycopy(delta, stats, rowDelta, 0, nq);
        Arrays.fill(rowLse, nq, lanes, Float.POSITIVE_INFINITY); // padded rows: P = 0
        Arrays.fill(rowDelta, nq, lanes, 0f);

        float[] probs = s.probs;
        float[] dScores = s.dScores;
        // S^T = K Q'^T and dP^T = V dO^T, both [keys][lanes]
        TileGemm.multiply(s.kTile, 0, rowStride, 1, qT, 0, lanes, probs, 0, lanes, nkBlock, lanes, d, false);
        TileGemm.multiply(s.vTile, 0, rowStride, 1, doT, 0, lanes, dScores, 0, lanes, nkBlock, lanes, d, false);
        boolean diagonal = causal && k0 + nk - 1 > q0;
        softmaxGradient(probs, dScores, nkBlock, lanes, q0, k0, nk, diagonal, rowLse, rowDelta);
        // dV[j][x] += sum_i P^T[j][i] dO[i][x];  dK[j][x] += sum_i dS^T[j][i] Q'[i][x]
        TileGemm.multiply(probs, 0, lanes, 1, doRows, 0, rowStride, s.dvAcc, 0, rowStride, nkBlock, rowStride, nq, true);
        TileGemm.multiply(dScores, 0, lanes, 1, qRows, 0, rowStride, s.dkAcc, 0, rowStride, nkBlock, rowStride, nq, true);
        // dQ^T[x][i] = sum_j K[j][x] dS^T[j][i]
        float[] dqT = s.dqT;
        TileGemm.multiply(s.kTile, 0, 1, rowStride, dScores, 0, lanes, dqT, 0, lanes, dqTRows, lanes, nk, false);

        float[] acc = dqAccumulators[b * heads + h];
        synchronized (acc) {
            for (int i = 0; i < nq; i++) {
                int at = (q0 + i) * d;
                for (int x = 0; x < d; x++) {
                    acc[at + x] += scale * dqT[x * lanes + i];
                }
            }
        }
    }

    /**
     * P^T = 2^(S^T - lse) in place of the scores and dS^T = P^T * (dP^T - D) in place of dP^T, for
     * [rows][lanes] tiles; hidden (causal) and padded keys get P = dS = 0.
     */
    private static void softmaxGradient(float[] probs, float[] dScores, int rows, int lanes, int q0, int k0, int nk,
                                        boolean diagonal, float[] rowLse, float[] rowDelta) {
        for (int iv = 0; iv < lanes; iv += LANES) {
            FloatVector l = FloatVector.fromArray(SPECIES, rowLse, iv);
            FloatVector dlt = FloatVector.fromArray(SPECIES, rowDelta, iv);
            IntVector rowIndex = LANE_INDEX.add(q0 + iv);
            for (int j = 0, at = iv; j < rows; j++, at += lanes) {
                FloatVector p = VectorExp2.exp2Unbounded(FloatVector.fromArray(SPECIES, probs, at).sub(l));
                if (j >= nk) {
                    p = FloatVector.zero(SPECIES);
                } else if (diagonal) {
                    VectorMask<Float> hidden = rowIndex.lt(k0 + j).cast(SPECIES);
                    p = p.blend(0f, hidden);
                }
                FloatVector ds = p.mul(FloatVector.fromArray(SPECIES, dScores, at).sub(dlt));
                p.intoArray(probs, at);
                ds.intoArray(dScores, at);
            }
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
            dq.write(b, i, h, acc, i * headDim, accumulate, s.shorts, s.rowAccumulate);
        }
    }

    /** One thread's tile buffers, grown on demand (O(tile), never O(sequence)). */
    private static final class Scratch {
        float[] kTile = new float[0];    // [keys][rowStride]
        float[] vTile = new float[0];
        float[] dkAcc = new float[0];
        float[] dvAcc = new float[0];
        float[] qRows = new float[0];    // [lanes][rowStride], scaled by scale log2 e
        float[] doRows = new float[0];
        float[] qT = new float[0];       // [d][lanes]
        float[] doT = new float[0];
        float[] probs = new float[0];    // S^T then P^T: [keys][lanes]
        float[] dScores = new float[0];  // dP^T then dS^T: [keys][lanes]
        float[] dqT = new float[0];      // [dqTRows][lanes]
        float[] rowLse = new float[0];
        float[] rowDelta = new float[0];
        float[] row = new float[0];
        float[] rowAccumulate = new float[0];
        short[] shorts = new short[0];

        void ensure(int lanes, int keys, int rowStride, int dqTRows) {
            kTile = atLeast(kTile, keys * rowStride);
            vTile = atLeast(vTile, keys * rowStride);
            dkAcc = atLeast(dkAcc, keys * rowStride);
            dvAcc = atLeast(dvAcc, keys * rowStride);
            qRows = atLeast(qRows, lanes * rowStride);
            doRows = atLeast(doRows, lanes * rowStride);
            qT = atLeast(qT, rowStride * lanes);
            doT = atLeast(doT, rowStride * lanes);
            probs = atLeast(probs, keys * lanes);
            dScores = atLeast(dScores, keys * lanes);
            dqT = atLeast(dqT, dqTRows * lanes);
            rowLse = atLeast(rowLse, lanes);
            rowDelta = atLeast(rowDelta, lanes);
            ensureRows(rowStride);
        }

        void ensureRows(int rowStride) {
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
