package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** The softmax's exp2 against Math.pow over its whole useful range and at its edges. */
class VectorExp2Test {

    private static float exp2(float x) {
        return VectorExp2.exp2(FloatVector.broadcast(TileGemm.SPECIES, x)).lane(0);
    }

    @Test
    void relativeErrorBelowThreeTenMillionthsFromMinus125To127() {
        double worst = 0;
        float[] xs = new float[TileGemm.LANES];
        float[] ys = new float[TileGemm.LANES];
        for (int step = 0; step <= 2_520_000; step += TileGemm.LANES) {
            for (int lane = 0; lane < xs.length; lane++) {
                xs[lane] = -125f + (step + lane) * 1e-4f; // -125 .. 127, a dense grid with many fractions
            }
            VectorExp2.exp2(FloatVector.fromArray(TileGemm.SPECIES, xs, 0)).intoArray(ys, 0);
            for (int lane = 0; lane < xs.length; lane++) {
                double expected = Math.pow(2, xs[lane]);
                worst = Math.max(worst, Math.abs(ys[lane] / expected - 1));
            }
        }
        assertTrue(worst < 3e-7, "worst relative error " + worst);
    }

    @Test
    void edgeValues() {
        assertEquals(1f, exp2(0f), 2e-7f);
        assertEquals(1f, exp2(-0f), 2e-7f);
        assertEquals(0.5f, exp2(-1f), 1e-7f);
        assertEquals(0f, exp2(Float.NEGATIVE_INFINITY)); // masked scores
        assertEquals(0f, exp2(-125.5f));
        assertEquals(0f, exp2(-1e30f));
        assertTrue(Float.isNaN(exp2(Float.NaN)));
        assertTrue(Float.isNaN(exp2(Float.intBitsToFloat(0xFFC00000)))); // x86's default NaN
        assertEquals(Float.POSITIVE_INFINITY,
                VectorExp2.exp2Unbounded(FloatVector.broadcast(TileGemm.SPECIES, 200f)).lane(0));
        assertEquals((float) Math.pow(2, 100.25), VectorExp2.exp2Unbounded(
                FloatVector.broadcast(TileGemm.SPECIES, 100.25f)).lane(0), Math.pow(2, 100.25) * 3e-7);
    }
}
