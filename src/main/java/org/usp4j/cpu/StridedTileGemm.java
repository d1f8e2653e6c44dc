package org.usp4j.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A register-blocked matrix multiply on strided operands, {@code C[i][c] (+)= sum_r A(i, r) * B[r][c]},
 * where A is read through two strides (so A and A^T are the same call) and B and C are row-major with
 * vector-contiguous columns: for the linear-attention chunks ({@code LinearChunks}), whose products are
 * small and whose operands are not packed. The softmax kernel's products run on {@link TileGemm}'s packed
 * layouts, which avoid the run-time strides of the inner loop (and so its bounds checks).
 *
 * <p>The micro-kernel holds a block of 4 rows x 3 vectors of C in 12 registers; each step of r loads 3
 * vectors of B and broadcasts 4 scalars of A for 12 FMAs. Column tails of 2 or 1 vectors use narrower
 * blocks. Callers pad: {@code rows} is a multiple of 4 and {@code cols} a multiple of {@link #LANES}.
 * Accumulation starts the registers from C rather than adding C at the end: fewer vector operations in
 * the block method keep it under C2's inlining node budget.
 */
final class StridedTileGemm {

    static final VectorSpecies<Float> SPECIES = TileGemm.SPECIES;
    static final int LANES = TileGemm.LANES;
    private static final int BLOCK_COLS = 3 * LANES;
    private static final int BLOCK_ROWS = 4;

    private StridedTileGemm() {
    }

    /** A band offset that limits nothing. */
    private static final int NO_BAND = Integer.MAX_VALUE / 4;

    /**
     * C = A B, or C += A B with {@code accumulate}.
     *
     * @param a    A(i, r) = a[aOff + i * aRowStride + r * aDepthStride]
     * @param b    B[r][c] = b[bOff + r * ldb + c]
     * @param c    C[i][c] = c[cOff + i * ldc + c]
     * @param rows rows of C, a multiple of 4
     * @param cols columns of C, a multiple of LANES
     * @param depth the length of the sum over r (any value >= 0)
     */
    static void multiply(float[] a, int aOff, int aRowStride, int aDepthStride,
                         float[] b, int bOff, int ldb,
                         float[] c, int cOff, int ldc,
                         int rows, int cols, int depth, boolean accumulate) {
        multiplyBand(a, aOff, aRowStride, aDepthStride, b, bOff, ldb, c, cOff, ldc, rows, cols, depth, accumulate,
                NO_BAND, NO_BAND);
    }

    /**
     * {@link #multiply} restricted to a band: the column block [col, col + w) only computes rows
     * i < rowBand + col + w and sums over r < depthBand + col + w. Rows it does not compute keep
     * whatever C held. With keys as rows (S^T) or as depth (O^T += V^T P^T) and query rows as columns,
     * rowBand = depthBand = q0 - k0 skips exactly the keys that come after every row of the block.
     */
    private static void multiplyBand(float[] a, int aOff, int aRowStride, int aDepthStride,
                             float[] b, int bOff, int ldb,
                             float[] c, int cOff, int ldc,
                             int rows, int cols, int depth, boolean accumulate, int rowBand, int depthBand) {
        int col = 0;
        for (; col + BLOCK_COLS <= cols; col += BLOCK_COLS) {
            int end = col + BLOCK_COLS;
            int bandRows = bandRows(rows, rowBand + end);
            int bandDepth = Math.max(0, Math.min(depth, depthBand + end));
            for (int i = 0; i < bandRows; i += BLOCK_ROWS) {
                block4x3(a, aOff + i * aRowStride, aRowStride, aDepthStride, b, bOff + col, ldb,
                        c, cOff + i * ldc + col, ldc, bandDepth, accumulate);
            }
        }
        if (cols - col >= 2 * LANES) {
            int end = col + 2 * LANES;
            int bandRows = bandRows(rows, rowBand + end);
            int bandDepth = Math.max(0, Math.min(depth, depthBand + end));
            for (int i = 0; i < bandRows; i += BLOCK_ROWS) {
                block4x2(a, aOff + i * aRowStride, aRowStride, aDepthStride, b, bOff + col, ldb,
                        c, cOff + i * ldc + col, ldc, bandDepth, accumulate);
            }
            col += 2 * LANES;
        }
        if (cols - col >= LANES) {
            int end = col + LANES;
            int bandRows = bandRows(rows, rowBand + end);
            int bandDepth = Math.max(0, Math.min(depth, depthBand + end));
            for (int i = 0; i < bandRows; i += BLOCK_ROWS) {
                block4x1(a, aOff + i * aRowStride, aRowStride, aDepthStride, b, bOff + col, ldb,
                        c, cOff + i * ldc + col, ldc, bandDepth, accumulate);
            }
        }
    }

    private static int bandRows(int rows, int limit) {
        return Math.min(rows, Math.max(0, limit + BLOCK_ROWS - 1) / BLOCK_ROWS * BLOCK_ROWS);
    }

    private static void block4x3(float[] a, int ai, int ars, int acs, float[] b, int bi, int ldb,
                                 float[] c, int ci, int ldc, int depth, boolean accumulate) {
        final int l = LANES;
        FloatVector c00 = initial(c, ci, accumulate), c01 = initial(c, ci + l, accumulate);
        FloatVector c02 = initial(c, ci + 2 * l, accumulate);
        FloatVector c10 = initial(c, ci + ldc, accumulate), c11 = initial(c, ci + ldc + l, accumulate);
        FloatVector c12 = initial(c, ci + ldc + 2 * l, accumulate);
        FloatVector c20 = initial(c, ci + 2 * ldc, accumulate), c21 = initial(c, ci + 2 * ldc + l, accumulate);
        FloatVector c22 = initial(c, ci + 2 * ldc + 2 * l, accumulate);
        FloatVector c30 = initial(c, ci + 3 * ldc, accumulate), c31 = initial(c, ci + 3 * ldc + l, accumulate);
        FloatVector c32 = initial(c, ci + 3 * ldc + 2 * l, accumulate);
        for (int r = 0; r < depth; r++) {
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bi);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, bi + l);
            FloatVector b2 = FloatVector.fromArray(SPECIES, b, bi + 2 * l);
            FloatVector x = FloatVector.broadcast(SPECIES, a[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            c02 = x.fma(b2, c02);
            x = FloatVector.broadcast(SPECIES, a[ai + ars]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            c12 = x.fma(b2, c12);
            x = FloatVector.broadcast(SPECIES, a[ai + 2 * ars]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            c22 = x.fma(b2, c22);
            x = FloatVector.broadcast(SPECIES, a[ai + 3 * ars]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            c32 = x.fma(b2, c32);
            ai += acs;
            bi += ldb;
        }
        c00.intoArray(c, ci);
        c01.intoArray(c, ci + l);
        c02.intoArray(c, ci + 2 * l);
        ci += ldc;
        c10.intoArray(c, ci);
        c11.intoArray(c, ci + l);
        c12.intoArray(c, ci + 2 * l);
        ci += ldc;
        c20.intoArray(c, ci);
        c21.intoArray(c, ci + l);
        c22.intoArray(c, ci + 2 * l);
        ci += ldc;
        c30.intoArray(c, ci);
        c31.intoArray(c, ci + l);
        c32.intoArray(c, ci + 2 * l);
    }

    private static void block4x2(float[] a, int ai, int ars, int acs, float[] b, int bi, int ldb,
                                 float[] c, int ci, int ldc, int depth, boolean accumulate) {
        final int l = LANES;
        FloatVector c00 = initial(c, ci, accumulate), c01 = initial(c, ci + l, accumulate);
        FloatVector c10 = initial(c, ci + ldc, accumulate), c11 = initial(c, ci + ldc + l, accumulate);
        FloatVector c20 = initial(c, ci + 2 * ldc, accumulate), c21 = initial(c, ci + 2 * ldc + l, accumulate);
        FloatVector c30 = initial(c, ci + 3 * ldc, accumulate), c31 = initial(c, ci + 3 * ldc + l, accumulate);
        for (int r = 0; r < depth; r++) {
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bi);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, bi + l);
            FloatVector x = FloatVector.broadcast(SPECIES, a[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SPECIES, a[ai + ars]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SPECIES, a[ai + 2 * ars]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SPECIES, a[ai + 3 * ars]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            ai += acs;
            bi += ldb;
        }
        c00.intoArray(c, ci);
        c01.intoArray(c, ci + l);
        ci += ldc;
        c10.intoArray(c, ci);
        c11.intoArray(c, ci + l);
        ci += ldc;
        c20.intoArray(c, ci);
        c21.intoArray(c, ci + l);
        ci += ldc;
        c30.intoArray(c, ci);
        c31.intoArray(c, ci + l);
    }

    private static void block4x1(float[] a, int ai, int ars, int acs, float[] b, int bi, int ldb,
                                 float[] c, int ci, int ldc, int depth, boolean accumulate) {
        FloatVector c0 = initial(c, ci, accumulate), c1 = initial(c, ci + ldc, accumulate);
        FloatVector c2 = initial(c, ci + 2 * ldc, accumulate), c3 = initial(c, ci + 3 * ldc, accumulate);
        for (int r = 0; r < depth; r++) {
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bi);
            c0 = FloatVector.broadcast(SPECIES, a[ai]).fma(b0, c0);
            c1 = FloatVector.broadcast(SPECIES, a[ai + ars]).fma(b0, c1);
            c2 = FloatVector.broadcast(SPECIES, a[ai + 2 * ars]).fma(b0, c2);
            c3 = FloatVector.broadcast(SPECIES, a[ai + 3 * ars]).fma(b0, c3);
            ai += acs;
            bi += ldb;
        }
        c0.intoArray(c, ci);
        c1.intoArray(c, ci + ldc);
        c2.intoArray(c, ci + 2 * ldc);
        c3.intoArray(c, ci + 3 * ldc);
    }

    /** The accumulator's start: C's current value to add to, or zero. */
    private static FloatVector initial(float[] c, int ci, boolean accumulate) {
        return accumulate ? FloatVector.fromArray(SPECIES, c, ci) : FloatVector.zero(SPECIES);
    }
}
