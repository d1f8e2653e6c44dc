package org.usp4j.bench;

/**
 * FLOPs of one attention call, counting only the (query, key) pairs the mask lets through: the forward's
 * two matmuls (q k^T and p v) cost 2 d FLOPs each per pair, 4 b h pairs d in all; the backward's five
 * (recomputed q k^T, dV, dP, dQ, dK) cost 2.5 times the forward. The same convention as
 * jmh/gpu/torch_sdpa.py, so figures from both compare directly.
 */
public final class AttentionFlops {

    private AttentionFlops() {
    }

    /**
     * Pairs a query block of {@code seqQ} rows attends in a key block of {@code seqKv} columns: all of
     * them, or under the top-left causal mask (query i sees keys j <= i) sum over i of min(i + 1, s_kv).
     */
    public static double unmaskedPairs(long seqQ, long seqKv, boolean causal) {
        if (seqQ < 0 || seqKv < 0) {
            throw new IllegalArgumentException("sequence lengths must be >= 0, got s_q=" + seqQ + " s_kv=" + seqKv);
        }
        if (!causal) {
            return (double) seqQ * seqKv;
        }
        long full = Math.min(seqQ, seqKv); // rows 0..full-1 see i + 1 keys, the rest see all s_kv
        return full * (full + 1.0) / 2 + (double) (seqQ - full) * seqKv;
    }

    /** Forward FLOPs of self-attention over a sequence of {@code seq}: 4 b h pairs d. */
    public static double forward(long batch, long heads, long seq, long headDim, boolean causal) {
        if (batch < 0 || heads < 0 || headDim < 0) {
            throw new IllegalArgumentException("dimensions must be >= 0, got b=" + batch + " h=" + heads + " d=" + headDim);
        }
        return 4.0 * batch * heads * unmaskedPairs(seq, seq, causal) * headDim;
    }

    /** Backward FLOPs: 2.5 times the forward. */
    public static double backward(long batch, long heads, long seq, long headDim, boolean causal) {
        return 2.5 * forward(batch, heads, seq, headDim, causal);
    }

    /** FLOPs of one pass ("fwd" or "bwd"). */
    public static double of(Pass pass, long batch, long heads, long seq, long headDim, boolean causal) {
        return pass == Pass.FORWARD ? forward(batch, heads, seq, headDim, causal)
                : backward(batch, heads, seq, headDim, causal);
    }
}
