package org.usp4j.cpu;

/**
 * Tile sizes of the CPU kernel. The dimension that runs along the vector lanes of a pass's products
 * (query rows in the forward, keys in the backward) comes in multiples of
 * {@link TileGemm#PANEL}; the other is a register-block row dimension, a multiple of
 * {@link TileGemm#BLOCK_ROWS}. The passes shrink the lane tile of a call (never below one block) when
 * the call is too small to give every thread several work items.
 *
 * @param forwardRows  query rows per forward work item
 * @param forwardKeys  keys per forward step (one online-softmax update)
 * @param backwardRows query rows per backward step
 * @param backwardKeys keys per backward work item (its dK, dV rows)
 */
record Tiling(int forwardRows, int forwardKeys, int backwardRows, int backwardKeys) {

    /**
     * Sizes in rows and keys, whatever the vector width (the panel width, 3 vectors, is fixed at run time
     * by {@code -Dusp4j.cpu.vectorBits} or the machine, and both sizes are multiples of it at 128, 256 and
     * 512 bits). Each item re-reads and re-packs the K/V (forward) or Q/dO (backward) rows it streams, so
     * the larger the item's own side, the less that costs: sweeps on 2 Zen 4 cores (1 MB L2) at s = 4096,
     * d = 64 and 128, measured 768 query rows x 128-key steps forward and 576 keys x 64-row query tiles
     * backward 3-15% faster than 384 / 288 (0.4-0.8 MB of buffers per thread at d = 64, twice at 128) and
     * the earlier 8 / 6 panels, at both 256 and 512 bits. The passes shrink them for small calls.
     */
    static final Tiling DEFAULT = new Tiling(roundUp(768, TileGemm.PANEL), 128, 64, roundUp(576, TileGemm.PANEL));

    Tiling {
        requireMultiple("forwardRows", forwardRows, TileGemm.PANEL);
        requireMultiple("backwardKeys", backwardKeys, TileGemm.PANEL);
        requireMultiple("forwardKeys", forwardKeys, TileGemm.BLOCK_ROWS);
        requireMultiple("backwardRows", backwardRows, TileGemm.BLOCK_ROWS);
    }

    private static void requireMultiple(String name, int value, int unit) {
        if (value <= 0 || value % unit != 0) {
            throw new IllegalArgumentException(name + " (" + value + ") must be a positive multiple of " + unit);
        }
    }

    static int roundUp(int value, int unit) {
        return (value + unit - 1) / unit * unit;
    }

    /**
     * The largest multiple of {@code unit}, at most {@code max} and at least {@code unit}, that cuts
     * {@code length} into at least {@code wanted / parallelSlices} pieces, so that
     * {@code parallelSlices * pieces >= wanted} where possible.
     */
    static int shrinkForParallelism(int max, int unit, int length, long parallelSlices, int wanted) {
        int size = Math.min(max, roundUp(Math.max(length, 1), unit));
        while (size > unit && parallelSlices * ceilDiv(length, size) < wanted) {
            size -= unit;
        }
        return size;
    }

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
