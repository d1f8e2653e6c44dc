package org.usp4j.cpu;

import org.usp4j.kernel.AttentionShapes;

/**
 * The dimensions of one call as ints, checked to fit the kernel's int-indexed tiles and per-head
 * buffers: b * h * s_q (the row statistics) and s_q * d (one head's dq accumulator) stay below 2^31.
 */
record AttentionDims(int batch, int seqQ, int seqKv, int heads, int kvHeads, int headDim) {

    static AttentionDims of(AttentionShapes shapes) {
        long rows = saturatingProduct(shapes.batch(), shapes.heads(), shapes.seqQ());
        long headElements = saturatingProduct(Math.max(shapes.seqQ(), shapes.seqKv()), shapes.headDim(), 1);
        if (rows >= Integer.MAX_VALUE || headElements >= Integer.MAX_VALUE - 64 || shapes.headDim() > 1 << 16) {
            throw new IllegalArgumentException("attention shape too large for the CPU kernel: " + shapes
                    + " (needs b*h*s_q and s*head_dim below 2^31 and head_dim at most 65536)");
        }
        return new AttentionDims((int) shapes.batch(), (int) shapes.seqQ(), (int) shapes.seqKv(),
                (int) shapes.heads(), (int) shapes.kvHeads(), (int) shapes.headDim());
    }

    private static long saturatingProduct(long a, long b, long c) {
        try {
            return Math.multiplyExact(Math.multiplyExact(a, b), c);
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }

    int groupSize() {
        return heads / kvHeads;
    }
}
