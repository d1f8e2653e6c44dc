package org.usp4j.sp;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.SequenceSegments;
import org.usp4j.tensor.DType;
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
 *       when j + R b &lt;= g + R a, i.e. b &lt;= a for j &lt; g (the whole block, causal) and b &lt; a for
 *       j &gt; g: rows 1.. against keys ..n-2, causal. That slice is the strict mask without its empty
 *       first row (a row that sees no key would be NaN or +inf in some kernels' stats), and without a
 *       shifted-diagonal graph that cuDNN's engines may not recognise; a one-row block skips the step.</li>
 * </ul>
 * Packed sequences ({@link #plan(AttentionOptions, int, int, PackedRingBlocks)}) keep the same rule for
 * the block (zigzag's per-sequence chunks leave it to the segments: no mask) and add one mask segment
 * per sequence the two blocks share: that sequence's rows against its keys, causally trimmed to the keys
 * some row can see and the rows that see some key. A step whose blocks share no visible sequence is
 * skipped; its K/V still travel on, because later ranks need them.
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
            case STRIPED -> owner < me
                    ? new RingStep(false, Mask.CAUSAL, 0, blockLength, 0, blockLength)
                    : blockLength == 1 ? new RingStep(true, Mask.NONE, 0, 0, 0, 0)
                    : new RingStep(false, Mask.CAUSAL, 1, blockLength - 1, 0, blockLength - 1);
        };
    }

    /**
     * The step of ring rank {@code me} holding {@code owner}'s block of packed sequences. Step 0 (my own
     * block) covers every row, as the strategies need to initialise their accumulators; other steps are
     * cut to the rows and keys their segments touch.
     */
    static RingStep plan(AttentionOptions options, int me, int owner, PackedRingBlocks blocks) {
        long rows = blocks.blockLength();
        if (blocks.sequences().isSingle()) {
            return plan(options, me, owner, rows);
        }
        Mask rule;
        if (!options.causal() || (owner != me && options.layout() == SequenceLayout.ZIGZAG)) {
            rule = Mask.NONE;
        } else if (owner == me) {
            rule = Mask.CAUSAL;
        } else if (options.layout() == SequenceLayout.CONTIGUOUS) {
            if (owner > me) {
                return SKIP;
            }
            rule = Mask.NONE;
        } else {
            rule = owner < me ? Mask.CAUSAL : Mask.causal(-1);
        }
        SequenceSegments.Builder segments = SequenceSegments.builder();
        List<PackedRingBlocks.SequenceRun> mine = blocks.runs(me);
        List<PackedRingBlocks.SequenceRun> theirs = blocks.runs(owner);
        int j = 0;
        for (PackedRingBlocks.SequenceRun q : mine) {
            while (j < theirs.size() && theirs.get(j).sequence() < q.sequence()) {
                j++;
            }
            if (j == theirs.size()) {
                break;
            }
            PackedRingBlocks.SequenceRun k = theirs.get(j);
            if (k.sequence() != q.sequence()) {
                continue;
            }
            int qa = q.start(), qb = q.end(), ka = k.start(), kb = k.end();
            if (options.causal() && owner != me) {
                // Keys after my last row of the sequence are seen by none; rows before its first key see none.
                kb = blocks.firstAtOrAfter(owner, ka, kb, blocks.position(me, qb - 1) + 1);
                qa = blocks.firstAtOrAfter(me, qa, qb, blocks.position(owner, ka));
            }
            if (qa < qb && ka < kb) {
                segments.add(qa, qb, ka, kb);
            }
        }
        if (segments.isEmpty()) {
            return SKIP;
        }
        SequenceSegments all = segments.build();
        if (owner == me) {
            return new RingStep(false, rule.withSegments(all), 0, rows, 0, rows);
        }
        int n = all.count();
        long q0 = all.queryStart(0), k0 = all.keyStart(0);
        Mask cut = (rule.causal() ? Mask.causal(rule.diagonal() + q0 - k0) : Mask.NONE)
                .withSegments(all.shifted(q0, k0));
        return new RingStep(false, cut, q0, all.queryEnd(n - 1) - q0, k0, all.keyEnd(n - 1) - k0);
    }

    /** The packed plan when there are packed blocks, else the plain one. */
    static RingStep plan(AttentionOptions options, int me, int owner, long blockLength, PackedRingBlocks blocks) {
        return blocks == null ? plan(options, me, owner, blockLength) : plan(options, me, owner, blocks);
    }

    /** {@link #kernelSteps(AttentionOptions, int, long)} or its packed form. */
    static Set<RingStep> kernelSteps(AttentionOptions options, int ringSize, long blockLength,
                                     PackedRingBlocks blocks) {
        return blocks == null ? kernelSteps(options, ringSize, blockLength) : kernelSteps(options, blocks);
    }

    /**
     * Checks every kernel call any ring rank makes (forward or backward) with {@code kernel}'s validate
     * hook, so that each rank refuses exactly what any rank would, before any transfer.
     */
    static void validateKernelSteps(AttentionKernel kernel, AttentionOptions options, int ringSize,
                                    AttentionShapes local, DType dtype, PackedRingBlocks blocks, boolean backward) {
        for (RingStep step : kernelSteps(options, ringSize, local.seqQ(), blocks)) {
            if (backward) {
                kernel.validateBackward(step.shapes(local), dtype, step.mask());
            } else {
                kernel.validateForward(step.shapes(local), dtype, step.mask());
            }
        }
    }

    private static final RingStep SKIP = new RingStep(true, Mask.NONE, 0, 0, 0, 0);

    /** Every kernel call any ring rank makes on these packed blocks (see {@link #kernelSteps}). */
    static Set<RingStep> kernelSteps(AttentionOptions options, PackedRingBlocks blocks) {
        Set<RingStep> steps = new LinkedHashSet<>();
        for (int me = 0; me < blocks.ringSize(); me++) {
            for (int owner = 0; owner < blocks.ringSize(); owner++) {
                RingStep step = plan(options, me, owner, blocks);
                if (!step.skip()) {
                    steps.add(step);
                }
            }
        }
        return steps;
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
