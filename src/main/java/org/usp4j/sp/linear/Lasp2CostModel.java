package org.usp4j.sp.linear;

import org.usp4j.sp.CostModel;
import org.usp4j.sp.Mesh;
import org.usp4j.sp.UlyssesAllToAll;
import org.usp4j.tensor.DType;

/**
 * Bytes one rank sends in one LASP-2 pass inside Ulysses (every rank sends the same), exactly what the
 * communicators count. With h_kv' = max(h_kv, U) (the KV heads the Ulysses exchange carries):
 * <ul>
 *   <li>all-to-all: the Ulysses exchange, as for softmax USP ({@link CostModel}): q, k, v out and the
 *       output back (forward), dout out and dq, dk, dv back (backward);</li>
 *   <li>all-gather: (R-1) * b * (h_kv'/U) * d * d * 4, one float32 state per KV head from every other
 *       ring rank, in the forward and again in the backward; for MHA (R-1) (h/U) d^2 4 per batch row,
 *       independent of the sequence length;</li>
 *   <li>no p2p.</li>
 * </ul>
 */
public final class Lasp2CostModel {

    private Lasp2CostModel() {
    }

    /** The forward's bytes per rank for q [b, S, h, d], k and v [b, S, h_kv, d] over {@code mesh}. */
    public static CostModel.RankBytes forward(long batch, long seqLen, long heads, long kvHeads, long headDim,
                                              DType dtype, Mesh mesh) {
        long allToAll = CostModel.forward(batch, seqLen, heads, kvHeads, headDim, dtype, mesh).allToAll();
        return new CostModel.RankBytes(allToAll, 0, states(batch, kvHeads, headDim, mesh));
    }

    /** The backward's bytes per rank. */
    public static CostModel.RankBytes backward(long batch, long seqLen, long heads, long kvHeads, long headDim,
                                               DType dtype, Mesh mesh) {
        long allToAll = CostModel.backward(batch, seqLen, heads, kvHeads, headDim, dtype, mesh).allToAll();
        return new CostModel.RankBytes(allToAll, 0, states(batch, kvHeads, headDim, mesh));
    }

    /** b (h_kv'/U) d^2 float32 values. */
    private static long states(long batch, long kvHeads, long headDim, Mesh mesh) {
        int u = mesh.ulysses();
        long headsPerRank = UlyssesAllToAll.exchangedKvHeads(kvHeads, u) / u;
        long perState = Math.multiplyExact(Math.multiplyExact(headDim, headDim), (long) DType.F32.byteSize());
        return Math.multiplyExact(Math.multiplyExact((long) mesh.ring() - 1, batch),
                Math.multiplyExact(headsPerRank, perState));
    }
}
