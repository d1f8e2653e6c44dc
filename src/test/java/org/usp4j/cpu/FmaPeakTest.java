package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * FmaPeak measures something plausible: more than one FLOP per nanosecond (any vector FMA unit at
 * 1 GHz) and no more than 64 FLOPs per cycle per core at 6 GHz (two 512-bit FMA pipes).
 */
class FmaPeakTest {

    @Test
    void singleThreadPeakIsPlausible() {
        double gflops = FmaPeak.measure(1, 20);
        assertTrue(gflops > 1 && gflops < 64 * 6, "measured " + gflops + " GFLOP/s");
    }

    @Test
    void refusesNonsense() {
        assertThrows(IllegalArgumentException.class, () -> FmaPeak.measure(0, 10));
        assertThrows(IllegalArgumentException.class, () -> FmaPeak.measure(1, 0));
    }
}
