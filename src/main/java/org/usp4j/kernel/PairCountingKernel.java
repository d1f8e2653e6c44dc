package org.usp4j.kernel;

import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * An {@link AttentionKernel} that counts the work of every call it passes on: the unmasked (query, key)
 * pairs, summed over batch and heads, so that the figures of all ranks of one attention add up to
 * b h times the pairs of the whole sequence. The counts come from the calls actually made (shapes and
 * mask of each block), which is what makes them a measure of each rank's share, not a prediction.
 */
public final class PairCountingKernel implements AttentionKernel {

    private final AttentionKernel kernel;
    private final AtomicLong pairs = new AtomicLong();

    public PairCountingKernel(AttentionKernel kernel) {
        this.kernel = Objects.requireNonNull(kernel, "kernel");
    }

    /** The pairs of every forward and backward call so far. */
    public long pairs() {
        return pairs.get();
    }

    /** b h times the keys each of {@code rows} query rows sees among {@code keys} under {@code mask}. */
    public static long unmaskedPairs(long batch, long heads, long rows, long keys, Mask mask) {
        long perHead = 0;
        if (mask.segmented()) { // packed sequences: each segment's rows against its own keys
            SequenceSegments seg = mask.segments();
            for (int i = 0; i < seg.count(); i++) {
                perHead += plainPairs(seg.queryLength(i), seg.keyLength(i), mask.segmentMask(i));
            }
        } else {
            perHead = plainPairs(rows, keys, mask);
        }
        return Math.multiplyExact(Math.multiplyExact(batch, heads), perHead);
    }

    private static long plainPairs(long rows, long keys, Mask mask) {
        long pairs = 0;
        for (long row = 0; row < rows; row++) {
            pairs += mask.visibleKeys(row, keys);
        }
        return pairs;
    }

    @Override
    public void validateForward(AttentionShapes block, DType dtype, Mask mask) {
        kernel.validateForward(block, dtype, mask);
    }

    @Override
    public void validateBackward(AttentionShapes block, DType dtype, Mask mask) {
        kernel.validateBackward(block, dtype, mask);
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
        kernel.forward(q, k, v, mask, scale, out, lse);
        count(q, k, mask);
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask, float scale,
                         Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
        kernel.backward(q, k, v, out, dout, lse, mask, scale, dq, dk, dv, accumulate);
        count(q, k, mask);
    }

    private void count(Tensor q, Tensor k, Mask mask) {
        pairs.addAndGet(unmaskedPairs(q.size(0), q.size(2), q.size(1), k.size(1), mask));
    }

    @Override
    public String toString() {
        return kernel.toString();
    }
}
