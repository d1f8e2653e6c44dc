package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The strided multiply against a plain triple loop in double, over strides, tails and both store modes. */
class StridedTileGemmTest {

    private static final long SEED = Long.getLong("usp4j.test.seed", System.nanoTime());

    @Test
    void matchesPlainMultiplyForEveryBlockShape() {
        SplittableRandom random = new SplittableRandom(SEED);
        int lanes = StridedTileGemm.LANES;
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

    private static void check(SplittableRandom random, int rows, int cols, int depth, boolean transposedA,
                              boolean accumulate) {
        // A(i, r) read through strides, from an array with a margin so offsets are exercised too.
        int aOff = 3;
        int aRowStride = transposedA ? 1 : depth + 2;
        int aDepthStride = transposedA ? rows + 1 : 1;
        float[] a = randomArray(random, aOff + rows * (depth + 2) + depth * (rows + 1) + 8);
        int bOff = 5;
        int ldb = cols + StridedTileGemm.LANES;
        float[] b = randomArray(random, bOff + Math.max(depth, 1) * ldb);
        int cOff = 2;
        int ldc = cols + 3;
        float[] c = randomArray(random, cOff + rows * ldc);
        float[] before = c.clone();

        StridedTileGemm.multiply(a, aOff, aRowStride, aDepthStride, b, bOff, ldb, c, cOff, ldc, rows, cols, depth,
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
