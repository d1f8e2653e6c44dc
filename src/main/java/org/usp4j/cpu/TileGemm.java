package org.usp4j.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register-blocked matrix multiply every attention tile product runs through,
 * {@code C[i][c] (+)= sum_r A(i, r) B(r, c)}, on operands packed so that each step of the sum reads
 * memory at a constant distance from the last:
 * <ul>
 * <li>B in column panels of {@link #PANEL} = 3 vectors: B(r, c) at
 * {@code bOff + (c / PANEL) * bPanelStride + r * PANEL + c % PANEL};</li>
 * <li>A in blocks of 4 rows, A(i, r) at {@code aOff + (i / 4) * aBlockStride + r * 4 + i % 4}
 * ({@link #multiply}), or in column panels like B, A(i, r) at
 * {@code aOff + (r / PANEL) * aPanelStride + i * PANEL + r % PANEL} ({@link #multiplyPanelA}: a panel-laid
 * product read transposed, as the backward's dQ = dS K needs);</li>
 * <li>C(i, c) at {@code cOff + (c / PANEL) * cPanelStride + i * ldc + c % PANEL}: row-major with
 * {@code cPanelStride = PANEL}, or panel-laid like B with {@code ldc = PANEL}, so one product's C is the
 * next one's B.</li>
 * </ul>
 * With strides that are compile-time constants along the sum, C2 hoists every bounds check out of the
 * inner loop and the loads stream through whole cache lines; the strided form this replaced (A and B
 * rows at run-time strides) ran the same tile products at 0.6-0.8 of the packed speed.
 *
 * <p>The micro-kernel holds a block of 4 rows x 3 vectors of C in 12 registers; each step of r loads 3
 * vectors of B and broadcasts 4 scalars of A for 12 FMAs: 16 registers, so it fits AVX2's 16 as well as
 * AVX-512's 32, and in L1 it runs at about 0.97 of the FMA peak with 256- and 512-bit vectors (a 8 x 3
 * block on 32 registers measured no faster). Column tails of 2 or 1 vectors use narrower blocks.
 * Callers pad: {@code rows} is a multiple of 4, {@code cols} a multiple of {@link #LANES}, and the packed
 * rows of a partial panel are PANEL long.
 *
 * <p>Accumulation starts the registers from C rather than adding C at the end: fewer vector operations
 * in the block method keep it under C2's inlining node budget (past it, the last vector operations
 * are not inlined and fall back to allocating Java code).
 */
final class TileGemm {

    static final VectorSpecies<Float> SPECIES = VectorWidth.SPECIES;
    static final int LANES = SPECIES.length();
    /** Columns of one packed panel, and of one full micro-kernel block. */
    static final int PANEL = 3 * LANES;
    static final int BLOCK_ROWS = 4;

    /** A band offset that limits nothing. */
    static final int NO_BAND = Integer.MAX_VALUE / 4;

    private TileGemm() {
    }

    /**
     * C = A B, or C += A B with {@code accumulate}, A in 4-row blocks, restricted to a causal band: the
     * column panel [col, col + w) only computes rows i < rowBand + col + w and sums over
     * r < depthBand + col + w (NO_BAND: no limit). Rows it does not compute keep whatever C held. With
     * keys as rows (S^T) or as depth (O^T += V^T P^T) and query rows as columns, rowBand = depthBand =
     * q0 - k0 skips exactly the keys that come after every row of the panel.
     */
    static void multiply(float[] a, int aOff, int aBlockStride, float[] b, int bOff, int bPanelStride,
                         float[] c, int cOff, int cPanelStride, int ldc,
                         int rows, int cols, int depth, boolean accumulate, int rowBand, int depthBand) {
        for (int col = 0, panel = 0; col < cols; col += PANEL, panel++) {
            int width = Math.min(PANEL, cols - col);
            int end = col + width;
            int bandRows = bandRows(rows, rowBand + end);
            int bandDepth = Math.max(0, Math.min(depth, depthBand + end));
            int bi = bOff + panel * bPanelStride;
            int ci = cOff + panel * cPanelStride;
            for (int i = 0; i < bandRows; i += BLOCK_ROWS) {
                int ai = aOff + i / BLOCK_ROWS * aBlockStride;
                int at = ci + i * ldc;
                if (width == PANEL) {
                    block4x3(a, ai, b, bi, c, at, ldc, bandDepth, accumulate);
                } else if (width == 2 * LANES) {
                    block4x2(a, ai, b, bi, c, at, ldc, bandDepth, accumulate);
                } else {
                    block4x1(a, ai, b, bi, c, at, ldc, bandDepth, accumulate);
                }
            }
        }
    }

    /** C = A B, or C += A B, with A laid out in column panels (see the class comment); no band. */
    static void multiplyPanelA(float[] a, int aOff, int aPanelStride, float[] b, int bOff, int bPanelStride,
                               float[] c, int cOff, int cPanelStride, int ldc,
                               int rows, int cols, int depth, boolean accumulate) {
        for (int col = 0, panel = 0; col < cols; col += PANEL, panel++) {
            int width = Math.min(PANEL, cols - col);
            int bi = bOff + panel * bPanelStride;
            int ci = cOff + panel * cPanelStride;
            for (int i = 0; i < rows; i += BLOCK_ROWS) {
                int ai = aOff + i * PANEL;
                int at = ci + i * ldc;
                if (width == PANEL) {
                    panelA4x3(a, ai, aPanelStride, b, bi, c, at, ldc, depth, accumulate);
                } else if (width == 2 * LANES) {
                    panelA4x2(a, ai, aPanelStride, b, bi, c, at, ldc, depth, accumulate);
                } else {
                    panelA4x1(a, ai, aPanelStride, b, bi, c, at, ldc, depth, accumulate);
                }
            }
        }
    }

    private static int bandRows(int rows, int limit) {
        return Math.min(rows, Math.max(0, limit + BLOCK_ROWS - 1) / BLOCK_ROWS * BLOCK_ROWS);
    }

    private static void block4x3(float[] a, int ai, float[] b, int bi, float[] c, int ci, int ldc, int depth,
            boolean accumulate) {
        final int l = LANES;
        int row1 = ci + ldc, row2 = ci + 2 * ldc, row3 = ci + 3 * ldc;
        FloatVector c00 = initial(c, ci, accumulate), c01 = initial(c, ci + l, accumulate), c02 = initial(c,
                ci + 2 * l, accumulate);
        FloatVector c10 = initial(c, row1, accumulate), c11 = initial(c, row1 + l, accumulate), c12 = initial(c,
                row1 + 2 * l, accumulate);
        FloatVector c20 = initial(c, row2, accumulate), c21 = initial(c, row2 + l, accumulate), c22 = initial(c,
                row2 + 2 * l, accumulate);
        FloatVector c30 = initial(c, row3, accumulate), c31 = initial(c, row3 + l, accumulate), c32 = initial(c,
                row3 + 2 * l, accumulate);
        for (int r = 0; r < depth; r++) {
            int ao = ai + r * BLOCK_ROWS;
            int bo = bi + r * PANEL;
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bo);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, bo + l);
            FloatVector b2 = FloatVector.fromArray(SPECIES, b, bo + 2 * l);
            FloatVector x = FloatVector.broadcast(SPECIES, a[ao]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            c02 = x.fma(b2, c02);
            x = FloatVector.broadcast(SPECIES, a[ao + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            c12 = x.fma(b2, c12);
            x = FloatVector.broadcast(SPECIES, a[ao + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            c22 = x.fma(b2, c22);
            x = FloatVector.broadcast(SPECIES, a[ao + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            c32 = x.fma(b2, c32);
        }
        c00.intoArray(c, ci);
        c01.intoArray(c, ci + l);
        c02.intoArray(c, ci + 2 * l);
        c10.intoArray(c, row1);
        c11.intoArray(c, row1 + l);
        c12.intoArray(c, row1 + 2 * l);
        c20.intoArray(c, row2);
        c21.intoArray(c, row2 + l);
        c22.intoArray(c, row2 + 2 * l);
        c30.intoArray(c, row3);
        c31.intoArray(c, row3 + l);
        c32.intoArray(c, row3 + 2 * l);
    }

    private static void block4x2(float[] a, int ai, float[] b, int bi, float[] c, int ci, int ldc, int depth,
            boolean accumulate) {
        final int l = LANES;
        int row1 = ci + ldc, row2 = ci + 2 * ldc, row3 = ci + 3 * ldc;
        FloatVector c00 = initial(c, ci, accumulate), c01 = initial(c, ci + l, accumulate);
        FloatVector c10 = initial(c, row1, accumulate), c11 = initial(c, row1 + l, accumulate);
        FloatVector c20 = initial(c, row2, accumulate), c21 = initial(c, row2 + l, accumulate);
        FloatVector c30 = initial(c, row3, accumulate), c31 = initial(c, row3 + l, accumulate);
        for (int r = 0; r < depth; r++) {
            int ao = ai + r * BLOCK_ROWS;
            int bo = bi + r * PANEL;
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bo);
            FloatVector b1 = FloatVector.fromArray(SPECIES, b, bo + l);
            FloatVector x = FloatVector.broadcast(SPECIES, a[ao]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SPECIES, a[ao + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SPECIES, a[ao + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SPECIES, a[ao + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
        }
        c00.intoArray(c, ci);
        c01.intoArray(c, ci + l);
        c10.intoArray(c, row1);
        c11.intoArray(c, row1 + l);
        c20.intoArray(c, row2);
        c21.intoArray(c, row2 + l);
        c30.intoArray(c, row3);
        c31.intoArray(c, row3 + l);
    }

    private static void block4x1(float[] a, int ai, float[] b, int bi, float[] c, int ci, int ldc, int depth,
            boolean accumulate) {
        final int l = LANES;
        int row1 = ci + ldc, row2 = ci + 2 * ldc, row3 = ci + 3 * ldc;
        FloatVector c00 = initial(c, ci, accumulate);
        FloatVector c10 = initial(c, row1, accumulate);
        FloatVector c20 = initial(c, row2, accumulate);
        FloatVector c30 = initial(c, row3, accumulate);
        for (int r = 0; r < depth; r++) {
            int ao = ai + r * BLOCK_ROWS;
            int bo = bi + r * PANEL;
            FloatVector b0 = FloatVector.fromArray(SPECIES, b, bo);
            FloatVector x = FloatVector.broadcast(SPECIES, a[ao]);
            c00 = x.fma(b0, c00);
            x = FloatVector.broadcast(SPECIES, a[ao + 1]);
            c10 = x.fma(b0, c10);
            x = FloatVector.broadcast(SPECIES, a[ao + 2]);
            c20 = x.fma(b0, c20);
            x = FloatVector.broadcast(SPECIES, a[ao + 3]);
            c30 = x.fma(b0, c30);
        }
        c00.intoArray(c, ci);
        c10.intoArray(c, row1);
        c20.intoArray(c, row2);
        c30.intoArray(c, row3);
    }

    private static void panelA4x3(float[] a, int ai, int aps, float[] b, int bi, float[] c, int ci, int ldc,
            int depth, boolean accumulate) {
        final int l = LANES;
        int row1 = ci + ldc, row2 = ci + 2 * ldc, row3 = ci + 3 * ldc;
        FloatVector c00 = initial(c, ci, accumulate), c01 = initial(c, ci + l, accumulate), c02 = initial(c,
                ci + 2 * l, accumulate);
        FloatVector c10 = initial(c, row1, accumulate), c11 = initial(c, row1 + l, accumulate), c12 = initial(c,
                row1 + 2 * l, accumulate);
        FloatVector c20 = initial(c, row2, accumulate), c21 = initial(c, row2 + l, accumulate), c22 = initial(c,
                row2 + 2 * l, accumulate);
        FloatVector c30 = initial(c, row3, accumulate), c31 = initial(c, row3 + l, accumulate), c32 = initial(c,
                row3 + 2 * l, accumulate);
        for (int r0 = 0; r0 < depth; r0 += PANEL, ai += aps) {
            int n = Math.min(PANEL, depth - r0);
            int bo = bi + r0 * PANEL;
            for (int r = 0; r < n; r++) {
                int ao = ai + r;
                int bj = bo + r * PANEL;
                FloatVector b0 = FloatVector.fromArray(SPECIES, b, bj);
                FloatVector b1 = FloatVector.fromArray(SPECIES, b, bj + l);
                FloatVector b2 = FloatVector.fromArray(SPECIES, b, bj + 2 * l);
                FloatVector x = FloatVector.broadcast(SPECIES, a[ao]);
                c00 = x.fma(b0, c00);
                c01 = x.fma(b1, c01);
                c02 = x.fma(b2, c02);
                x = FloatVector.broadcast(SPECIES, a[ao + 1 * PANEL]);
                c10 = x.fma(b0, c10);
                c11 = x.fma(b1, c11);
                c12 = x.fma(b2, c12);
                x = FloatVector.broadcast(SPECIES, a[ao + 2 * PANEL]);
                c20 = x.fma(b0, c20);
                c21 = x.fma(b1, c21);
                c22 = x.fma(b2, c22);
                x = FloatVector.broadcast(SPECIES, a[ao + 3 * PANEL]);
                c30 = x.fma(b0, c30);
                c31 = x.fma(b1, c31);
                c32 = x.fma(b2, c32);
            }
        }
        c00.intoArray(c, ci);
        c01.intoArray(c, ci + l);
        c02.intoArray(c, ci + 2 * l);
        c10.intoArray(c, row1);
        c11.intoArray(c, row1 + l);
        c12.intoArray(c, row1 + 2 * l);
        c20.intoArray(c, row2);
        c21.intoArray(c, row2 + l);
        c22.intoArray(c, row2 + 2 * l);
        c30.intoArray(c, row3);
        c31.intoArray(c, row3 + l);
        c32.intoArray(c, row3 + 2 * l);
    }

    private static void panelA4x2(float[] a, int ai, int aps, float[] b, int bi, float[] c, int ci, int ldc,
            int depth, boolean accumulate) {
        final int l = LANES;
        int row1 = ci + ldc, row2 = ci + 2 * ldc, row3 = ci + 3 * ldc;
        FloatVector c00 = initial(c, ci, accumulate), c01 = initial(c, ci + l, accumulate);
        FloatVector c10 = initial(c, row1, accumulate), c11 = initial(c, row1 + l, accumulate);
        FloatVector c20 = initial(c, row2, accumulate), c21 = initial(c, row2 + l, accumulate);
        FloatVector c30 = initial(c, row3, accumulate), c31 = initial(c, row3 + l, accumulate);
        for (int r0 = 0; r0 < depth; r0 += PANEL, ai += aps) {
            int n = Math.min(PANEL, depth - r0);
            int bo = bi + r0 * PANEL;
            for (int r = 0; r < n; r++) {
                int ao = ai + r;
                int bj = bo + r * PANEL;
                FloatVector b0 = FloatVector.fromArray(SPECIES, b, bj);
                FloatVector b1 = FloatVector.fromArray(SPECIES, b, bj + l);
                FloatVector x = FloatVector.broadcast(SPECIES, a[ao]);
                c00 = x.fma(b0, c00);
                c01 = x.fma(b1, c01);
                x = FloatVector.broadcast(SPECIES, a[ao + 1 * PANEL]);
                c10 = x.fma(b0, c10);
                c11 = x.fma(b1, c11);
                x = FloatVector.broadcast(SPECIES, a[ao + 2 * PANEL]);
                c20 = x.fma(b0, c20);
                c21 = x.fma(b1, c21);
                x = FloatVector.broadcast(SPECIES, a[ao + 3 * PANEL]);
                c30 = x.fma(b0, c30);
                c31 = x.fma(b1, c31);
            }
        }
        c00.intoArray(c, ci);
        c01.intoArray(c, ci + l);
        c10.intoArray(c, row1);
        c11.intoArray(c, row1 + l);
        c20.intoArray(c, row2);
        c21.intoArray(c, row2 + l);
        c30.intoArray(c, row3);
        c31.intoArray(c, row3 + l);
    }

    private static void panelA4x1(float[] a, int ai, int aps, float[] b, int bi, float[] c, int ci, int ldc,
            int depth, boolean accumulate) {
        final int l = LANES;
        int row1 = ci + ldc, row2 = ci + 2 * ldc, row3 = ci + 3 * ldc;
        FloatVector c00 = initial(c, ci, accumulate);
        FloatVector c10 = initial(c, row1, accumulate);
        FloatVector c20 = initial(c, row2, accumulate);
        FloatVector c30 = initial(c, row3, accumulate);
        for (int r0 = 0; r0 < depth; r0 += PANEL, ai += aps) {
            int n = Math.min(PANEL, depth - r0);
            int bo = bi + r0 * PANEL;
            for (int r = 0; r < n; r++) {
                int ao = ai + r;
                int bj = bo + r * PANEL;
                FloatVector b0 = FloatVector.fromArray(SPECIES, b, bj);
                FloatVector x = FloatVector.broadcast(SPECIES, a[ao]);
                c00 = x.fma(b0, c00);
                x = FloatVector.broadcast(SPECIES, a[ao + 1 * PANEL]);
                c10 = x.fma(b0, c10);
                x = FloatVector.broadcast(SPECIES, a[ao + 2 * PANEL]);
                c20 = x.fma(b0, c20);
                x = FloatVector.broadcast(SPECIES, a[ao + 3 * PANEL]);
                c30 = x.fma(b0, c30);
            }
        }
        c00.intoArray(c, ci);
        c10.intoArray(c, row1);
        c20.intoArray(c, row2);
        c30.intoArray(c, row3);
    }


    /** The accumulator's start: C's current value to add to, or zero. */
    private static FloatVector initial(float[] c, int ci, boolean accumulate) {
        return accumulate ? FloatVector.fromArray(SPECIES, c, ci) : FloatVector.zero(SPECIES);
    }
}
