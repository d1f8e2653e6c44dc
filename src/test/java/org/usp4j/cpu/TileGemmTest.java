package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The micro-kernel against a plain triple loop in double, over strides, tails and both store modes. */
class TileGemmTest {

    private static final long SEED = Long.getLong("usp4j.test.seed", System.nanoTime());

    @Test
    void matchesPlainMultiplyForEveryBlockShape() {
        SplittableRandom random = new SplittableRandom(SEED);
        int lanes = TileGemm.LANES;
        // Column counts covering full 3-vector blocks and 2- and 1-vector tails; depths 0 and odd.
        int[] colCounts = {lanes, 2 * lanes, 3 * lanes, 4 * lanes, 5 * lanes, 6 * lanes, 7 * lanes};
        int[] depths = {0, 1, 7, 33};
        for (int cols : colCounts) {
            for (int depth : depths) {
                for (boolean transposedA : new boolean[] {false, true}) {
                    for (boolean accumulate : new boolean[] {false, true}) {
                        check(random, 8, cols, depth, transposedA, accumulate);
                    }
                }
            }
        }
    }

    @Test
    void bandSkipsExactlyTheRowsAndDepthPastEachColumnBlock() {
        SplittableRandom random = new SplittableRandom(SEED + 1);
        int lanes = TileGemm.LANES;
        int rows = 16;
        int cols = 5 * lanes; // a full block and a 2-vector tail
        int depth = 20;
        for (int band : new int[] {-30, -8, -3, 0, 5, 1000}) {
            float[] a = randomArray(random, rows * depth);
            float[] b = randomArray(random, depth * cols);
            float[] rowBanded = randomArray(random, rows * cols);
            float[] depthBanded = randomArray(random, rows * cols);
            float[] before = rowBanded.clone();
            TileGemm.multiplyBand(a, 0, depth, 1, b, 0, cols, rowBanded, 0, cols, rows, cols, depth, false,
                    band, TileGemm.NO_BAND);
            TileGemm.multiplyBand(a, 0, depth, 1, b, 0, cols, depthBanded, 0, cols, rows, cols, depth, false,
                    TileGemm.NO_BAND, band);
            for (int col = 0; col < cols; col++) {
                int blockEnd = col < TileGemm.BLOCK_COLS ? TileGemm.BLOCK_COLS : cols;
                int rowLimit = Math.min(rows, Math.max(0, band + blockEnd + 3) / 4 * 4);
                int depthLimit = Math.max(0, Math.min(depth, band + blockEnd));
                for (int i = 0; i < rows; i++) {
                    double full = 0;
                    double partial = 0;
                    for (int r = 0; r < depth; r++) {
                        double term = (double) a[i * depth + r] * b[r * cols + col];
                        full += term;
                        partial += r < depthLimit ? term : 0;
                    }
                    float rowExpected = i < rowLimit ? (float) full : before[i * cols + col];
                    assertEquals(rowExpected, rowBanded[i * cols + col], 1e-4, "row band " + band + " C[" + i
                            + "][" + col + "]");
                    assertEquals(partial, depthBanded[i * cols + col], 1e-4, "depth band " + band + " C[" + i
                            + "][" + col + "]");
                }
            }
        }
    }

    private static void check(SplittableRandom random, int rows, int cols, int depth, boolean transposedA,
                              boolean accumulate) {
        // A(i, r) read through strides, from an array with a margin so offsets are exercised too.
        int aOff = 3;
        int aRowStride = transposedA ? 1 : depth + 2;
        int aDepthStride = transposedA ? rows + 1 : 1;
        float[] a = randomArray(random, aOff + rows * (depth + 2) + depth * (rows + 1) + 8);
        int bOff = 5;
        int ldb = cols + TileGemm.LANES;
        float[] b = randomArray(random, bOff + Math.max(depth, 1) * ldb);
        int cOff = 2;
        int ldc = cols + 3;
        float[] c = randomArray(random, cOff + rows * ldc);
        float[] before = c.clone();

        TileGemm.multiply(a, aOff, aRowStride, aDepthStride, b, bOff, ldb, c, cOff, ldc, rows, cols, depth,
                accumulate);

        for (int i = 0; i < rows; i++) {
            for (int col = 0; col < cols; col++) {
                double expected = accumulate ? before[cOff + i * ldc + col] : 0;
                for (int r = 0; r < depth; r++) {
                    expected += (double) a[aOff + i * aRowStride + r * aDepthStride] * b[bOff + r * ldb + col];
                }
                float actual = c[cOff + i * ldc + col];
                assertEquals(expected, actual, 1e-5 * (1 + depth), "C[" + i + "][" + col + "] of " + rows + "x"
                        + cols + "x" + depth + (transposedA ? " A^T" : "") + (accumulate ? " +=" : "")
                        + ", seed " + SEED);
            }
        }
        // Nothing outside C's rows and columns is touched.
        for (int at = 0; at < c.length; at++) {
            int rel = at - cOff;
            boolean inside = rel >= 0 && rel / ldc < rows && rel % ldc < cols;
            if (!inside) {
                assertEquals(before[at], c[at], "C outside the block at " + at);
            }
        }
    }

    private static float[] randomArray(SplittableRandom random, int length) {
        float[] values = new float[length];
        for (int i = 0; i < length; i++) {
            values[i] = (float) (random.nextDouble() * 2 - 1);
        }
        return values;
    }
}
