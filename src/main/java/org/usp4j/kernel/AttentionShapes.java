package org.usp4j.kernel;

import java.util.Arrays;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The dimensions of one attention call, read from q [b, s_q, h, d] and k, v [b, s_kv, h_kv, d], with
 * every consistency rule checked. Query head i uses KV head {@code i / (h / h_kv)}.
 */
public record AttentionShapes(long batch, long seqQ, long seqKv, long heads, long kvHeads, long headDim) {

    public static AttentionShapes of(Tensor q, Tensor k, Tensor v) {
        requireRank("q", q, 4);
        requireRank("k", k, 4);
        requireRank("v", v, 4);
        if (!k.sameShape(v)) {
            throw new IllegalArgumentException("k " + Arrays.toString(k.shape()) + " and v "
                    + Arrays.toString(v.shape()) + " must have the same shape");
        }
        if (q.size(0) != k.size(0)) {
            throw new IllegalArgumentException("batch of q (" + q.size(0) + ") and k (" + k.size(0) + ") differ");
        }
        if (q.size(3) != k.size(3)) {
            throw new IllegalArgumentException("head_dim of q (" + q.size(3) + ") and k (" + k.size(3) + ") differ");
        }
        long h = q.size(2);
        long hkv = k.size(2);
        if (hkv == 0 || h % hkv != 0) {
            throw new IllegalArgumentException("query heads (" + h + ") must be a multiple of KV heads (" + hkv + ")");
        }
        for (Tensor t : new Tensor[] {q, k, v}) {
            if (t.size(3) > 1 && t.stride(3) != 1) {
                throw new IllegalArgumentException("head_dim must be contiguous (stride 1), got strides "
                        + Arrays.toString(t.strides()));
            }
        }
        return new AttentionShapes(q.size(0), q.size(1), k.size(1), h, hkv, q.size(3));
    }

    /** The shapes of a {@link AttentionKernel#forward} call, with out and lse checked against them. */
    public static AttentionShapes ofForward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse) {
        AttentionShapes sh = of(q, k, v);
        sh.requireQueryShaped("out", out);
        sh.requireLse("lse", lse);
        return sh;
    }

    /** The shapes of a {@link AttentionKernel#backward} call, with every other argument checked against them. */
    public static AttentionShapes ofBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse,
                                             Tensor dq, Tensor dk, Tensor dv) {
        AttentionShapes sh = of(q, k, v);
        sh.requireQueryShaped("out", out);
        sh.requireQueryShaped("dout", dout);
        sh.requireLse("lse", lse);
        sh.requireQueryShaped("dq", dq);
        sh.requireKvShaped("dk", dk);
        sh.requireKvShaped("dv", dv);
        return sh;
    }

    /** Query heads per KV head. */
    public long groupSize() {
        return heads / kvHeads;
    }

    /** Checks that {@code t} is [b, s_q, h, d] (out, dout, dq). */
    public void requireQueryShaped(String name, Tensor t) {
        requireShape(name, t, batch, seqQ, heads, headDim);
    }

    /** Checks that {@code t} is [b, s_kv, h_kv, d] (dk, dv). */
    public void requireKvShaped(String name, Tensor t) {
        requireShape(name, t, batch, seqKv, kvHeads, headDim);
    }

    /** Checks that {@code t} is a float32 [b, h, s_q] log-sum-exp. */
    public void requireLse(String name, Tensor t) {
        requireShape(name, t, batch, heads, seqQ);
        if (t.dtype() != DType.F32) {
            throw new IllegalArgumentException(name + " must be F32, got " + t.dtype());
        }
    }

    private static void requireRank(String name, Tensor t, int rank) {
        if (t.rank() != rank) {
            throw new IllegalArgumentException(name + " must have rank " + rank + " [b, s, h, d], got shape "
                    + Arrays.toString(t.shape()));
        }
    }

    private static void requireShape(String name, Tensor t, long... expected) {
        if (!Arrays.equals(t.shape(), expected)) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(t.shape()) + ", expected "
                    + Arrays.toString(expected));
        }
    }
}
