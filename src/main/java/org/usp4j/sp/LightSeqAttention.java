package org.usp4j.sp;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.Transfer;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * LightSeq's balanced schedule (DistAttn; Li et al., "LightSeq: Sequence Level Parallelism for
 * Distributed Training of Long Context Transformers") for causal attention over contiguous shards: the
 * sequence keeps its order (the model's other layers keep contiguous shards) and the ranks that the
 * plain ring leaves idle compute blocks for the busy ones.
 *
 * <p>Causal over R ring ranks, ring rank i holds block i; the off-diagonal blocks (queries i, keys j), j &lt; i,
 * pair up by distance: step t (1 &lt;= t &lt;= R/2) does distance t and distance R - t at once. The K/V
 * ring brings K/V of i - t to rank i, which attends its queries to them when i &gt;= t (distance t, the
 * ring's own work); the t ranks j &lt; t that the ring leaves idle fetch the query block of j + R - t,
 * attend it to their own keys (distance R - t) and send back block out (input dtype) and lse (float32),
 * which the owner merges with {@link Backend#mergeAttention}. Every step every rank computes one
 * block; for even R the last step (t = R/2, where both distances are one) is split by rows, the owner
 * taking the first ceil(s/2) and its helper the last floor(s/2). The ring stops after R/2 steps
 * instead of R - 1.
 *
 * <p>Backward: the same schedule. Busy ranks send the float32 dK/dV of the visiting block straight back
 * to its owner; helpers fetch q, out, dO and lse of the helped rows, add dK/dV into their own
 * accumulators and send the float32 partial dQ back.
 *
 * <p>Non-causal attention is balanced on the plain ring already, so it runs {@link RingAttention}.
 *
 * <p>Bytes of ring rank i, with D = floor(R/2) ring steps, D' = floor((R-1)/2) unsplit ones, X = b s h_kv d,
 * Q = b s h d, L = b h s, n_owner(i) = max(0, D' + i + 1 - R) steps whose queries i sends out,
 * n_helper(i) = max(0, D' - i) steps it helps, and for even R the split step with Q/2, L/2 taken as b
 * floor(s/2) h d and b h floor(s/2): forward 2 D X e + n_owner Q e + n_helper (Q e + 4 L) + split
 * (i &gt;= R/2: Q/2 e, else Q/2 e + 4 L/2); backward 2 D X e + min(i, D) 2 X 4 + n_owner (3 Q e + 4 L) +
 * n_helper 4 Q + split (i &gt;= R/2: 3 Q/2 e + 4 L/2, else 4 Q/2).
 */
public final class LightSeqAttention implements SequenceParallelAttention {

    /** {@code --ring-algo lightseq}: contiguous layout only (balancing zigzag or striped would reorder twice). */
    public static final RingAlgorithm ALGORITHM = new RingAlgorithm() {
        @Override
        public String name() {
            return "lightseq";
        }

        @Override
        public Set<SequenceLayout> layouts() {
            return EnumSet.of(SequenceLayout.CONTIGUOUS);
        }

        @Override
        public SequenceParallelAttention create(Communicator ring, Backend backend, AttentionOptions options) {
            return new LightSeqAttention(ring, backend, options);
        }

        /** Refused: the helpers make LightSeq's traffic depend on the rank and the mask. */
        @Override
        public RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize) {
            throw new UnsupportedOperationException("lightseq's bytes depend on the ring rank and the mask: ask "
                    + "forwardBytes(block, dtype, ringSize, ringRank, options)");
        }

        @Override
        public RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize) {
            throw new UnsupportedOperationException("lightseq's bytes depend on the ring rank and the mask: ask "
                    + "backwardBytes(block, dtype, ringSize, ringRank, options)");
        }

        @Override
        public RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize, int ringRank,
                                      AttentionOptions options) {
            if (!options.causal()) {
                return RingAttention.ALGORITHM.forwardBytes(block, dtype, ringSize);
            }
            Traffic t = new Traffic(block, dtype, ringSize, ringRank);
            long bytes = t.kvRing + t.owner * t.q + t.helper * (t.q + t.lse);
            if (t.split) {
                bytes += ringRank >= ringSize / 2 ? t.halfQ : t.halfQ + t.halfLse;
            }
            return RankBytes.of(TrafficKind.P2P, bytes);
        }

        @Override
        public RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize, int ringRank,
                                       AttentionOptions options) {
            if (!options.causal()) {
                return RingAttention.ALGORITHM.backwardBytes(block, dtype, ringSize);
            }
            Traffic t = new Traffic(block, dtype, ringSize, ringRank);
            long kvGradients = Math.multiplyExact(Math.min(ringRank, t.steps) * 2L * RingAttention.kvElements(block),
                    (long) DType.F32.byteSize());
            long bytes = t.kvRing + kvGradients + t.owner * (3 * t.q + t.lse) + t.helper * t.q32;
            if (t.split) {
                bytes += ringRank >= ringSize / 2 ? 3 * t.halfQ + t.halfLse : t.halfQ32;
            }
            return RankBytes.of(TrafficKind.P2P, bytes);
        }

        @Override
        public String toString() {
            return name();
        }
    };

    /** The terms of the cost model for one ring rank (bytes, except the step counts). */
    private static final class Traffic {
        final int steps;
        final boolean split;
        final long owner;
        final long helper;
        final long kvRing;
        final long q;
        final long q32;
        final long lse;
        final long halfQ;
        final long halfQ32;
        final long halfLse;

        Traffic(AttentionShapes block, DType dtype, int ringSize, int ringRank) {
            steps = ringSize / 2;
            int unsplit = (ringSize - 1) / 2;
            split = ringSize % 2 == 0 && ringSize > 1;
            owner = Math.max(0, unsplit + ringRank + 1 - ringSize);
            helper = Math.max(0, unsplit - ringRank);
            kvRing = Math.multiplyExact(2L * steps * RingAttention.kvElements(block), (long) dtype.byteSize());
            long qElements = TokenRingAttention.queryElements(block);
            long perRow = qElements / block.seqQ();
            long half = block.seqQ() / 2;
            q = Math.multiplyExact(qElements, (long) dtype.byteSize());
            q32 = Math.multiplyExact(qElements, 4L);
            lse = Math.multiplyExact(TokenRingAttention.lseElements(block), 4L);
            halfQ = Math.multiplyExact(perRow * half, (long) dtype.byteSize());
            halfQ32 = Math.multiplyExact(perRow * half, 4L);
            halfLse = Math.multiplyExact(block.batch() * block.heads() * half, 4L);
        }
    }

    private final Communicator ring;
    private final Backend backend;
    private final AttentionOptions options;
    private final RingAttention plainRing; // non-causal

    public LightSeqAttention(Communicator ring, Backend backend, AttentionOptions options) {
        this.ring = Objects.requireNonNull(ring, "ring");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.options = Objects.requireNonNull(options, "options");
        if (options.layout() != SequenceLayout.CONTIGUOUS) {
            throw new IllegalArgumentException("lightseq supports the contiguous layout only, got "
                    + options.layout().label());
        }
        this.plainRing = options.causal() ? null : new RingAttention(ring, backend, options);
    }

    /** What ring rank {@code me} does at step {@code step} (1 &lt;= step &lt;= R/2) of the causal schedule. */
    private record Step(int ringSize, int me, int step) {
        boolean split() {
            return 2 * step == ringSize;
        }

        /** My queries against the visiting keys of me - step (the ring's own work). */
        boolean busy() {
            return me >= step;
        }

        /** My keys against the queries of me - step (mod R), fetched, for the rows {@link #helpedRows}. */
        boolean helping() {
            return me < step;
        }

        /** Whether a helper (me + step, mod R) computes some of my rows this step. */
        boolean helped() {
            return split() ? me >= step : me >= ringSize - step;
        }

        /** The rows of my block my own kernel attends to the visiting keys: all, or the first half of a split. */
        long busyRows(long rows) {
            return split() ? rows - rows / 2 : rows;
        }

        /** The rows a helper computes: all, or the last floor(s/2) of a split. */
        long helpedRows(long rows) {
            return split() ? rows / 2 : rows;
        }

        int ownerOfHelped() {
            return Math.floorMod(me - step, ringSize);
        }

        int helper() {
            return Math.floorMod(me + step, ringSize);
        }
    }

    @Override
    public void validate(AttentionShapes local, DType dtype) {
        if (plainRing != null) {
            plainRing.validate(local, dtype);
        } else {
            validateSchedule(local, dtype, false);
        }
    }

    @Override
    public void validateBackward(AttentionShapes local, DType dtype) {
        if (plainRing != null) {
            plainRing.validateBackward(local, dtype);
        } else {
            validateSchedule(local, dtype, true);
        }
    }

    /** The causal diagonal and every unmasked block of the schedule, on this rank's kernel. */
    private void validateSchedule(AttentionShapes local, DType dtype, boolean backward) {
        RingStep.requireBlock("lightseq attention", local, options);
        AttentionKernel kernel = backend.kernel();
        List<AttentionShapes> blocks = new ArrayList<>(List.of(local));
        blocks.addAll(unmaskedBlocks(local));
        for (AttentionShapes block : blocks) {
            Mask mask = block == local ? Mask.CAUSAL : Mask.NONE;
            if (backward) {
                kernel.validateBackward(block, dtype, mask);
            } else {
                kernel.validateForward(block, dtype, mask);
            }
        }
    }

    /** The unmasked calls any rank makes besides its causal diagonal: whole blocks and the two halves of a split. */
    private static List<AttentionShapes> unmaskedBlocks(AttentionShapes local) {
        List<AttentionShapes> calls = new ArrayList<>();
        long rows = local.seqQ();
        for (long r : new long[] {rows, rows - rows / 2, rows / 2}) {
            if (r > 0) {
                calls.add(new AttentionShapes(local.batch(), r, rows, local.heads(), local.kvHeads(), local.headDim()));
            }
        }
        return calls;
    }

    @Override
    public Forward forward(Tensor q, Tensor k, Tensor v) {
        if (plainRing != null) {
            return plainRing.forward(q, k, v);
        }
        AttentionShapes sh = AttentionShapes.of(q, k, v);
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("q, k and v must have one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        validate(sh, q.dtype());
        int size = ring.size();
        int me = ring.rank();
        long rows = sh.seqQ();
        float scale = options.scale(sh.headDim());
        AttentionKernel kernel = backend.kernel();
        TensorAllocator saved = backend.newAllocator();
        try (TransferScope scratch = new TransferScope(backend.newAllocator())) {
            Tensor out = scratch.allocate(DType.F32, q.shape());
            Tensor lse = saved.allocate(DType.F32, sh.batch(), sh.heads(), rows);
            int steps = size / 2;
            BlockRotation kv = steps > 0 ? new BlockRotation(ring, backend, scratch, List.of(k, v)) : null;
            Transfer nextKv = steps > 0 ? kv.passOn() : null;
            kernel.forward(q, k, v, Mask.CAUSAL, scale, out, lse);
            Tensor blockOut = steps > 0 ? scratch.allocate(DType.F32, q.shape()) : null;
            Tensor blockLse = steps > 0 ? scratch.allocate(DType.F32, lse.shape()) : null;
            for (int t = 1; t <= steps; t++) {
                kv.receive(nextKv); // K/V of me - t
                nextKv = t < steps ? kv.passOn() : null;
                Step step = new Step(size, me, t);
                long helpedRows = step.helpedRows(rows);
                long helpedStart = rows - helpedRows;
                boolean exchange = helpedRows > 0;
                // Queries go to the helper first, so that it computes while I do my own block.
                // Every rank posts its transfers in the order its peers post the matching ones (queries, then
                // results), so that communicators that run them in order (NCCL streams) cannot deadlock.
                Tensor fetched = null;
                Transfer queries = null;
                if (exchange && step.helped()) {
                    Tensor send = contiguousRows(scratch, q, helpedStart, helpedRows, q.dtype());
                    queries = scratch.track(ring.sendRecv(List.of(send), step.helper(), List.of(), step.helper()));
                } else if (exchange && step.helping()) {
                    fetched = scratch.allocate(q.dtype(), sh.batch(), helpedRows, sh.heads(), sh.headDim());
                    queries = scratch.track(ring.sendRecv(List.of(), step.ownerOfHelped(), List.of(fetched),
                            step.ownerOfHelped()));
                }
                if (step.busy()) {
                    long mine = step.busyRows(rows);
                    Tensor partOut = blockOut.slice(1, 0, mine);
                    Tensor partLse = blockLse.slice(2, 0, mine);
                    kernel.forward(q.slice(1, 0, mine), kv.held(0), kv.held(1), Mask.NONE, scale, partOut, partLse);
                    backend.mergeAttention(out.slice(1, 0, mine), lse.slice(2, 0, mine), partOut, partLse);
                }
                if (fetched != null) {
                    queries.await();
                    Tensor helpOut = scratch.allocate(q.dtype(), fetched.shape());
                    Tensor helpLse = scratch.allocate(DType.F32, sh.batch(), sh.heads(), helpedRows);
                    kernel.forward(fetched, k, v, Mask.NONE, scale, helpOut, helpLse);
                    scratch.track(ring.sendRecv(List.of(helpOut, helpLse), step.ownerOfHelped(), List.of(),
                            step.ownerOfHelped())).await();
                } else if (queries != null) {
                    Tensor[] back = {scratch.allocate(q.dtype(), sh.batch(), helpedRows, sh.heads(), sh.headDim()),
                        scratch.allocate(DType.F32, sh.batch(), sh.heads(), helpedRows)};
                    Transfer results = scratch.track(ring.sendRecv(List.of(), step.helper(), List.of(back[0], back[1]),
                            step.helper()));
                    queries.await();
                    results.await();
                    backend.mergeAttention(out.slice(1, helpedStart, helpedRows), lse.slice(2, helpedStart, helpedRows),
                            back[0], back[1]);
                }
            }
            Tensor result = saved.allocate(q.dtype(), q.shape());
            backend.copy(out, result);
            return new HeldForward(this, "lightseq", saved, sh, q, k, v, result, lse);
        } catch (RuntimeException | Error e) {
            saved.close();
            throw e;
        }
    }

    @Override
    public Gradients backward(Forward saved, Tensor dout) {
        if (plainRing != null) {
            return plainRing.backward(saved, dout);
        }
        HeldForward f = HeldForward.requireOwnedBy(this, "LightSeqAttention", saved);
        f.shapes().requireQueryShaped("dout", dout);
        DType dtype = f.q().dtype();
        validateBackward(f.shapes(), dtype);
        AttentionShapes sh = f.shapes();
        int size = ring.size();
        int me = ring.rank();
        long rows = sh.seqQ();
        float scale = options.scale(sh.headDim());
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
            int steps = size / 2;
            BlockRotation kv = steps > 0 ? new BlockRotation(ring, backend, scratch, List.of(f.k, f.v)) : null;
            Transfer nextKv = steps > 0 ? kv.passOn() : null;
            kernel.backward(f.q(), f.k, f.v, out, dout, lse, Mask.CAUSAL, scale, dq, dk, dv, true);
            long[] kvShape = f.k.shape();
            Tensor[] visiting = steps > 0 ? new Tensor[] {scratch.allocate(DType.F32, kvShape),
                scratch.allocate(DType.F32, kvShape)} : null;
            Tensor[] returned = steps > 0 ? new Tensor[] {scratch.allocate(DType.F32, kvShape),
                scratch.allocate(DType.F32, kvShape)} : null;
            for (int t = 1; t <= steps; t++) {
                kv.receive(nextKv);
                nextKv = t < steps ? kv.passOn() : null;
                Step step = new Step(size, me, t);
                long helpedRows = step.helpedRows(rows);
                long helpedStart = rows - helpedRows;
                boolean exchange = helpedRows > 0;
                // Posted in the order the peers post theirs: queries, dK/dV home, partial dQ back.
                Tensor[] fetched = null;
                Transfer queries = null;
                if (exchange && step.helped()) {
                    List<Tensor> send = List.of(contiguousRows(scratch, f.q(), helpedStart, helpedRows, dtype),
                            contiguousRows(scratch, out, helpedStart, helpedRows, dtype),
                            contiguousRows(scratch, dout, helpedStart, helpedRows, dtype),
                            contiguousLse(scratch, lse, helpedStart, helpedRows));
                    queries = scratch.track(ring.sendRecv(send, step.helper(), List.of(), step.helper()));
                } else if (exchange && step.helping()) {
                    fetched = new Tensor[] {
                        scratch.allocate(dtype, sh.batch(), helpedRows, sh.heads(), sh.headDim()),
                        scratch.allocate(dtype, sh.batch(), helpedRows, sh.heads(), sh.headDim()),
                        scratch.allocate(dtype, sh.batch(), helpedRows, sh.heads(), sh.headDim()),
                        scratch.allocate(DType.F32, sh.batch(), sh.heads(), helpedRows)};
                    queries = scratch.track(ring.sendRecv(List.of(), step.ownerOfHelped(), List.of(fetched),
                            step.ownerOfHelped()));
                }
                // dK/dV of the visiting block go straight home; mine come back from me + t.
                Transfer gradients = null;
                boolean homeward = me + t < size; // rank me + t is busy with my block this step
                if (step.busy()) {
                    long mine = step.busyRows(rows);
                    backend.fill(visiting[0], 0f);
                    backend.fill(visiting[1], 0f);
                    kernel.backward(f.q().slice(1, 0, mine), kv.held(0), kv.held(1), out.slice(1, 0, mine),
                            dout.slice(1, 0, mine), lse.slice(2, 0, mine), Mask.NONE, scale, dq.slice(1, 0, mine),
                            visiting[0], visiting[1], true);
                    gradients = scratch.track(ring.sendRecv(List.of(visiting[0], visiting[1]), me - t,
                            homeward ? List.of(returned[0], returned[1]) : List.of(), (me + t) % size));
                } else if (homeward) {
                    gradients = scratch.track(ring.sendRecv(List.of(), me + t, List.of(returned[0], returned[1]),
                            me + t));
                }
                if (fetched != null) {
                    queries.await();
                    Tensor helpDq = scratch.allocate(DType.F32, fetched[0].shape());
                    backend.fill(helpDq, 0f);
                    kernel.backward(fetched[0], f.k, f.v, fetched[1], fetched[2], fetched[3], Mask.NONE, scale, helpDq,
                            dk, dv, true);
                    scratch.track(ring.sendRecv(List.of(helpDq), step.ownerOfHelped(), List.of(),
                            step.ownerOfHelped())).await();
                }
                if (gradients != null) {
                    gradients.await();
                    if (homeward) {
                        backend.add(dk, returned[0]);
                        backend.add(dv, returned[1]);
                    }
                }
                if (queries != null && fetched == null) {
                    Tensor backDq = scratch.allocate(DType.F32, sh.batch(), helpedRows, sh.heads(), sh.headDim());
                    Transfer results = scratch.track(ring.sendRecv(List.of(), step.helper(), List.of(backDq),
                            step.helper()));
                    queries.await();
                    results.await();
                    backend.add(dq.slice(1, helpedStart, helpedRows), backDq);
                }
            }
            return f.gradients(backend, dq, dk, dv);
        }
    }

    /** Rows [start, start + n) of a [b, s, h, d] tensor, copied contiguous in {@code dtype}. */
    private Tensor contiguousRows(TransferScope scratch, Tensor bshd, long start, long n, DType dtype) {
        Tensor rowsOf = bshd.slice(1, start, n);
        Tensor copy = scratch.allocate(dtype, rowsOf.shape());
        backend.copy(rowsOf, copy);
        return copy;
    }

    /** Rows [start, start + n) of a [b, h, s] lse, copied contiguous. */
    private Tensor contiguousLse(TransferScope scratch, Tensor bhs, long start, long n) {
        Tensor rowsOf = bhs.slice(2, start, n);
        Tensor copy = scratch.allocate(DType.F32, rowsOf.shape());
        backend.copy(rowsOf, copy);
        return copy;
    }
}
