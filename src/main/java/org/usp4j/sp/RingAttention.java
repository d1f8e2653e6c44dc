package org.usp4j.sp;

import java.util.EnumSet;
import java.util.List;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.Transfer;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Ring attention over a group of R ranks (RingAttention, Liu et al.). Ring rank g keeps its query block; at step
 * t it holds the K/V block of ring rank (g - t) mod R, passes it on to g + 1 and receives the next one
 * from g - 1 while it computes (two receive buffers take turns). {@link RingStep} says which rows attend
 * at each step. Partial outputs fold into float32 accumulators through {@link Backend#mergeAttention}.
 *
 * <p>Backward, from the final out and lse (exact, because P = exp(scale q k^T - lse) then is the true
 * global softmax): dq accumulates locally in float32; the float32 dK/dV accumulator of each block
 * travels with it around the ring, every rank adds its share, and after R hops it is back at its owner.
 *
 * <p>Per rank and call, with X = b * s_block * h_kv * d elements in one K block: forward sends K and V
 * on R - 1 steps, 2 X e bytes; backward sends the same K/V plus dK and dV (float32) on R steps,
 * 2 R X 4 bytes.
 *
 * <p>Packed sequences: a step whose blocks share no sequence (or none that a row can see) does no
 * work, but its K/V block and dK/dV accumulator still travel on, because the ranks after me need them:
 * the bytes are those of plain attention.
 */
public final class RingAttention extends RingGroupAttention {

    /** {@code --ring-algo ring}: K/V blocks passed around the ring, every layout. */
    public static final RingAlgorithm ALGORITHM = RingAlgorithm.of("ring", EnumSet.allOf(SequenceLayout.class),
            true, RingAttention::new, RingAttention::forwardBytes, RingAttention::backwardBytes);

    /** p2p = 2 X e: K and V passed on at every step but the last. */
    static RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize) {
        return RankBytes.of(TrafficKind.P2P, kvPasses(block, dtype, ringSize));
    }

    /** p2p = 2 X e (K and V again) + 2 R X 4 (the float32 dK/dV accumulators, R hops home); 0 for R = 1. */
    static RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize) {
        long accumulators = ringSize > 1
                ? Math.multiplyExact(2L * ringSize * kvElements(block), (long) DType.F32.byteSize()) : 0;
        return RankBytes.of(TrafficKind.P2P, Math.addExact(kvPasses(block, dtype, ringSize), accumulators));
    }

    private static long kvPasses(AttentionShapes block, DType dtype, int ringSize) {
        return Math.multiplyExact(2L * (ringSize - 1) * kvElements(block), (long) dtype.byteSize());
    }

    public RingAttention(Communicator ring, Backend backend, AttentionOptions options) {
        super("ring attention", ring, backend, options);
    }

    /** X = b * s_block * h_kv * d: the elements of one K (or V) block. */
    static long kvElements(AttentionShapes block) {
        return Math.multiplyExact(Math.multiplyExact(block.batch(), block.seqKv()),
                Math.multiplyExact(block.kvHeads(), block.headDim()));
    }

    @Override
    public Forward forward(Tensor q, Tensor k, Tensor v, SequenceBoundaries sequences) {
        AttentionShapes sh = checkInputs(q, k, v, sequences);
        PackedRingBlocks blocks = blocks(sh, sequences);
        int size = ring.size();
        int me = ring.rank();
        long rows = sh.seqQ();
        float scale = options.scale(sh.headDim());
        AttentionKernel kernel = backend.kernel();
        TensorAllocator saved = backend.newAllocator();
        try (TransferScope scratch = new TransferScope(backend.newAllocator())) {
            Tensor out = scratch.allocate(DType.F32, q.shape());
            Tensor lse = saved.allocate(DType.F32, sh.batch(), sh.heads(), rows);
            Tensor blockOut = size > 1 ? scratch.allocate(DType.F32, q.shape()) : null;
            Tensor blockLse = size > 1 ? scratch.allocate(DType.F32, lse.shape()) : null;
            KvRotation kv = new KvRotation(k, v, scratch);
            for (int step = 0; step < size; step++) {
                int owner = Math.floorMod(me - step, size);
                Transfer next = kv.passOn(step);
                RingStep plan = RingStep.plan(options, me, owner, rows, blocks);
                if (step == 0) {
                    // My own block comes first and covers every row: it initialises the accumulators.
                    kernel.forward(q, kv.k(), kv.v(), plan.mask(), scale, out, lse);
                } else if (!plan.skip()) {
                    Tensor partOut = plan.queries(blockOut);
                    Tensor partLse = plan.queryLse(blockLse);
                    kernel.forward(plan.queries(q), plan.keys(kv.k()), plan.keys(kv.v()), plan.mask(), scale,
                            partOut, partLse);
                    backend.mergeAttention(plan.queries(out), plan.queryLse(lse), partOut, partLse);
                }
                kv.receive(next);
            }
            Tensor result = saved.allocate(q.dtype(), q.shape());
            backend.copy(out, result);
            return new RingForward(saved, sh, blocks, q, k, v, result, lse);
        } catch (RuntimeException | Error e) {
            saved.close();
            throw e;
        }
    }

    @Override
    public Gradients backward(Forward saved, Tensor dout) {
        if (!(saved instanceof RingForward f) || f.owner() != this) {
            throw new IllegalArgumentException("backward needs a Forward returned by this RingAttention, got " + saved);
        }
        f.requireOpen();
        f.shapes().requireQueryShaped("dout", dout);
        validateSteps(f.shapes(), f.q().dtype(), f.blocks, true);
        int size = ring.size();
        int me = ring.rank();
        int right = (me + 1) % size;
        int left = (me + size - 1) % size;
        long rows = f.shapes().seqQ();
        float scale = options.scale(f.shapes().headDim());
        AttentionKernel kernel = backend.kernel();
        try (TransferScope scratch = new TransferScope(backend.newAllocator())) {
            Tensor dq = scratch.allocate(DType.F32, f.q().shape());
            backend.fill(dq, 0f);
            long[] kvShape = f.k.shape();
            // Two float32 dK/dV accumulators take turns travelling; a third holds each step's own share.
            Tensor[] first = {scratch.allocate(DType.F32, kvShape), scratch.allocate(DType.F32, kvShape)};
            Tensor[] second = size > 1 ? new Tensor[] {scratch.allocate(DType.F32, kvShape),
                    scratch.allocate(DType.F32, kvShape)} : null;
            Tensor[] share = size > 1 ? new Tensor[] {scratch.allocate(DType.F32, kvShape),
                    scratch.allocate(DType.F32, kvShape)} : null;
            KvRotation kv = new KvRotation(f.k, f.v, scratch);
            Tensor[] held = null;     // the accumulator of the block held this step
            Tensor[] incoming = null; // where the next block's accumulator is being received
            Transfer accumulators = null;
            for (int step = 0; step < size; step++) {
                int owner = Math.floorMod(me - step, size);
                Transfer next = kv.passOn(step);
                RingStep plan = RingStep.plan(options, me, owner, rows, f.blocks);
                Tensor[] target = step == 0 ? first : share;
                if (!plan.skip()) {
                    backend.fill(plan.keys(target[0]), 0f);
                    backend.fill(plan.keys(target[1]), 0f);
                    kernel.backward(plan.queries(f.q()), plan.keys(kv.k()), plan.keys(kv.v()), plan.queries(f.out()),
                            plan.queries(dout), plan.queryLse(f.lse()), plan.mask(), scale,
                            plan.queries(dq), plan.keys(target[0]), plan.keys(target[1]), true);
                }
                if (step == 0) {
                    held = first;
                } else {
                    accumulators.await(); // the held block's accumulator, with the shares of the ranks before me
                    held = incoming;
                    if (!plan.skip()) {
                        backend.add(plan.keys(held[0]), plan.keys(share[0]));
                        backend.add(plan.keys(held[1]), plan.keys(share[1]));
                    }
                }
                if (size > 1) {
                    incoming = held == first ? second : first;
                    accumulators = scratch.track(ring.sendRecv(List.of(held[0], held[1]), right,
                            List.of(incoming[0], incoming[1]), left));
                }
                kv.receive(next);
            }
            Tensor[] mine = held;
            if (size > 1) {
                accumulators.await(); // after R hops my own block's accumulator is home, complete
                mine = incoming;
            }
            Tensor dqOut = f.saved().allocate(f.q().dtype(), f.q().shape());
            Tensor dkOut = f.saved().allocate(f.k.dtype(), kvShape);
            Tensor dvOut = f.saved().allocate(f.v.dtype(), kvShape);
            backend.copy(dq, dqOut);
            backend.copy(mine[0], dkOut);
            backend.copy(mine[1], dvOut);
            return new Gradients(dqOut, dkOut, dvOut);
        }
    }

    private AttentionShapes checkInputs(Tensor q, Tensor k, Tensor v, SequenceBoundaries sequences) {
        AttentionShapes sh = AttentionShapes.of(q, k, v);
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("q, k and v must have one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        validate(sh, q.dtype(), sequences);
        return sh;
    }

    /**
     * The K/V block this rank holds and the two buffers that take turns receiving the next one: a buffer
     * is refilled only after the step that computed on it and sent it has awaited its transfer.
     */
    private final class KvRotation {
        private final TransferScope scratch;
        private final Tensor[][] buffers = new Tensor[2][];
        private int heldBuffer = -1; // -1: the caller's own k and v
        private Tensor k;
        private Tensor v;

        KvRotation(Tensor k, Tensor v, TransferScope scratch) {
            this.scratch = scratch;
            this.k = k;
            this.v = v;
            if (ring.size() > 1 && (!k.isContiguous() || !v.isContiguous())) {
                Tensor[] b = buffer(0);
                backend.copy(k, b[0]);
                backend.copy(v, b[1]);
                this.k = b[0];
                this.v = b[1];
                heldBuffer = 0;
            }
        }

        Tensor k() {
            return k;
        }

        Tensor v() {
            return v;
        }

        /** Starts passing the held block to the right neighbour; null at the last step (nothing left to send). */
        Transfer passOn(int step) {
            int size = ring.size();
            if (step >= size - 1) {
                return null;
            }
            Tensor[] into = buffer(heldBuffer == 0 ? 1 : 0);
            return scratch.track(ring.sendRecv(List.of(k, v), (ring.rank() + 1) % size, List.of(into[0], into[1]),
                    (ring.rank() + size - 1) % size));
        }

        /** Waits for the block started by {@link #passOn} and holds it from now on. */
        void receive(Transfer transfer) {
            if (transfer == null) {
                return;
            }
            transfer.await();
            heldBuffer = heldBuffer == 0 ? 1 : 0;
            k = buffers[heldBuffer][0];
            v = buffers[heldBuffer][1];
        }

        private Tensor[] buffer(int i) {
            if (buffers[i] == null) {
                buffers[i] = new Tensor[] {scratch.allocate(k.dtype(), k.shape()), scratch.allocate(v.dtype(), v.shape())};
            }
            return buffers[i];
        }
    }

    /** What the backward needs: the local q, k, v (referenced), the final out (input dtype) and lse. */
    private final class RingForward extends SavedForward {
        private final PackedRingBlocks blocks; // null for one sequence
        private final Tensor k;
        private final Tensor v;

        RingForward(TensorAllocator saved, AttentionShapes shapes, PackedRingBlocks blocks, Tensor q, Tensor k,
                    Tensor v, Tensor out, Tensor lse) {
            super("ring", saved, shapes, q, out, lse);
            this.blocks = blocks;
            this.k = k;
            this.v = v;
        }

        RingAttention owner() {
            return RingAttention.this;
        }
    }
}
