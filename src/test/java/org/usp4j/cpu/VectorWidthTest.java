package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class VectorWidthTest {

    private static final int WIDEST = FloatVector.SPECIES_PREFERRED.vectorBitSize();

    @Test
    void defaultsToTheWidestSpecies() {
        assertEquals(WIDEST, VectorWidth.choose(null).vectorBitSize());
        assertEquals(WIDEST, VectorWidth.choose("max").vectorBitSize());
        assertEquals(WIDEST, VectorWidth.choose(" ").vectorBitSize());
    }

    @Test
    void narrowerWidthsCanBeChosen() {
        assertEquals(128, VectorWidth.choose("128").vectorBitSize());
        if (WIDEST >= 256) {
            assertEquals(256, VectorWidth.choose("256").vectorBitSize());
        }
    }

    @Test
    void refusesOtherWidthsWithTheirName() {
        for (String bad : new String[] {"64", "1024", "wide", "300"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VectorWidth.choose(bad));
            assertTrue(e.getMessage().contains(VectorWidth.PROPERTY) && e.getMessage().contains(bad), e.getMessage());
        }
        if (WIDEST < 512) {
            assertThrows(IllegalArgumentException.class, () -> VectorWidth.choose("512"));
        }
    }

    @Test
    void theKernelReportsItsWidth() {
        assertEquals(TileGemm.SPECIES.vectorBitSize(), CpuAttentionKernel.vectorBitSize());
        assertEquals(TileGemm.LANES * Float.SIZE, CpuAttentionKernel.vectorBitSize());
    }
}
