package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The micro-kernel against a plain triple loop in double, on its packed layouts (A in 4-row blocks or in
 * column panels, C row-major or panel-laid), over column tails, depths, offsets and both store modes.
 */
class TileGemmTest {

    private static final long SEED = Long.getLong("usp4j.test.seed", System.nanoTime());
    private static final int P = TileGemm.PANEL;

    /** Where a packed operand keeps its elements. */
    interface Layout {
        int at(int i, int j);
    }

    @Test
    void matchesPlainMultiplyForEveryBlockShape() {
        SplittableRandom random = new SplittableRandom(SEED);
        int lanes = TileGemm.LANES;
        // Column counts covering full 3-vector panels and 2- and 1-vector tails; depths 0, odd, and past a panel.
        int[] colCounts = {lanes, 2 * lanes, 3 * lanes, 4 * lanes, 5 * lanes, 6 * lanes, 7 * lanes};
        int[] depths = {0, 1, 7, 33, P + 5};
        for (int cols : colCounts) {
            for (int depth : depths) {
                for (boolean panelA : new boolean[] {false, true}) {
                    for (boolean panelC : new boolean[] {false, true}) {
                        for (boolean accumulate : new boolean[] {false, true}) {
                            check(random, 8, cols, depth, panelA, panelC, accumulate);
                        }
                    }
                }
            }
        }
    }

    @Test
    void bandSkipsExactlyTheRowsAndDepthPastEachPanel() {
        SplittableRandom random = new SplittableRandom(SEED + 1);
        int lanes = TileGemm.LANES;
        int rows = 16;
        int cols = 5 * lanes; // a full panel and a 2-vector tail
        int depth = 20;
        int aBlock = 4 * depth;
        int bPanel = depth * P;
        Layout aAt = (i, r) -> i / 4 * aBlock + r * 4 + i % 4;
        Layout bAt = (r, c) -> c / P * bPanel + r * P + c % P;
        for (int band : new int[] {-30, -8, -3, 0, 5, 1000}) {
            float[] a = randomArray(random, rows * depth);
            float[] b = randomArray(random, Tiling.ceilDiv(cols, P) * bPanel);
            float[] rowBanded = randomArray(random, rows * cols);
            float[] depthBanded = randomArray(random, rows * cols);
            float[] before = rowBanded.clone();
            TileGemm.multiply(a, 0, aBlock, b, 0, bPanel, rowBanded, 0, P, cols, rows, cols, depth, false,
                    band, TileGemm.NO_BAND);
            TileGemm.multiply(a, 0, aBlock, b, 0, bPanel, depthBanded, 0, P, cols, rows, cols, depth, false,
                    TileGemm.NO_BAND, band);
            for (int col = 0; col < cols; col++) {
                int panelEnd = col < P ? P : cols;
                int rowLimit = Math.min(rows, Math.max(0, band + panelEnd + 3) / 4 * 4);
                int depthLimit = Math.max(0, Math.min(depth, band + panelEnd));
                for (int i = 0; i < rows; i++) {
                    double full = 0;
                    double partial = 0;
                    for (int r = 0; r < depth; r++) {
                        double term = (double) a[aAt.at(i, r)] * b[bAt.at(r, col)];
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

    private static void check(SplittableRandom random, int rows, int cols, int depth, boolean panelA, boolean panelC,
                              boolean accumulate) {
        int panels = Tiling.ceilDiv(cols, P);
        int depthPanels = Tiling.ceilDiv(Math.max(depth, 1), P);
        // Offsets and strides with slack, so that they are exercised too.
        int aOff = 3;
        int aStride = panelA ? rows * P + 5 : 4 * depth + 2;
        Layout aAt = panelA ? (i, r) -> aOff + r / P * aStride + i * P + r % P
                : (i, r) -> aOff + i / 4 * aStride + r * 4 + i % 4;
        float[] a = randomArray(random, aOff + (panelA ? depthPanels : rows / 4) * aStride + 8);
        int bOff = 5;
        int bPanel = depth * P + 7;
        Layout bAt = (r, c) -> bOff + c / P * bPanel + r * P + c % P;
        float[] b = randomArray(random, bOff + panels * bPanel);
        int cOff = 2;
        int ldc = panelC ? P : cols + 3;
        int cPanel = panelC ? rows * P + 1 : P;
        Layout cAt = (i, c) -> cOff + c / P * cPanel + i * ldc + c % P;
        float[] c = randomArray(random, cOff + (panelC ? panels * cPanel : rows * ldc) + 8);
        float[] before = c.clone();

        if (panelA) {
            TileGemm.multiplyPanelA(a, aOff, aStride, b, bOff, bPanel, c, cOff, cPanel, ldc, rows, cols, depth,
                    accumulate);
        } else {
            TileGemm.multiply(a, aOff, aStride, b, bOff, bPanel, c, cOff, cPanel, ldc, rows, cols, depth, accumulate,
                    TileGemm.NO_BAND, TileGemm.NO_BAND);
        }

        boolean[] inside = new boolean[c.length];
        for (int i = 0; i < rows; i++) {
            for (int col = 0; col < cols; col++) {
                int at = cAt.at(i, col);
                inside[at] = true;
                double expected = accumulate ? before[at] : 0;
                for (int r = 0; r < depth; r++) {
                    expected += (double) a[aAt.at(i, r)] * b[bAt.at(r, col)];
                }
                assertEquals(expected, c[at], 1e-5 * (1 + depth), "C[" + i + "][" + col + "] of " + rows + "x"
                        + cols + "x" + depth + (panelA ? " A in panels" : "") + (panelC ? " C in panels" : "")
                        + (accumulate ? " +=" : "") + ", seed " + SEED);
            }
        }
        // Nothing outside C's rows and columns is touched.
        for (int at = 0; at < c.length; at++) {
            if (!inside[at]) {
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
