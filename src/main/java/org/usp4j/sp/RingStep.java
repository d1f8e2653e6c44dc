package org.usp4j.sp;

import org.usp4j.kernel.AttentionShapes;
import java.util.LinkedHashSet;
import java.util.Set;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.tensor.Tensor;

/**
 * Which local query rows attend to which rows of the visiting K/V block at one ring step, and under
 * which mask. Forward and backward use the same plan, so they agree by construction.
 * With ring rank g holding the block of ring rank j:
 * <ul>
 *   <li>not causal: every row sees every key;</li>
 *   <li>j == g (step 0): local order is global order in both layouts, so the whole block is causal;</li>
 *   <li>contiguous, j &lt; g: the whole block lies before mine, no mask; j &gt; g: it lies after, skip;</li>
 *   <li>zigzag (my block = chunks g and 2R-1-g, its block = chunks j and 2R-1-j): j &lt; g: both my
 *       chunks see all of chunk j and none of chunk 2R-1-j, so all rows against the first half; j &gt; g:
 *       only my second chunk (2R-1-g) comes after both of its chunks, so my second half against all.
 *       Every zigzag step costs the same half-block of scores.</li>
 *   <li>striped (my block = positions g + R a, its block = positions j + R b): key b is visible to row a
 *       when j + R b &lt;= g + R a, i.e. b &lt;= a for j &lt; g (the diagonal included) and b &lt; a for
 *       j &gt; g (excluded): the whole block under a causal mask with diagonal 0 or -1.</li>
 * </ul>
 */
record RingStep(boolean skip, Mask mask, long queryStart, long queryLength, long keyStart, long keyLength) {

    static RingStep plan(AttentionOptions options, int me, int owner, long blockLength) {
        RingStep full = new RingStep(false, Mask.NONE, 0, blockLength, 0, blockLength);
        if (!options.causal()) {
            return full;
        }
        if (owner == me) {
            return new RingStep(false, Mask.CAUSAL, 0, blockLength, 0, blockLength);
        }
        long half = blockLength / 2;
        return switch (options.layout()) {
            case CONTIGUOUS -> owner < me ? full : new RingStep(true, Mask.NONE, 0, 0, 0, 0);
            case ZIGZAG -> owner < me
                    ? new RingStep(false, Mask.NONE, 0, blockLength, 0, half)
                    : new RingStep(false, Mask.NONE, half, blockLength - half, 0, blockLength);
            case STRIPED -> new RingStep(false, owner < me ? Mask.CAUSAL : Mask.causal(-1), 0, blockLength, 0,
                    blockLength);
        };
    }

    /** Throws unless {@code local} is a ring block the plans can cut: self-attention, non-empty, even for zigzag. */
    static void requireBlock(String who, AttentionShapes local, AttentionOptions options) {
        if (local.seqQ() != local.seqKv()) {
            throw new IllegalArgumentException(who + " is self-attention over one block: q has "
                    + local.seqQ() + " rows but k and v have " + local.seqKv());
        }
        if (local.seqQ() <= 0) {
            throw new IllegalArgumentException("the ring block must hold at least one row, got " + local.seqQ());
        }
        if (options.layout() == SequenceLayout.ZIGZAG && local.seqQ() % 2 != 0) {
            throw new IllegalArgumentException("zigzag needs an even ring block (chunks g and 2R-1-g), got "
                    + local.seqQ() + " rows");
        }
    }

    /**
     * Every kernel call any of the {@code ringSize} ring ranks makes on blocks of {@code blockLength} rows,
     * so that each rank refuses exactly what any rank would.
     */
    static Set<RingStep> kernelSteps(AttentionOptions options, int ringSize, long blockLength) {
        Set<RingStep> steps = new LinkedHashSet<>();
        for (int me = 0; me < ringSize; me++) {
            for (int owner = 0; owner < ringSize; owner++) {
                RingStep step = plan(options, me, owner, blockLength);
                if (!step.skip()) {
                    steps.add(step);
                }
            }
        }
        return steps;
    }

    /** The shapes of this step's kernel call on a block of {@code block}'s shapes. */
    AttentionShapes shapes(AttentionShapes block) {
        return new AttentionShapes(block.batch(), queryLength, keyLength, block.heads(), block.kvHeads(),
                block.headDim());
    }

    /** The attending rows of a [b, s, h, d] tensor shaped like the local queries. */
    Tensor queries(Tensor bshd) {
        return bshd.slice(1, queryStart, queryLength);
    }

    /** The attending rows of a [b, h, s] log-sum-exp. */
    Tensor queryLse(Tensor bhs) {
        return bhs.slice(2, queryStart, queryLength);
    }

    /** The attended rows of a [b, s, h_kv, d] tensor shaped like the K/V block. */
    Tensor keys(Tensor bshd) {
        return bshd.slice(1, keyStart, keyLength);
    }
}
