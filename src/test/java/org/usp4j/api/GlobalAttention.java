package org.usp4j.api;

import java.lang.foreign.Arena;
import org.usp4j.kernel.LinearMask;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.kernel.ReferenceLinearAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Test helpers on global host tensors: dealing a rank's rows by the public {@link SequenceLayout}, putting
 * them back, and the float64 oracles ({@link ReferenceAttention}, {@link ReferenceLinearAttention}) over the
 * whole sequence.
 */
final class GlobalAttention {

    private GlobalAttention() {
    }

    /** Rank {@code rank}'s rows of {@code global} [b, S, ...] in layout order, copied into a new tensor of {@code arena}. */
    static Tensor shard(Tensor global, SequenceLayout layout, Mesh mesh, int rank, Arena arena) {
        return rows(global, layout.globalPositions(global.size(1), mesh, rank), arena);
    }

    /** The rows at {@code positions} of {@code global} [b, S, ...], copied into a new tensor of {@code arena}. */
    static Tensor rows(Tensor global, long[] positions, Arena arena) {
        long[] shape = global.shape();
        shape[1] = positions.length;
        Tensor local = Tensor.allocate(arena, global.dtype(), shape);
        for (int i = 0; i < positions.length; i++) {
            HostTensors.copy(global.slice(1, positions[i], 1), local.slice(1, i, 1));
        }
        return local;
    }

    /** Writes rank {@code rank}'s rows {@code local} back into {@code global} at their global positions. */
    static void unshard(Tensor local, Tensor global, SequenceLayout layout, Mesh mesh, int rank) {
        long[] positions = layout.globalPositions(global.size(1), mesh, rank);
        for (int i = 0; i < positions.length; i++) {
            HostTensors.copy(local.slice(1, i, 1), global.slice(1, positions[i], 1));
        }
    }

    /** The float64 reference forward and backward over the whole sequence. */
    record Reference(Tensor out, Tensor dq, Tensor dk, Tensor dv) {
    }

    static Reference reference(Tensor q, Tensor k, Tensor v, Tensor dout, AttentionOptions options, Arena arena) {
        ReferenceAttention ref = new ReferenceAttention();
        Mask mask = options.causal() ? Mask.CAUSAL : Mask.NONE;
        float scale = (float) options.scaleFor(q.size(3));
        Tensor out = Tensor.allocate(arena, DType.F32, q.shape());
        Tensor lse = Tensor.allocate(arena, DType.F32, q.size(0), q.size(2), q.size(1));
        ref.forward(q, k, v, mask, scale, out, lse);
        Tensor dq = Tensor.allocate(arena, DType.F32, q.shape());
        Tensor dk = Tensor.allocate(arena, DType.F32, k.shape());
        Tensor dv = Tensor.allocate(arena, DType.F32, v.shape());
        ref.backward(q, k, v, out, dout, lse, mask, scale, dq, dk, dv, false);
        return new Reference(out, dq, dk, dv);
    }

    /** The float64 linear attention forward and backward over the whole sequence ({@link ReferenceLinearAttention}). */
    static Reference linearReference(Tensor q, Tensor k, Tensor v, Tensor dout, LinearAttentionOptions options,
                                     Arena arena) {
        ReferenceLinearAttention ref = new ReferenceLinearAttention();
        LinearMask mask = options.causal() ? LinearMask.causal(options.decay()) : LinearMask.NONE;
        float scale = (float) options.scale();
        Tensor out = Tensor.allocate(arena, DType.F32, q.shape());
        ref.forward(q, k, v, mask, scale, null, out);
        Tensor dq = Tensor.allocate(arena, DType.F32, q.shape());
        Tensor dk = Tensor.allocate(arena, DType.F32, k.shape());
        Tensor dv = Tensor.allocate(arena, DType.F32, v.shape());
        ref.backward(q, k, v, dout, mask, scale, null, null, dq, dk, dv);
        return new Reference(out, dq, dk, dv);
    }

    static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }
}
