package org.usp4j.cpu;

import static org.usp4j.cpu.TileGemm.LANES;
import static org.usp4j.cpu.TileGemm.SPECIES;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import org.usp4j.kernel.LinearMask;

/**
 * Chunked linear attention of one output head, right product first: the sequence is cut into chunks of
 * C rows and a d x d state carries everything before the chunk, so the work is O(n C d + n d^2) and
 * nothing larger than C x C or d x d is ever held. Per chunk (positions t0 .. t0+m-1, local i, j):
 * <pre>
 *   O   = diag(G^(i+1)) Q S                          the earlier rows, through the state
 *   O  += ((Q K^T) .* W) V,  W[i][j] = G^(i-j) [j<=i]  the chunk itself
 *   S   = G^m S + (diag(G^(m-1-j)) K)^T V              the state after the chunk
 * </pre>
 * Every output of {@link org.usp4j.kernel.LinearAttentionKernel} is one such sweep with the roles of the
 * tensors exchanged: out (query q, key k, value v, forward), dq (do, v, k, forward, state P^T), dk (v,
 * do, q, backward in time, L^T), dv (k, q, do, backward in time, L), the states themselves (a sweep
 * with no query). Without a causal mask the chunk term is not needed: one sweep makes the state of
 * every key and one pass multiplies the queries by it.
 *
 * <p>Tiles are row-major with head_dim padded to {@code dPad} (whole vectors, whole 4-row blocks) and
 * the padding kept zero, so every product runs through {@link TileGemm} on padded sizes. The state S
 * is [dPad][dPad], key dimension first.
 */
final class LinearChunks {

    /** Rows per chunk: the intra-chunk products (C^2 d) then cost about as much as the state ones (C d^2) at d = 64. */
    static final int DEFAULT_CHUNK = 64;

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** One head of a bshd tensor: the rows (b, s, head) for s = 0 .. n-1. */
    record HeadRows(TensorRows rows, int batch, int head) {
    }

    private final int seq;
    private final int headDim;
    private final int dPad;
    private final int chunk;
    private final int chunkCols;
    private final boolean causal;
    private final boolean decays;
    private final float[] pow;  // G^k, k = 0 .. chunk
    private final float[] band; // G^(chunk-1-t) for t < chunk, then 0: row i's weights start at chunk-1-i

    LinearChunks(int seq, int headDim, LinearMask mask, int chunk) {
        if (chunk <= 0 || chunk % TileGemm.BLOCK_ROWS != 0) {
            throw new IllegalArgumentException("chunk (" + chunk + ") must be a positive multiple of "
                    + TileGemm.BLOCK_ROWS);
        }
        this.seq = seq;
        this.headDim = headDim;
        this.dPad = Tiling.roundUp(Tiling.roundUp(Math.max(headDim, 1), TileGemm.BLOCK_ROWS), LANES);
        this.chunk = chunk;
        this.chunkCols = Tiling.roundUp(chunk, LANES);
        this.causal = mask.causal();
        this.decays = mask.causal() && mask.decay() < 1;
        this.pow = new float[chunk + 1];
        for (int k = 0; k <= chunk; k++) {
            pow[k] = (float) mask.decayOver(k);
        }
        this.band = new float[chunk + chunkCols];
        for (int t = 0; t < chunk; t++) {
            band[t] = pow[chunk - 1 - t];
        }
    }

    /** This thread's scratch, sized for this call. */
    Scratch scratch() {
        Scratch s = SCRATCH.get();
        s.ensure(headDim, dPad, chunk, chunkCols);
        return s;
    }

    /**
     * The output head {@code out} of {@code query} against the summed (key, value) pairs, starting from
     * {@code s.state} (the rows before the first one, in time order); sweeps the other way in time when
     * {@code reverse}. Leaves the final state in {@code s.state}.
     */
    void attend(HeadRows query, float scale, HeadRows[] keys, HeadRows[] values, boolean reverse, HeadRows out,
                Scratch s) {
        if (causal) {
            sweep(query, scale, keys, values, reverse, out, s);
        } else {
            sweep(null, 1f, keys, values, false, null, s);
            apply(query, scale, out, s);
        }
    }

    /** The state of the pairs alone (no query): s.state = G^n s.state + sum_j G^(n-1-j) k_j v_j^T in sweep order. */
    void accumulateState(HeadRows[] keys, HeadRows[] values, boolean reverse, Scratch s) {
        sweep(null, 1f, keys, values, reverse, null, s);
    }

