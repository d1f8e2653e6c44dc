package org.usp4j.kernel;

import java.util.Arrays;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One device's linear attention over one block of a self-attention (queries and keys at the same n
 * positions), per query head with KV head {@code i / (h / h_kv)} as for softmax attention:
 * out_i = scale * sum_j w(i, j) (q_i . k_j) v_j with the weights of a {@link LinearMask}. No softmax,
 * no normalisation, no feature map (callers apply their own first), no lse.
 *
 * <p>The block's link to the rest of the sequence is a pair of d x d "memory states" per KV head, float32
 * [b, h_kv, d, d], which is what makes the sequence-parallel exchange independent of the sequence length
 * (LASP-2). With G the decay (1 when not causal) and positions 0 .. n-1 of the block:
 * <ul>
 *   <li>{@link #keyValueState}: S[x][y] = sum_j G^(n-1-j) k_j[x] v_j[y], this block's keys and values as
 *       seen from its last position (non-causal: the plain K^T V);</li>
 *   <li>{@link #queryGradientState}: D[x][y] = sum over the KV head's query heads of
 *       sum_i G^i q_i[x] do_i[y], its queries' gradients as seen from its first position;</li>
 *   <li>an earlier state P (the keys before the block, seen from the position before it; non-causal: all
 *       keys outside it) adds scale * G^(i+1) q_i^T P to out_i, and its share to dq;</li>
 *   <li>a later gradient state L (the queries after the block, seen from the position after it;
 *       non-causal: all queries outside it) adds scale * G^(n-j) L v_j to dk_j and
 *       scale * G^(n-j) L^T k_j to dv_j.</li>
 * </ul>
 * A null state is zero. q, out, dout, dq are [b, n, h, d]; k, v, dk, dv are [b, n, h_kv, d]; head_dim
 * contiguous, other strides free.
 */
public interface LinearAttentionKernel {

    /** out = the block's linear attention plus the earlier keys' share through {@code earlierState}. */
    void forward(Tensor q, Tensor k, Tensor v, LinearMask mask, float scale, Tensor earlierState, Tensor out);

    /** state = S of this block's keys and values (see the class comment). */
    void keyValueState(Tensor k, Tensor v, LinearMask mask, Tensor state);

    /** state = D of this block's queries and upstream gradients (see the class comment). */
    void queryGradientState(Tensor q, Tensor dout, LinearMask mask, Tensor state);

    /** dq, dk, dv of {@link #forward}, with the earlier state's share in dq and the later one's in dk, dv. */
    void backward(Tensor q, Tensor k, Tensor v, Tensor dout, LinearMask mask, float scale, Tensor earlierState,
                  Tensor laterGradientState, Tensor dq, Tensor dk, Tensor dv);

    /** dst += factor * src, for states of one shape: how strategies combine gathered states. */
    void addState(Tensor dst, Tensor src, float factor);

    /** The shape of a state for a block of these shapes: [b, h_kv, d, d]. */
    static long[] stateShape(AttentionShapes block) {
        return new long[] {block.batch(), block.kvHeads(), block.headDim(), block.headDim()};
    }

    /** The block's shapes from q, k, v, checked for self-attention (one length for queries and keys). */
    static AttentionShapes shapes(Tensor q, Tensor k, Tensor v) {
        AttentionShapes sh = AttentionShapes.of(q, k, v);
        if (sh.seqQ() != sh.seqKv()) {
            throw new IllegalArgumentException("linear attention is over one sequence: q has " + sh.seqQ()
                    + " rows but k and v have " + sh.seqKv());
        }
        return sh;
    }

    /** Checks that {@code state} (when not null) is a float32 [b, h_kv, d, d] state for this block. */
    static void requireState(String name, AttentionShapes block, Tensor state) {
        if (state == null) {
            return;
        }
        long[] expected = stateShape(block);
        if (!Arrays.equals(state.shape(), expected) || state.dtype() != DType.F32) {
            throw new IllegalArgumentException(name + " must be F32 " + Arrays.toString(expected) + ", got "
                    + state.describe());
        }
        if (state.size(3) > 1 && state.stride(3) != 1) {
            throw new IllegalArgumentException(name + " must have contiguous rows, got strides "
                    + Arrays.toString(state.strides()));
        }
    }
}
