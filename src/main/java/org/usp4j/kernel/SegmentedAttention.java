package org.usp4j.kernel;

import java.util.function.BiConsumer;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Runs a mask with {@link SequenceSegments} on a kernel that knows plain masks only: one plain call
 * per segment, on the segment's rows and keys cut out of the block as views, under
 * {@link Mask#segmentMask}. Segments are disjoint in rows and in keys, so the calls write disjoint
 * parts of the results; the rows and keys outside every segment are filled here (out 0, lse -inf;
 * gradients 0 unless accumulating, when they are left as they are).
 */
public final class SegmentedAttention {

    /** Fills a tensor with one value (on the kernel's device, in its stream order). */
    @FunctionalInterface
    public interface Fill {
        void fill(Tensor t, float value);
    }

    private SegmentedAttention() {
    }

    /** Checks each segment's plain call, and that the segments fit the block. */
    public static void validateForward(AttentionKernel plain, AttentionShapes block, DType dtype, Mask mask) {
        validate(block, mask, (shapes, segmentMask) -> plain.validateForward(shapes, dtype, segmentMask));
    }

    /** As {@link #validateForward}, for the backward. */
    public static void validateBackward(AttentionKernel plain, AttentionShapes block, DType dtype, Mask mask) {
        validate(block, mask, (shapes, segmentMask) -> plain.validateBackward(shapes, dtype, segmentMask));
    }

    private static void validate(AttentionShapes block, Mask mask, BiConsumer<AttentionShapes, Mask> check) {
        SequenceSegments seg = mask.segments();
        seg.requireWithin(block.seqQ(), block.seqKv());
        for (int i = 0; i < seg.count(); i++) {
            check.accept(segmentShapes(block, seg, i), mask.segmentMask(i));
        }
    }

    public static void forward(AttentionKernel plain, Tensor q, Tensor k, Tensor v, Mask mask, float scale,
                               Tensor out, Tensor lse, Fill fill) {
        AttentionShapes sh = AttentionShapes.ofForward(q, k, v, out, lse);
        SequenceSegments seg = mask.segments();
        seg.requireWithin(sh.seqQ(), sh.seqKv());
        long row = 0;
        for (int i = 0; i < seg.count(); i++) {
            fillRows(out, lse, row, seg.queryStart(i), fill);
            long qs = seg.queryStart(i), ql = seg.queryLength(i), ks = seg.keyStart(i), kl = seg.keyLength(i);
            plain.forward(q.slice(1, qs, ql), k.slice(1, ks, kl), v.slice(1, ks, kl), mask.segmentMask(i), scale,
                    out.slice(1, qs, ql), lse.slice(2, qs, ql));
            row = seg.queryEnd(i);
        }
        fillRows(out, lse, row, sh.seqQ(), fill);
    }

    public static void backward(AttentionKernel plain, Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout,
                                Tensor lse, Mask mask, float scale, Tensor dq, Tensor dk, Tensor dv,
                                boolean accumulate, Fill fill) {
        AttentionShapes sh = AttentionShapes.ofBackward(q, k, v, out, dout, lse, dq, dk, dv);
        SequenceSegments seg = mask.segments();
        seg.requireWithin(sh.seqQ(), sh.seqKv());
        long row = 0;
        long key = 0;
        for (int i = 0; i < seg.count(); i++) {
            long qs = seg.queryStart(i), ql = seg.queryLength(i), ks = seg.keyStart(i), kl = seg.keyLength(i);
            if (!accumulate) {
                zero(dq, row, qs, fill);
                zero(dk, key, ks, fill);
                zero(dv, key, ks, fill);
            }
            plain.backward(q.slice(1, qs, ql), k.slice(1, ks, kl), v.slice(1, ks, kl), out.slice(1, qs, ql),
                    dout.slice(1, qs, ql), lse.slice(2, qs, ql), mask.segmentMask(i), scale, dq.slice(1, qs, ql),
                    dk.slice(1, ks, kl), dv.slice(1, ks, kl), accumulate);
            row = seg.queryEnd(i);
            key = seg.keyEnd(i);
        }
        if (!accumulate) {
            zero(dq, row, sh.seqQ(), fill);
            zero(dk, key, sh.seqKv(), fill);
            zero(dv, key, sh.seqKv(), fill);
        }
    }

    private static AttentionShapes segmentShapes(AttentionShapes block, SequenceSegments seg, int i) {
        return new AttentionShapes(block.batch(), seg.queryLength(i), seg.keyLength(i), block.heads(),
                block.kvHeads(), block.headDim());
    }

    /** Rows [from, to) see no key: out 0, lse -inf. */
    private static void fillRows(Tensor out, Tensor lse, long from, long to, Fill fill) {
        if (to > from) {
            fill.fill(out.slice(1, from, to - from), 0f);
            fill.fill(lse.slice(2, from, to - from), Float.NEGATIVE_INFINITY);
        }
    }

    private static void zero(Tensor bshd, long from, long to, Fill fill) {
        if (to > from) {
            fill.fill(bshd.slice(1, from, to - from), 0f);
        }
    }
}