    private void sweep(HeadRows query, float scale, HeadRows[] keys, HeadRows[] values, boolean reverse,
                       HeadRows out, Scratch s) {
        int d = headDim;
        float[] state = s.state;
        float[] q = s.qTile;
        float[] o = s.out;
        for (int t0 = 0; t0 < seq; t0 += chunk) {
            int m = Math.min(chunk, seq - t0);
            int rows = Tiling.roundUp(m, TileGemm.BLOCK_ROWS);
            int cols = Tiling.roundUp(m, LANES);
            if (query != null) {
                for (int i = 0; i < m; i++) {
                    query.rows().read(query.batch(), position(t0 + i, reverse), query.head(), q, i * dPad, scale,
                            s.shorts);
                }
                float[] qd = q;
                if (decays) {
                    qd = s.qDecayed;
                    for (int i = 0; i < m; i++) {
                        scaleRow(q, i * dPad, pow[i + 1], qd, i * dPad, d);
                    }
                }
                StridedTileGemm.multiply(qd, 0, dPad, 1, state, 0, dPad, o, 0, dPad, rows, dPad, d, false);
            }
            if (decays) {
                float g = pow[m];
                for (int x = 0; x < d; x++) {
                    scaleRow(state, x * dPad, g, state, x * dPad, dPad);
                }
            }
            for (int p = 0; p < keys.length; p++) {
                for (int j = 0; j < m; j++) {
                    int at = position(t0 + j, reverse);
                    keys[p].rows().read(keys[p].batch(), at, keys[p].head(), s.kTile, j * dPad, 1f, s.shorts);
                    values[p].rows().read(values[p].batch(), at, values[p].head(), s.vTile, j * dPad, 1f, s.shorts);
                }
                if (query != null) {
                    for (int j = 0; j < m; j++) {
                        for (int x = 0; x < d; x++) {
                            s.kT[x * chunkCols + j] = s.kTile[j * dPad + x];
                        }
                    }
                    StridedTileGemm.multiply(q, 0, dPad, 1, s.kT, 0, chunkCols, s.scores, 0, chunkCols, rows, cols, d, false);
                    for (int i = 0; i < m; i++) {
                        weigh(s.scores, i * chunkCols, chunk - 1 - i, cols);
                    }
                    StridedTileGemm.multiply(s.scores, 0, chunkCols, 1, s.vTile, 0, dPad, o, 0, dPad, rows, dPad, m, true);
                }
                float[] kd = s.kTile;
                if (decays) {
                    kd = s.kDecayed;
                    for (int j = 0; j < m; j++) {
                        scaleRow(s.kTile, j * dPad, pow[m - 1 - j], kd, j * dPad, d);
                    }
                }
                // S[x][y] += sum_j kd[j][x] V[j][y]: A = kd^T read through its strides.
                StridedTileGemm.multiply(kd, 0, 1, dPad, s.vTile, 0, dPad, state, 0, dPad, dPad, dPad, m, true);
            }
            if (out != null) {
                for (int i = 0; i < m; i++) {
                    out.rows().write(out.batch(), position(t0 + i, reverse), out.head(), o, i * dPad, false, s.shorts);
                }
            }
        }
    }

    /** out = scale * query s.state, chunk by chunk (non-causal: every row sees the same state). */
    private void apply(HeadRows query, float scale, HeadRows out, Scratch s) {
        for (int t0 = 0; t0 < seq; t0 += chunk) {
            int m = Math.min(chunk, seq - t0);
            for (int i = 0; i < m; i++) {
                query.rows().read(query.batch(), t0 + i, query.head(), s.qTile, i * dPad, scale, s.shorts);
            }
            StridedTileGemm.multiply(s.qTile, 0, dPad, 1, s.state, 0, dPad, s.out, 0, dPad,
                    Tiling.roundUp(m, TileGemm.BLOCK_ROWS), dPad, headDim, false);
            for (int i = 0; i < m; i++) {
                out.rows().write(out.batch(), t0 + i, out.head(), s.out, i * dPad, false, s.shorts);
            }
        }
    }

    private int position(int t, boolean reverse) {
        return reverse ? seq - 1 - t : t;
    }

    /** scores[at + j] *= band[from + j]: the causal weights G^(i-j) of one row, 0 past the diagonal. */
    private void weigh(float[] scores, int at, int from, int cols) {
        for (int j = 0; j < cols; j += LANES) {
            FloatVector.fromArray(SPECIES, scores, at + j).mul(FloatVector.fromArray(SPECIES, band, from + j))
                    .intoArray(scores, at + j);
        }
    }

    private static void scaleRow(float[] src, int from, float factor, float[] dst, int to, int n) {
        for (int x = 0; x < n; x++) {
            dst[to + x] = src[from + x] * factor;
        }
    }

    /** Zeroes the state. */
    void clearState(Scratch s) {
        Arrays.fill(s.state, 0f);
    }

    /** s.state = the [d][d] state of (batch, head) in {@code rows}, or its transpose; padding zero. */
    void loadState(TensorRows rows, int batch, int head, boolean transposed, Scratch s) {
        clearState(s);
        for (int x = 0; x < headDim; x++) {
            if (!transposed) {
                rows.read(batch, head, x, s.state, x * dPad, 1f, s.shorts);
            } else {
                rows.read(batch, head, x, s.row, 0, 1f, s.shorts);
                for (int y = 0; y < headDim; y++) {
                    s.state[y * dPad + x] = s.row[y];
                }
            }
        }
    }

    /** Writes s.state's [d][d] part to (batch, head) of {@code rows}. */
    void storeState(TensorRows rows, int batch, int head, Scratch s) {
        for (int x = 0; x < headDim; x++) {
            rows.write(batch, head, x, s.state, x * dPad, false, s.shorts);
        }
    }

    /**
     * One thread's buffers (O(C d + d^2), never O(n)). Padding columns are never written, so they stay
     * zero; a call of another head_dim or chunk gets fresh arrays.
     */
    static final class Scratch {
        private int headDim = -1;
        private int dPad;
        private int chunk;
        float[] qTile;
        float[] qDecayed;
        float[] kTile;
        float[] kDecayed;
        float[] vTile;
        float[] kT;
        float[] scores;
        float[] out;
        float[] state;
        float[] row;
        short[] shorts;

        void ensure(int d, int padded, int rows, int cols) {
            if (d == headDim && padded == dPad && rows == chunk) {
                return;
            }
            headDim = d;
            dPad = padded;
            chunk = rows;
            qTile = new float[rows * padded];
            qDecayed = new float[rows * padded];
            kTile = new float[rows * padded];
            kDecayed = new float[rows * padded];
            vTile = new float[rows * padded];
            kT = new float[padded * cols];
            scores = new float[rows * cols];
            out = new float[rows * padded];
            state = new float[padded * padded];
            row = new float[padded];
            shorts = new short[padded];
        }
    }
}
