package org.usp4j.sp;

import java.util.Objects;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The Ulysses exchange over a group of U ranks (DeepSpeed-Ulysses). Forward: [b, s, h, d] (my sequence
 * piece, all heads) becomes [b, U s, h/U, d] (the group's sequence, my head slice): the slice of heads
 * [j h/U, (j+1) h/U) goes to peer j, and the pieces received are concatenated along the sequence in peer
 * order. Back: the reverse exchange.
 *
 * <p>KV heads: when h_kv < U (and U % h_kv == 0) each KV head is replicated r = U / h_kv times before the
 * exchange, so rank u receives original head u / r, which is the KV head of all its query heads; in the
 * backward the r replicas' gradients are summed (in float32) into the original head.
 *
 * <p>Each exchange is one strided copy into a contiguous send buffer (the slots [U, b, s, h/U, d] are a
 * view of the input), one all-to-all, and one strided copy out; no per-element work in Java here.
 */
public final class UlyssesAllToAll {

    private final Communicator group;
    private final Backend backend;

    public UlyssesAllToAll(Communicator group, Backend backend) {
        this.group = Objects.requireNonNull(group, "group");
        this.backend = Objects.requireNonNull(backend, "backend");
    }

    /** U, the group size. */
    public int degree() {
        return group.size();
    }

    /** Throws unless h % U == 0 and (h_kv % U == 0 or U % h_kv == 0). */
    public static void validateHeads(long heads, long kvHeads, int degree) {
        if (heads % degree != 0) {
            throw new IllegalArgumentException("query heads h = " + heads + " are not divisible by the Ulysses degree U = "
                    + degree);
        }
        if (kvHeads % degree != 0 && degree % kvHeads != 0) {
            throw new IllegalArgumentException("KV heads h_kv = " + kvHeads + " must be a multiple of the Ulysses degree U = "
                    + degree + " or divide it (then each KV head is replicated U / h_kv times)");
        }
    }

    /**
     * Bytes one rank sends through its Ulysses exchanges in one pass (forward: q, k, v out and the output
     * back; backward: dout out and dq, dk, dv back, the same volume): (U-1)/U * b * s_loc * d * e *
     * (2h + 2h_kv'), with s_loc = S/P and h_kv' the {@link #exchangedKvHeads}.
     */
    public static RankBytes allToAllBytes(AttentionShapes local, DType dtype, int degree) {
        validateHeads(local.heads(), local.kvHeads(), degree);
        long hkvX = exchangedKvHeads(local.kvHeads(), degree);
        // Each tensor sends U-1 of its U head slices of b s_loc (heads/U) d elements.
        long perHead = Math.multiplyExact(Math.multiplyExact(local.batch(), local.seqQ()),
                Math.multiplyExact(local.headDim(), (long) dtype.byteSize()));
        return RankBytes.of(TrafficKind.ALL_TO_ALL,
                Math.multiplyExact((degree - 1) * perHead, 2 * (local.heads() / degree) + 2 * (hkvX / degree)));
    }

    /** KV heads that travel through the exchange: h_kv, or U when h_kv < U (replicated). */
    public static long exchangedKvHeads(long kvHeads, int degree) {
        return Math.max(kvHeads, degree);
    }

    /** [b, s, h, d] -> [b, U s, h/U, d], allocated in {@code into} (or {@code x} itself when U == 1). */
    public Tensor scatterHeads(Tensor x, TensorAllocator into, TensorAllocator scratch) {
        int u = degree();
        if (u == 1) {
            return x;
        }
        long b = x.size(0), s = x.size(1), h = x.size(2), d = x.size(3);
        validateHeads(h, h, u);
        long hu = h / u;
        // Slot j = heads [j hu, (j+1) hu) of x, as a strided view [U, b, s, hu, d].
        Tensor slots = x.withGeometry(new long[] {u, b, s, hu, d},
                new long[] {hu * x.stride(2), x.stride(0), x.stride(1), x.stride(2), x.stride(3)}, x.offset());
        return sequenceFromSlots(pack(slots, scratch), into, scratch);
    }

    /**
     * K or V: [b, s, h_kv, d] -> [b, U s, max(h_kv, U)/U, d]; with h_kv < U, replica t of head i is
     * exchanged head i r + t.
     */
    public Tensor scatterKvHeads(Tensor kv, TensorAllocator into, TensorAllocator scratch) {
        int u = degree();
        long hkv = kv.size(2);
        if (u == 1 || hkv >= u) {
            return scatterHeads(kv, into, scratch);
        }
        validateHeads(u, hkv, u);
        long b = kv.size(0), s = kv.size(1), d = kv.size(3);
        long r = u / hkv;
        // [h_kv, r, b, s, 1, d] with stride 0 along the replicas: slot i r + t reads head i.
        Tensor replicated = kv.withGeometry(new long[] {hkv, r, b, s, 1, d},
                new long[] {kv.stride(2), 0, kv.stride(0), kv.stride(1), kv.stride(2), kv.stride(3)}, kv.offset());
        return sequenceFromSlots(pack(replicated, scratch).view(u, b, s, 1, d), into, scratch);
    }

    /** The reverse of {@link #scatterHeads}: [b, U s, h/U, d] -> [b, s, h, d]. */
    public Tensor gatherHeads(Tensor y, TensorAllocator into, TensorAllocator scratch) {
        int u = degree();
        if (u == 1) {
            return y;
        }
        long b = y.size(0), hu = y.size(2), d = y.size(3);
        if (y.size(1) % u != 0) {
            throw new IllegalArgumentException("sequence " + y.size(1) + " of " + y.describe()
                    + " does not split into U = " + u + " pieces");
        }
        long s = y.size(1) / u;
        // Slot i = sequence piece i of y, as a strided view [U, b, s, hu, d].
        Tensor slots = y.withGeometry(new long[] {u, b, s, hu, d},
                new long[] {s * y.stride(1), y.stride(0), y.stride(1), y.stride(2), y.stride(3)}, y.offset());
        Tensor send = pack(slots, scratch);
        Tensor recv = scratch.allocate(y.dtype(), u, b, s, hu, d);
        group.allToAll(send, recv);
        // Received slot j is head group j of my piece: heads [j hu, (j+1) hu) of [b, s, h, d].
        Tensor out = into.allocate(y.dtype(), b, s, u * hu, d);
        backend.copy(recv, out.withGeometry(new long[] {u, b, s, hu, d},
                new long[] {hu * d, s * u * hu * d, u * hu * d, d, 1}, out.offset()));
        return out;
    }

    /**
     * The reverse of {@link #scatterKvHeads} for gradients: [b, U s, max(h_kv, U)/U, d] -> [b, s, h_kv, d],
     * summing the replicas of each KV head when h_kv < U.
     */
    public Tensor gatherKvHeads(Tensor dkv, long kvHeads, TensorAllocator into, TensorAllocator scratch) {
        int u = degree();
        if (u == 1 || kvHeads >= u) {
            return gatherHeads(dkv, into, scratch);
        }
        Tensor expanded = gatherHeads(dkv, scratch, scratch); // [b, s, U, d]
        long b = expanded.size(0), s = expanded.size(1), d = expanded.size(3);
        long r = u / kvHeads;
        Tensor sum = scratch.allocate(DType.F32, b, s, kvHeads, d);
        for (long t = 0; t < r; t++) {
            // Replica t of every head: [b, s, h_kv, d] with head stride r d.
            Tensor replica = expanded.withGeometry(new long[] {b, s, kvHeads, d},
                    new long[] {s * u * d, u * d, r * d, 1}, expanded.offset() + t * d);
            if (t == 0) {
                backend.copy(replica, sum);
            } else {
                backend.add(sum, replica);
            }
        }
        Tensor out = into.allocate(dkv.dtype(), b, s, kvHeads, d);
        backend.copy(sum, out);
        return out;
    }

    /** The slots as a contiguous send buffer (the view itself when it already is one). */
    private Tensor pack(Tensor slots, TensorAllocator scratch) {
        if (slots.isContiguous()) {
            return slots;
        }
        Tensor send = scratch.allocate(slots.dtype(), slots.shape());
        backend.copy(slots, send);
        return send;
    }

    /** All-to-all of send [U, b, s, hu, d]; received slot i is sequence piece i of [b, U s, hu, d]. */
    private Tensor sequenceFromSlots(Tensor send, TensorAllocator into, TensorAllocator scratch) {
        int u = degree();
        long b = send.size(1), s = send.size(2), hu = send.size(3), d = send.size(4);
        Tensor out = into.allocate(send.dtype(), b, u * s, hu, d);
        if (b == 1) {
            // [U, 1, s, hu, d] and [1, U s, hu, d] have the same memory order: receive in place.
            group.allToAll(send, out.view(u, 1, s, hu, d));
            return out;
        }
        Tensor recv = scratch.allocate(send.dtype(), u, b, s, hu, d);
        group.allToAll(send, recv);
        backend.copy(recv, out.view(b, u, s, hu, d).transpose(0, 1));
        return out;
    }
}
