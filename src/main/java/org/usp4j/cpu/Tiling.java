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
     * Sizes chosen by sweeps on an AVX2 core (32 KB L1, 512 KB L2): a forward item's buffers (Q^T, O^T,
     * the score tile, K and V: about 0.4 MB) stay within L2 up to head_dim 128, a backward item's (K,
     * K^T, V^T, dK^T, dV^T for 192 keys and a 64-row query tile) up to head_dim 64; larger tiles
     * measured no faster, smaller ones slower.
     */
    static final Tiling DEFAULT = new Tiling(8 * TileGemm.PANEL, 128, 64, 6 * TileGemm.PANEL);

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
