package org.usp4j.kernel;

import java.lang.foreign.Arena;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The float64 oracle for packed sequences, built without any mask segments: each sequence is cut out
 * of the packed tensors and attended on its own by {@link ReferenceAttention} under a plain mask.
 */
public record PackedReference(Tensor out, Tensor lse, Tensor dq, Tensor dk, Tensor dv) {

    /** Float32 results over q, k, v (and dout, or null for no gradients) packed by {@code sequences} (b = 1). */
    public static PackedReference of(Arena arena, Tensor q, Tensor k, Tensor v, Tensor dout,
                                     SequenceBoundaries sequences, boolean causal, float scale) {
        Tensor qf = f32(arena, q), kf = f32(arena, k), vf = f32(arena, v);
        Tensor out = Tensor.allocate(arena, DType.F32, q.shape());
        Tensor lse = Tensor.allocate(arena, DType.F32, q.size(0), q.size(2), q.size(1));
        Tensor dq = dout == null ? null : Tensor.allocate(arena, DType.F32, q.shape());
        Tensor dk = dout == null ? null : Tensor.allocate(arena, DType.F32, k.shape());
        Tensor dv = dout == null ? null : Tensor.allocate(arena, DType.F32, v.shape());
        Tensor df = dout == null ? null : f32(arena, dout);
        ReferenceAttention ref = new ReferenceAttention();
        Mask mask = causal ? Mask.CAUSAL : Mask.NONE;
        for (int i = 0; i < sequences.count(); i++) {
            long s = sequences.start(i), n = sequences.length(i);
            ref.forward(qf.slice(1, s, n), kf.slice(1, s, n), vf.slice(1, s, n), mask, scale, out.slice(1, s, n),
                    lse.slice(2, s, n));
            if (dout != null) {
                ref.backward(qf.slice(1, s, n), kf.slice(1, s, n), vf.slice(1, s, n), out.slice(1, s, n),
                        df.slice(1, s, n), lse.slice(2, s, n), mask, scale, dq.slice(1, s, n), dk.slice(1, s, n),
                        dv.slice(1, s, n), false);
            }
        }
        return new PackedReference(out, lse, dq, dk, dv);
    }

    private static Tensor f32(Arena arena, Tensor t) {
        Tensor f = Tensor.allocate(arena, DType.F32, t.shape());
        HostTensors.copy(t, f);
        return f;
    }
}
