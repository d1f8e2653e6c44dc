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
 * TokenRing over a group of R ranks (Wang et al., "TokenRing: An Efficient Parallelism Framework for
 * Infinite-Context LLMs via Bidirectional Communication"). K and V stay on their owner; the query block
 * travels one hop to the right per step, and the partial result of each step (block out in the input
 * dtype, float32 lse) goes back the other way, straight to the query's owner, so both directions of the
 * links carry data at once. At step t ring rank g holds the queries of ring rank o = g - t and attends
 * them to its own keys under the {@link RingStep} plan of (queries o, keys g); the owner folds every
 * partial in with {@link Backend#mergeAttention}, one step late so that the transfer overlaps the next
 * step's kernel.
 *
 * <p>Backward: K, V and their float32 gradients stay in place; the query side travels instead (q, out,
 * dO in the input dtype and the float32 lse; the kernels take out and derive D = rowsum(dO * out)
 * themselves), and each partial dQ (float32) goes back to its owner. Whether that beats moving K/V is a
 * matter of bytes: see the cost model (fewer than the ring's backward for MHA, more for narrow GQA).
 *
 * <p>Per rank and call, with Q = b s h d elements in the query block and L = b h s in its lse: forward
 * (R-1) (Q e + Q e + 4 L); backward (R-1) (3 Q e + 4 L + 4 Q). Every step sends full blocks, rows a
 * mask skips included (out 0, lse -inf), so every rank sends the same under every mask.
 */
public final class TokenRingAttention extends RingGroupAttention {

    /** {@code --ring-algo tokenring}: every layout (the ring's masks, with the roles of the ranks swapped). */
    public static final RingAlgorithm ALGORITHM = RingAlgorithm.of("tokenring",
            EnumSet.allOf(SequenceLayout.class), true, TokenRingAttention::new, TokenRingAttention::forwardBytes,
            TokenRingAttention::backwardBytes);

    /** p2p = (R-1) (2 Q e + 4 L): the query block one way, block out and lse the other. */
    static RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize) {
        long perStep = Math.addExact(Math.multiplyExact(2 * queryElements(block), (long) dtype.byteSize()),
                4 * lseElements(block));
        return RankBytes.of(TrafficKind.P2P, Math.multiplyExact(ringSize - 1L, perStep));
    }

    /** p2p = (R-1) (3 Q e + 4 L + 4 Q): q, out, dO and lse one way, the float32 partial dQ the other. */
    static RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize) {
        long perStep = Math.addExact(Math.multiplyExact(3 * queryElements(block), (long) dtype.byteSize()),
                Math.addExact(4 * lseElements(block), 4 * queryElements(block)));
        return RankBytes.of(TrafficKind.P2P, Math.multiplyExact(ringSize - 1L, perStep));
    }

    public TokenRingAttention(Communicator ring, Backend backend, AttentionOptions options) {
        super("tokenring attention", ring, backend, options);
    }

    /** Q = b * s_block * h * d: the elements of one query block. */
    static long queryElements(AttentionShapes block) {
        return Math.multiplyExact(Math.multiplyExact(block.batch(), block.seqQ()),
                Math.multiplyExact(block.heads(), block.headDim()));
    }

    /** L = b * h * s_block: the elements of one query block's lse. */
    static long lseElements(AttentionShapes block) {
        return Math.multiplyExact(Math.multiplyExact(block.batch(), block.heads()), block.seqQ());
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
        try (TransferScope scratch = new TransferScope(backend.newAllocator())) {
            Tensor out = scratch.allocate(DType.F32, q.shape());
            Tensor lse = saved.allocate(DType.F32, sh.batch(), sh.heads(), rows);
            BlockRotation queries = size > 1 ? new BlockRotation(ring, backend, scratch, List.of(q)) : null;
            Transfer nextQueries = size > 1 ? queries.passOn() : null;
            kernel.forward(q, k, v, RingStep.plan(options, me, me, rows, blocks).mask(), scale, out, lse); // my own
            if (size > 1) {
                Tensor[][] sent = partials(scratch, q.dtype(), q.shape(), lse.shape());
                Tensor[][] received = partials(scratch, q.dtype(), q.shape(), lse.shape());
                Transfer pending = null; // the partial for my queries from the step before
                for (int step = 1; step < size; step++) {
                    queries.receive(nextQueries); // the queries of ring rank me - step, passed on while I compute
                    nextQueries = step < size - 1 ? queries.passOn() : null;
                    int owner = Math.floorMod(me - step, size);
                    RingStep plan = RingStep.plan(options, owner, me, rows, blocks);
                    Tensor[] part = sent[step % 2];
                    if (plan.skip() || plan.queryLength() < rows) {
                        backend.fill(part[0], 0f);
                        backend.fill(part[1], Float.NEGATIVE_INFINITY); // rows that see none of my keys
                    }
                    if (!plan.skip()) {
                        kernel.forward(plan.queries(queries.held(0)), plan.keys(k), plan.keys(v), plan.mask(), scale,
                                plan.queries(part[0]), plan.queryLse(part[1]));
                    }
                    Tensor[] in = received[step % 2];
                    Transfer exchange = scratch.track(ring.sendRecv(List.of(part[0], part[1]), owner,
                            List.of(in[0], in[1]), Math.floorMod(me + step, size)));
                    mergeArrived(pending, received[(step - 1) % 2], out, lse);
                    pending = exchange;
                }
                mergeArrived(pending, received[(size - 1) % 2], out, lse);
            }
            Tensor result = saved.allocate(q.dtype(), q.shape());
            backend.copy(out, result);
            return new HeldForward(this, "tokenring", saved, sh, blocks, q, k, v, result, lse);
        } catch (RuntimeException | Error e) {
            saved.close();
            throw e;
        }
    }

    /** Waits for a partial result of my queries (none: null) and folds it into the accumulators. */
    private void mergeArrived(Transfer transfer, Tensor[] partial, Tensor out, Tensor lse) {
        if (transfer != null) {
            transfer.await();
            backend.mergeAttention(out, lse, partial[0], partial[1]);
        }
    }

    /** Two (block out, block lse) pairs taking turns: out in the input dtype, lse in float32. */
    private static Tensor[][] partials(TransferScope scratch, DType dtype, long[] outShape, long[] lseShape) {
        Tensor[][] pairs = new Tensor[2][];
        for (int i = 0; i < 2; i++) {
            pairs[i] = new Tensor[] {scratch.allocate(dtype, outShape), scratch.allocate(DType.F32, lseShape)};
        }
        return pairs;
    }

    @Override
    public Gradients backward(Forward saved, Tensor dout) {
        HeldForward f = HeldForward.requireOwnedBy(this, "TokenRingAttention", saved);
        f.shapes().requireQueryShaped("dout", dout);
        DType dtype = f.q().dtype();
        RingStep.requireBlock("tokenring attention", f.shapes(), options);
        validateSteps(f.shapes(), dtype, f.blocks, true);
        int size = ring.size();
        int me = ring.rank();
        long rows = f.shapes().seqQ();
        float scale = options.scale(f.shapes().headDim());
        AttentionKernel kernel = backend.kernel();
        Tensor out = f.out();
        Tensor lse = f.lse();
        try (TransferScope scratch = new TransferScope(backend.newAllocator())) {
            Tensor dq = scratch.allocate(DType.F32, f.q().shape());
            Tensor dk = scratch.allocate(DType.F32, f.k.shape());
            Tensor dv = scratch.allocate(DType.F32, f.v.shape());
            backend.fill(dq, 0f);
            backend.fill(dk, 0f);
            backend.fill(dv, 0f);
            Tensor dO = dout;
            if (dout.dtype() != dtype) { // the travelling bundle has one element size: the inputs'
                dO = scratch.allocate(dtype, dout.shape());
                backend.copy(dout, dO);
            }
            BlockRotation queries = size > 1 ? new BlockRotation(ring, backend, scratch, List.of(f.q(), out, dO, lse))
                    : null;
            Transfer nextQueries = size > 1 ? queries.passOn() : null;
            kernel.backward(f.q(), f.k, f.v, out, dO, lse, RingStep.plan(options, me, me, rows, f.blocks).mask(), scale,
                    dq, dk, dv, true);
            if (size > 1) {
                Tensor[] sent = {scratch.allocate(DType.F32, f.q().shape()), scratch.allocate(DType.F32, f.q().shape())};
                Tensor[] received = {scratch.allocate(DType.F32, f.q().shape()),
                    scratch.allocate(DType.F32, f.q().shape())};
                Transfer pending = null;
                for (int step = 1; step < size; step++) {
                    queries.receive(nextQueries);
                    nextQueries = step < size - 1 ? queries.passOn() : null;
                    int owner = Math.floorMod(me - step, size);
                    RingStep plan = RingStep.plan(options, owner, me, rows, f.blocks);
                    Tensor part = sent[step % 2];
                    backend.fill(part, 0f);
                    if (!plan.skip()) {
                        kernel.backward(plan.queries(queries.held(0)), plan.keys(f.k), plan.keys(f.v),
                                plan.queries(queries.held(1)), plan.queries(queries.held(2)),
                                plan.queryLse(queries.held(3)), plan.mask(), scale, plan.queries(part), plan.keys(dk),
                                plan.keys(dv), true);
                    }
                    Transfer exchange = scratch.track(ring.sendRecv(List.of(part), owner, List.of(received[step % 2]),
                            Math.floorMod(me + step, size)));
                    addArrived(pending, received[(step - 1) % 2], dq);
                    pending = exchange;
                }
                addArrived(pending, received[(size - 1) % 2], dq);
            }
            return f.gradients(backend, dq, dk, dv);
        }
    }

    /** Waits for a partial dQ of my queries (none: null) and adds it in. */
    private void addArrived(Transfer transfer, Tensor partial, Tensor dq) {
        if (transfer != null) {
            transfer.await();
            backend.add(dq, partial);
        }
    }
}
