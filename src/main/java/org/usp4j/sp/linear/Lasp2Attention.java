package org.usp4j.sp.linear;

import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.LinearAttentionKernel;
import org.usp4j.kernel.LinearMask;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.Forward;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.RingAlgorithm;
import org.usp4j.sp.SavedForward;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.SequenceParallelAttention;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * LASP-2 (Sun et al., "LASP-2: Rethinking Sequence Parallelism for Linear Attention and Its Hybrid")
 * on one rank of a ring group of R ranks, each holding one contiguous block of L = S/R positions
 * (ring rank g: positions [g L, (g+1) L)). Linear attention needs from the other blocks only their d x d
 * memory states, so the whole exchange of a pass is one all-gather of float32 states, of a size
 * independent of the sequence length.
 *
 * <p>Forward: S_g = this block's key-value state (decayed within the block to its last position); one
 * all-gather of every S_c; the earlier state P_g = sum_{c<g} G^((g-1-c) L) S_c (causal: the decay over
 * the blocks in between) or sum_{c != g} S_c (non-causal); then the block's own linear attention with
 * P_g. Backward: the same with the queries' gradient states D_c (decayed to each block's first
 * position), combined from the later blocks, L_g = sum_{c>g} G^((c-g-1) L) D_c (causal) or
 * sum_{c != g} D_c; P_g is kept from the forward. States are per KV head; the gradient states sum over
 * each KV head's query heads, so both passes move b h_kv d^2 float32 values per rank.
 *
 * <p>Linear attention has no lse: {@link Forward#lse()} is null.
 */
public final class Lasp2Attention implements SequenceParallelAttention {

    private final Communicator ring;
    private final Backend backend;
    private final LinearAttentionOptions options;

    public Lasp2Attention(Communicator ring, Backend backend, LinearAttentionOptions options) {
        this.ring = Objects.requireNonNull(ring, "ring");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.options = Objects.requireNonNull(options, "options");
    }

    /**
     * LASP-2 as the inner algorithm of USP for these options: named "lasp2", contiguous layout only
     * (linear attention costs the same on every block, causal or not, so there is nothing for zigzag or
     * striped to balance), and its cost model: all_gather = (R-1) b h_kv d^2 4 per ring rank and pass,
     * for the block's KV heads (h_kv'/U after the Ulysses exchange, h_kv' = max(h_kv, U)), whatever the
     * sequence length; no p2p. The instance carries the options (the decay is no part of
     * {@link AttentionOptions}); it is chosen by {@code --attention linear}, not by the softmax
     * {@code --ring-algo} registry, whose algorithms all compute softmax attention.
     */
    public static RingAlgorithm algorithm(LinearAttentionOptions options) {
        Objects.requireNonNull(options, "options");
        return new RingAlgorithm() {
            @Override
            public String name() {
                return "lasp2";
            }

            @Override
            public Set<SequenceLayout> layouts() {
                return EnumSet.of(SequenceLayout.CONTIGUOUS);
            }

            @Override
            public SequenceParallelAttention create(Communicator ring, Backend backend, AttentionOptions ignored) {
                return new Lasp2Attention(ring, backend, options);
            }

            @Override
            public RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize) {
                return RankBytes.of(TrafficKind.ALL_GATHER, stateBytes(block, ringSize));
            }

            @Override
            public RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize) {
                return RankBytes.of(TrafficKind.ALL_GATHER, stateBytes(block, ringSize));
            }

            @Override
            public String toString() {
                return "lasp2 (" + options + ")";
            }
        };
    }

    /**
     * USP with LASP-2 on {@code mesh}: what the engine runs for linear attention (Ulysses over U around
     * LASP-2 over R, the contiguous layout). Its forward's lse is null.
     */
    public static UspPlan plan(Mesh mesh, LinearAttentionOptions options) {
        return new UspPlan(mesh, layoutOptions(options), algorithm(options));
    }

    /** What the Ulysses layer and the dealing need to know: the mask's causality and the contiguous layout. */
    public static AttentionOptions layoutOptions(LinearAttentionOptions options) {
        return new AttentionOptions(options.mask().causal(), SequenceLayout.CONTIGUOUS, (double) options.scale());
    }

    /** b h_kv d^2 float32 values: one state per KV head of the block from every other ring rank. */
    private static long stateBytes(AttentionShapes block, int ringSize) {
        long perState = Math.multiplyExact(Math.multiplyExact(block.headDim(), block.headDim()),
                (long) DType.F32.byteSize());
        return Math.multiplyExact(Math.multiplyExact((long) ringSize - 1, block.batch()),
                Math.multiplyExact(block.kvHeads(), perState));
    }

    @Override
    public void validate(AttentionShapes local, DType dtype) {
        Objects.requireNonNull(dtype, "dtype");
        if (local.seqQ() != local.seqKv()) {
            throw new IllegalArgumentException("LASP-2 is self-attention: q has " + local.seqQ()
                    + " local rows but k and v have " + local.seqKv());
        }
        backend.linearKernel(); // a backend without one refuses here, before any rank talks
    }

    @Override
    public Forward forward(Tensor q, Tensor k, Tensor v) {
        AttentionShapes sh = LinearAttentionKernel.shapes(q, k, v);
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("q, k and v must have one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        validate(sh, q.dtype());
        LinearAttentionKernel kernel = backend.linearKernel();
        LinearMask mask = options.mask();
        TensorAllocator saved = backend.newAllocator();
        try (TensorAllocator scratch = backend.newAllocator()) {
            Tensor earlier = null;
            if (ring.size() > 1) {
                Tensor mine = scratch.allocate(DType.F32, LinearAttentionKernel.stateShape(sh));
                kernel.keyValueState(k, v, mask, mine);
                earlier = combine(gather(mine, scratch), sh, saved, true);
            }
            Tensor out = saved.allocate(q.dtype(), q.shape());
            kernel.forward(q, k, v, mask, options.scale(), earlier, out);
            return new Lasp2Forward(saved, sh, q, k, v, earlier, out);
        } catch (RuntimeException | Error e) {
            saved.close();
            throw e;
        }
    }

    @Override
    public Gradients backward(Forward saved, Tensor dout) {
        if (!(saved instanceof Lasp2Forward f) || f.owner() != this) {
            throw new IllegalArgumentException("backward needs a Forward returned by this Lasp2Attention, got " + saved);
        }
        f.requireOpen();
        f.shapes().requireQueryShaped("dout", dout);
        validateBackward(f.shapes(), f.out().dtype());
        LinearAttentionKernel kernel = backend.linearKernel();
        try (TensorAllocator scratch = backend.newAllocator()) {
            Tensor later = null;
            if (ring.size() > 1) {
                Tensor mine = scratch.allocate(DType.F32, LinearAttentionKernel.stateShape(f.shapes()));
                kernel.queryGradientState(f.q(), dout, options.mask(), mine);
                later = combine(gather(mine, scratch), f.shapes(), scratch, false);
            }
            Tensor dq = f.saved().allocate(f.q().dtype(), f.q().shape());
            Tensor dk = f.saved().allocate(f.k.dtype(), f.k.shape());
            Tensor dv = f.saved().allocate(f.v.dtype(), f.v.shape());
            kernel.backward(f.q(), f.k, f.v, dout, options.mask(), options.scale(), f.earlier, later, dq, dk, dv);
            return new Gradients(dq, dk, dv);
        }
    }

    /** The pass's one exchange: every ring rank's state, [R, b, h_kv, d, d] in ring order. */
    private Tensor gather(Tensor mine, TensorAllocator scratch) {
        long[] shape = mine.shape();
        long[] all = new long[shape.length + 1];
        all[0] = ring.size();
        System.arraycopy(shape, 0, all, 1, shape.length);
        Tensor gathered = scratch.allocate(DType.F32, all);
        ring.allGather(mine, gathered);
        return gathered;
    }

    /**
     * The other blocks' states as this block sees them: causal, the earlier blocks decayed to the position
     * before this block ({@code earlier}) or the later ones decayed to the position after it; non-causal,
     * the sum of every other block.
     */
    private Tensor combine(Tensor gathered, AttentionShapes block, TensorAllocator into, boolean earlier) {
        LinearAttentionKernel kernel = backend.linearKernel();
        LinearMask mask = options.mask();
        long[] stateShape = LinearAttentionKernel.stateShape(block);
        Tensor sum = into.allocate(DType.F32, stateShape);
        backend.fill(sum, 0f);
        int g = ring.rank();
        for (int c = 0; c < ring.size(); c++) {
            if (c == g || (mask.causal() && (earlier ? c > g : c < g))) {
                continue;
            }
            long between = mask.causal() ? (long) Math.abs(g - c) - 1 : 0; // whole blocks between c and g
            float factor = (float) mask.decayOver(Math.multiplyExact(between, block.seqQ()));
            if (factor != 0f) {
                kernel.addState(sum, gathered.slice(0, c, 1).view(stateShape), factor);
            }
        }
        return sum;
    }

    /** The forward's output and what the backward needs: the inputs (referenced) and the earlier state. */
    private final class Lasp2Forward extends SavedForward {
        private final Tensor k;
        private final Tensor v;
        private final Tensor earlier;

        Lasp2Forward(TensorAllocator memory, AttentionShapes shapes, Tensor q, Tensor k, Tensor v, Tensor earlier,
                     Tensor out) {
            super("LASP-2", memory, shapes, q, out, null); // linear attention has no lse
            this.k = k;
            this.v = v;
            this.earlier = earlier;
        }

        Lasp2Attention owner() {
            return Lasp2Attention.this;
        }
    }
}
