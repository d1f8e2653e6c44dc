package org.usp4j.sp;

import java.util.EnumSet;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * All-gather context parallelism over a group of R ranks (Llama 3's context parallelism): one
 * all-gather brings every ring rank's K/V block to every rank, which then attends its queries to each
 * gathered block under the same {@link RingStep} plan the ring uses (so every layout's masks are the
 * ring's), merging the partial results with their log-sum-exp. There is nothing to overlap and no
 * hop-by-hop accumulation, which makes it simpler and numerically steadier than the ring, for R times
 * the K/V memory.
 *
 * <p>Backward: the gathered K/V are kept from the forward; each rank computes float32 dK/dV for every
 * gathered block, and one reduce-scatter sums them onto their owners.
 *
 * <p>Per rank and call, with X = b * s_block * h_kv * d: forward all-gathers K and V, 2 X e bytes;
 * backward reduce-scatters the float32 dK and dV, 2 X 4 bytes. Packed sequences skip the blocks
 * that share no sequence with mine, but every block is gathered (and every dK/dV reduce-scattered)
 * as for plain attention: the same bytes.
 */
public final class AllGatherAttention extends RingGroupAttention {

    /** {@code --ring-algo allgather}. */
    public static final RingAlgorithm ALGORITHM = RingAlgorithm.of("allgather",
            EnumSet.allOf(SequenceLayout.class), true, AllGatherAttention::new, AllGatherAttention::forwardBytes,
            AllGatherAttention::backwardBytes);

    /** all_gather = 2 X e. */
    static RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize) {
        return RankBytes.of(TrafficKind.ALL_GATHER,
                Math.multiplyExact(2L * (ringSize - 1) * RingAttention.kvElements(block), (long) dtype.byteSize()));
    }

    /** reduce_scatter = 2 X 4 (float32 dK and dV). */
    static RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize) {
        return RankBytes.of(TrafficKind.REDUCE_SCATTER,
                Math.multiplyExact(2L * (ringSize - 1) * RingAttention.kvElements(block), (long) DType.F32.byteSize()));
    }

    public AllGatherAttention(Communicator ring, Backend backend, AttentionOptions options) {
        super("all-gather attention", ring, backend, options);
    }

    @Override
    public Forward forward(Tensor q, Tensor k, Tensor v, SequenceBoundaries sequences) {
        AttentionShapes sh = AttentionShapes.of(q, k, v);
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("q, k and v must have one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        validate(sh, q.dtype(), sequences);
        PackedRingBlocks blocks = blocks(sh, sequences);
        int size = ring.size();
        int me = ring.rank();
        long rows = sh.seqQ();
        float scale = options.scale(sh.headDim());
        AttentionKernel kernel = backend.kernel();
        TensorAllocator saved = backend.newAllocator();
        try (TensorAllocator scratch = backend.newAllocator()) {
            Tensor allK = gather(k, saved, scratch);
            Tensor allV = gather(v, saved, scratch);
            Tensor out = scratch.allocate(DType.F32, q.shape());
            Tensor lse = saved.allocate(DType.F32, sh.batch(), sh.heads(), rows);
            Tensor blockOut = size > 1 ? scratch.allocate(DType.F32, q.shape()) : null;
            Tensor blockLse = size > 1 ? scratch.allocate(DType.F32, lse.shape()) : null;
            for (int t = 0; t < size; t++) {
                // The ring's order: my own block first (it covers every row and initialises the accumulators).
                int owner = Math.floorMod(me - t, size);
                RingStep plan = RingStep.plan(options, me, owner, rows, blocks);
                Tensor kj = block(allK, owner, k.shape());
                Tensor vj = block(allV, owner, v.shape());
                if (t == 0) {
                    kernel.forward(q, kj, vj, plan.mask(), scale, out, lse);
                } else if (!plan.skip()) {
                    Tensor partOut = plan.queries(blockOut);
                    Tensor partLse = plan.queryLse(blockLse);
                    kernel.forward(plan.queries(q), plan.keys(kj), plan.keys(vj), plan.mask(), scale, partOut, partLse);
                    backend.mergeAttention(plan.queries(out), plan.queryLse(lse), partOut, partLse);
                }
            }
            Tensor result = saved.allocate(q.dtype(), q.shape());
            backend.copy(out, result);
            return new GatheredForward(saved, sh, blocks, q, allK, allV, k.shape(), result, lse);
        } catch (RuntimeException | Error e) {
            saved.close();
            throw e;
        }
    }

    @Override
    public Gradients backward(Forward saved, Tensor dout) {
        if (!(saved instanceof GatheredForward f) || f.owner() != this) {
            throw new IllegalArgumentException("backward needs a Forward returned by this AllGatherAttention, got "
                    + saved);
        }
        f.requireOpen();
        f.shapes().requireQueryShaped("dout", dout);
        RingStep.requireBlock("all-gather attention", f.shapes(), options);
        validateSteps(f.shapes(), f.out().dtype(), f.blocks, true); // before the reduce-scatter: every rank refuses alike
        int size = ring.size();
        int me = ring.rank();
        long rows = f.shapes().seqQ();
        float scale = options.scale(f.shapes().headDim());
        AttentionKernel kernel = backend.kernel();
        try (TensorAllocator scratch = backend.newAllocator()) {
            Tensor dq = scratch.allocate(DType.F32, f.q().shape());
            backend.fill(dq, 0f);
            Tensor allDk = scratch.allocate(DType.F32, f.allK.shape());
            Tensor allDv = scratch.allocate(DType.F32, f.allV.shape());
            backend.fill(allDk, 0f);
            backend.fill(allDv, 0f);
            for (int t = 0; t < size; t++) {
                int owner = Math.floorMod(me - t, size);
                RingStep plan = RingStep.plan(options, me, owner, rows, f.blocks);
                if (plan.skip()) {
                    continue;
                }
                kernel.backward(plan.queries(f.q()), plan.keys(block(f.allK, owner, f.kvShape)),
                        plan.keys(block(f.allV, owner, f.kvShape)), plan.queries(f.out()), plan.queries(dout),
                        plan.queryLse(f.lse()), plan.mask(), scale, plan.queries(dq),
                        plan.keys(block(allDk, owner, f.kvShape)), plan.keys(block(allDv, owner, f.kvShape)), true);
            }
            Tensor dk = scratch.allocate(DType.F32, f.kvShape);
            Tensor dv = scratch.allocate(DType.F32, f.kvShape);
            ring.reduceScatter(allDk, dk);
            ring.reduceScatter(allDv, dv);
            Tensor dqOut = f.saved().allocate(f.q().dtype(), f.q().shape());
            Tensor dkOut = f.saved().allocate(f.allK.dtype(), f.kvShape);
            Tensor dvOut = f.saved().allocate(f.allV.dtype(), f.kvShape);
            backend.copy(dq, dqOut);
            backend.copy(dk, dkOut);
            backend.copy(dv, dvOut);
            return new Gradients(dqOut, dkOut, dvOut);
        }
    }

    /** Every ring rank's block of {@code x}, [R, b, s, h_kv, d] in ring order, allocated in {@code into}. */
    private Tensor gather(Tensor x, TensorAllocator into, TensorAllocator scratch) {
        Tensor send = x;
        if (!x.isContiguous()) {
            send = scratch.allocate(x.dtype(), x.shape());
            backend.copy(x, send);
        }
        long[] shape = new long[x.rank() + 1];
        shape[0] = ring.size();
        System.arraycopy(x.shape(), 0, shape, 1, x.rank());
        Tensor all = into.allocate(x.dtype(), shape);
        ring.allGather(send, all);
        return all;
    }

    private static Tensor block(Tensor all, int owner, long[] shape) {
        return all.slice(0, owner, 1).view(shape);
    }

    /** What the backward needs: the local q (referenced), the gathered K/V, the final out and lse. */
    private final class GatheredForward extends SavedForward {
        private final PackedRingBlocks blocks; // null for one sequence
        private final Tensor allK;
        private final Tensor allV;
        private final long[] kvShape;

        GatheredForward(TensorAllocator saved, AttentionShapes shapes, PackedRingBlocks blocks, Tensor q, Tensor allK,
                        Tensor allV, long[] kvShape, Tensor out, Tensor lse) {
            super("all-gather", saved, shapes, q, out, lse);
            this.blocks = blocks;
            this.allK = allK;
            this.allV = allV;
            this.kvShape = kvShape.clone();
        }

        AllGatherAttention owner() {
            return AllGatherAttention.this;
        }
    }
}
