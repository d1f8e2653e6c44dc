package org.usp4j.sp;

import java.util.EnumMap;
import java.util.Map;
import org.usp4j.comm.TrafficKind;
import org.usp4j.tensor.DType;

/**
 * Bytes one rank sends in one USP attention call (every rank sends the same), exactly what the
 * communicators count. Symbols: s_loc = S / P, e = the dtype's size, h_kv' = max(h_kv, U) (the KV heads
 * that travel through the Ulysses exchange, replicated when h_kv &lt; U).
 *
 * <p>Forward (DESIGN section 4):
 * <ul>
 *   <li>all-to-all = (U-1)/U * b * s_loc * d * e * (2h + 2h_kv'): q, k, v out and the output back;</li>
 *   <li>p2p = 2 (R-1) * b * s_loc * h_kv' * d * e: K and V passed on at every ring step but the last.</li>
 * </ul>
 * Backward (this implementation):
 * <ul>
 *   <li>all-to-all = the same as the forward: dout out, dq, dk, dv back (gradients in the input dtype);</li>
 *   <li>p2p = 2 (R-1) * b * s_loc * h_kv' * d * e (K and V again) + 2 R * b * s_loc * h_kv' * d * 4 (the
 *       float32 dK and dV accumulators, which take R hops to come home); 0 when R = 1.</li>
 * </ul>
 * Neither pass uses an all-gather.
 */
public final class CostModel {

    private CostModel() {
    }

    /** Bytes per traffic kind. */
    public record RankBytes(long allToAll, long p2p, long allGather) {

        public long get(TrafficKind kind) {
            return switch (kind) {
                case ALL_TO_ALL -> allToAll;
                case P2P -> p2p;
                case ALL_GATHER -> allGather;
            };
        }

        public long total() {
            return allToAll + p2p + allGather;
        }

        public RankBytes plus(RankBytes other) {
            return new RankBytes(allToAll + other.allToAll, p2p + other.p2p, allGather + other.allGather);
        }

        public Map<TrafficKind, Long> asMap() {
            Map<TrafficKind, Long> map = new EnumMap<>(TrafficKind.class);
            for (TrafficKind kind : TrafficKind.values()) {
                map.put(kind, get(kind));
            }
            return map;
        }
    }

    /** The forward's bytes per rank for q [b, S, h, d], k and v [b, S, h_kv, d] over {@code mesh}. */
    public static RankBytes forward(long batch, long seqLen, long heads, long kvHeads, long headDim, DType dtype,
                                    Mesh mesh) {
        Terms t = terms(batch, seqLen, heads, kvHeads, headDim, dtype, mesh);
        return new RankBytes(t.allToAll(), t.kvRing(), 0);
    }

    /** The backward's bytes per rank (see the class comment). */
    public static RankBytes backward(long batch, long seqLen, long heads, long kvHeads, long headDim, DType dtype,
                                     Mesh mesh) {
        Terms t = terms(batch, seqLen, heads, kvHeads, headDim, dtype, mesh);
        long r = mesh.ring();
        long accumulators = r > 1 ? Math.multiplyExact(2 * r * t.kvBlockElements(), (long) DType.F32.byteSize()) : 0;
        return new RankBytes(t.allToAll(), Math.addExact(t.kvRing(), accumulators), 0);
    }

    private record Terms(long allToAll, long kvRing, long kvBlockElements) {
    }

    private static Terms terms(long b, long s, long h, long hkv, long d, DType dtype, Mesh mesh) {
        if (b <= 0 || s <= 0 || h <= 0 || hkv <= 0 || d <= 0) {
            throw new IllegalArgumentException("dimensions must be positive, got b=" + b + " S=" + s + " h=" + h
                    + " h_kv=" + hkv + " d=" + d);
        }
        if (s % mesh.size() != 0) {
            throw new IllegalArgumentException("sequence length S = " + s + " is not divisible by P = " + mesh.size());
        }
        int u = mesh.ulysses();
        long r = mesh.ring();
        UlyssesAllToAll.validateHeads(h, hkv, u);
        long e = dtype.byteSize();
        long sLoc = s / mesh.size();
        long hkvX = UlyssesAllToAll.exchangedKvHeads(hkv, u);
        // Each of q, out sends U-1 of its U head slices of b s_loc (h/U) d elements; k and v likewise.
        long perHeadSlice = Math.multiplyExact(Math.multiplyExact(b, sLoc), Math.multiplyExact(d, e));
        long allToAll = Math.multiplyExact((u - 1) * perHeadSlice, 2 * (h / u) + 2 * (hkvX / u));
        // One K block after the exchange: b (U s_loc) (h_kv'/U) d = b s_loc h_kv' d elements.
        long kvBlock = Math.multiplyExact(Math.multiplyExact(b, sLoc), Math.multiplyExact(hkvX, d));
        long kvRing = Math.multiplyExact(2 * (r - 1) * kvBlock, e);
        return new Terms(allToAll, kvRing, kvBlock);
    }
}
