package org.usp4j.dist;

import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.Forward;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.Mesh;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.UlyssesAllToAll;
import org.usp4j.sp.UspAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One process's part of a multi-process attention run (one rank per process, one GPU each): every rank
 * holds the same global host inputs (each reads the input file, or makes them from a shared seed), takes
 * its own shard by the layout onto its device, runs {@link UspAttention} over the world communicator,
 * and the results come back to rank 0 in global order.
 *
 * <p>Gathering: each result is all-gathered over the world communicator into a [P, ...] device buffer (an
 * NCCL all-gather, so the results never pass through the store, whose messages are bounded), and rank 0
 * copies every rank's slot back into the global host tensors by the layout. That costs every rank device
 * memory for one whole result at a time; the bytes it moves are not counted in the figures, which cover
 * the attention's own exchanges only (equal to {@link org.usp4j.sp.CostModel}). The per-rank figures
 * (device, seconds, bytes) are small and go through the rendezvous store.
 *
 * <p>Collective: every rank calls {@link #run} with the same mesh, options and input shapes. Inputs are
 * checked, identically on every rank, before any communication, so bad input fails every rank alike.
 */
public final class DistributedAttention {

    private static final Logger LOG = LogManager.getLogger(DistributedAttention.class);

    private DistributedAttention() {
    }

    /** One process's share of the job: its rendezvous, its world communicator and its backend. */
    public interface Rank {

        Rendezvous rendezvous();

        /** The world communicator: rank r of P, its rank equal to the rendezvous' rank. */
        Communicator world();

        Backend backend();

        /** The device this rank computes on (for the figures). */
        int device();

        /**
         * Throws if the rank failed while its device work was waited on (an aborted communicator lets a
         * stream synchronize return, and the data is then not to be trusted). Default: nothing to check.
         */
        default void checkHealthy() {
        }
    }

    /**
     * The global inputs, host tensors in [b, S, h, d] (k, v with h_kv heads), one dtype.
     *
     * @param dout the output gradient for a backward, or null for the forward only
     */
    public record Inputs(Tensor q, Tensor k, Tensor v, Tensor dout) {
        public Inputs {
            Objects.requireNonNull(q, "q");
            Objects.requireNonNull(k, "k");
            Objects.requireNonNull(v, "v");
        }
    }

    /**
     * What one rank did: its device, the seconds its forward and backward took (to the end of its device
     * work; 0 without a backward) and the bytes it sent per kind during them.
     */
    public record RankFigures(int rank, int device, double forwardSeconds, double backwardSeconds,
                              Map<TrafficKind, Long> bytesSent) {
        public RankFigures {
            bytesSent = Map.copyOf(bytesSent);
        }

        /** Bytes sent of all kinds. */
        public long totalBytes() {
            return bytesSent.values().stream().mapToLong(Long::longValue).sum();
        }
    }

    /**
     * The run as rank 0 sees it: the results in global order, in host memory of the caller's arena (out
     * and dq, dk, dv in the input dtype, lse [b, h, S] F32), and every rank's figures in rank order. On
     * other ranks {@code forward} and {@code gradients} are null and {@code ranks} holds only their own.
     */
    public record Result(ForwardResult forward, Gradients gradients, List<RankFigures> ranks) {
        public Result {
            ranks = List.copyOf(ranks);
        }
    }

    /**
     * Runs this rank's part; see the class comment. Results are allocated in {@code arena} on rank 0 only.
     *
     * @throws IllegalArgumentException before any communication when the world does not match the mesh or
     *                                  the inputs cannot be dealt to it (naming the values)
     */
    public static Result run(Rank rank, Mesh mesh, AttentionOptions options, Inputs inputs, Arena arena) {
        Objects.requireNonNull(rank, "rank");
        Objects.requireNonNull(mesh, "mesh");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(inputs, "inputs");
        Objects.requireNonNull(arena, "arena");
        Communicator world = rank.world();
        Backend backend = rank.backend();
        Rendezvous rendezvous = rank.rendezvous();
        if (world.size() != mesh.size() || rendezvous.worldSize() != mesh.size()) {
            throw new IllegalArgumentException("mesh " + mesh.ulysses() + "x" + mesh.ring() + " needs " + mesh.size()
                    + " ranks, but the world has " + world.size() + " (rendezvous: " + rendezvous.worldSize() + ")");
        }
        if (world.rank() != rendezvous.rank()) {
            throw new IllegalArgumentException("the world communicator is rank " + world.rank()
                    + " but the rendezvous is rank " + rendezvous.rank());
        }
        AttentionShapes shapes = validate(inputs, mesh, options);
        int me = world.rank();
        long local = shapes.seqQ() / mesh.size();
        LOG.info("rank {} of {}: attention on {} rows of {} ({}, mesh {}x{})", me, mesh.size(), local,
                shapes.seqQ(), inputs.q().dtype(), mesh.ulysses(), mesh.ring());
        try (MeshGroups groups = MeshGroups.split(mesh, world);
             TensorAllocator memory = backend.newAllocator()) {
            UspAttention usp = new UspAttention(groups, backend, options);
            usp.validate(new AttentionShapes(shapes.batch(), local, local, shapes.heads(), shapes.kvHeads(),
                    shapes.headDim()), inputs.q().dtype());
            Tensor q = shard(inputs.q(), memory, backend, mesh, options, me, local);
            Tensor k = shard(inputs.k(), memory, backend, mesh, options, me, local);
            Tensor v = shard(inputs.v(), memory, backend, mesh, options, me, local);
            Tensor dout = inputs.dout() == null ? null : shard(inputs.dout(), memory, backend, mesh, options, me, local);
            backend.synchronize();

            Map<TrafficKind, Long> before = world.traffic().snapshot();
            long t0 = System.nanoTime();
            try (Forward forward = usp.forward(q, k, v)) {
                backend.synchronize();
                rank.checkHealthy();
                double forwardSeconds = (System.nanoTime() - t0) / 1e9;
                Gradients grads = null;
                double backwardSeconds = 0;
                if (dout != null) {
                    long t1 = System.nanoTime();
                    grads = usp.backward(forward, dout);
                    backend.synchronize();
                    rank.checkHealthy();
                    backwardSeconds = (System.nanoTime() - t1) / 1e9;
                }
                Map<TrafficKind, Long> sent = world.traffic().since(before);
                RankFigures mine = new RankFigures(me, rank.device(), forwardSeconds, backwardSeconds, sent);

                Gathered g = new Gathered(world, backend, memory, mesh, options, me == 0);
                ForwardResult globalForward = null;
                Gradients globalGrads = null;
                Tensor out = g.rows(forward.out(), inputs.q().dtype(), arena);
                Tensor lse = g.lse(forward.lse(), shapes, arena);
                if (me == 0) {
                    globalForward = new ForwardResult(out, lse);
                }
                if (grads != null) {
                    Tensor dq = g.rows(grads.dq(), inputs.q().dtype(), arena);
                    Tensor dk = g.rows(grads.dk(), inputs.q().dtype(), arena);
                    Tensor dv = g.rows(grads.dv(), inputs.q().dtype(), arena);
                    if (me == 0) {
                        globalGrads = new Gradients(dq, dk, dv);
                    }
                }
                backend.synchronize();
                rank.checkHealthy();
                List<RankFigures> figures = exchangeFigures(rendezvous, mine);
                return new Result(globalForward, globalGrads, figures);
            }
        }
    }

    /** The same checks on every rank, before any communication. */
    private static AttentionShapes validate(Inputs in, Mesh mesh, AttentionOptions options) {
        for (Tensor t : in.dout() == null ? List.of(in.q(), in.k(), in.v()) : List.of(in.q(), in.k(), in.v(), in.dout())) {
            if (!t.isHost()) {
                throw new IllegalArgumentException("distributed attention reads global host tensors, got "
                        + t.describe());
            }
            if (t.dtype() != in.q().dtype()) {
                throw new IllegalArgumentException("q, k, v (and do) must have one dtype, got " + in.q().dtype()
                        + " and " + t.dtype());
            }
        }
        AttentionShapes sh = AttentionShapes.of(in.q(), in.k(), in.v());
        if (sh.seqQ() != sh.seqKv()) {
            throw new IllegalArgumentException("q has sequence length " + sh.seqQ() + " but k and v have " + sh.seqKv()
                    + " (self-attention over one sequence)");
        }
        if (sh.batch() <= 0 || sh.heads() <= 0 || sh.headDim() <= 0 || sh.seqQ() <= 0) {
            throw new IllegalArgumentException("q has an empty dimension: " + Arrays.toString(in.q().shape()));
        }
        if (in.dout() != null) {
            sh.requireQueryShaped("dout", in.dout());
        }
        options.layout().validate(sh.seqQ(), mesh);
        UlyssesAllToAll.validateHeads(sh.heads(), sh.kvHeads(), mesh.ulysses());
        return sh;
    }

    private static Tensor shard(Tensor global, TensorAllocator memory, Backend backend, Mesh mesh,
                                AttentionOptions options, int rank, long local) {
        Tensor t = memory.allocate(global.dtype(), global.size(0), local, global.size(2), global.size(3));
        options.layout().shard(global, t, 1, mesh, rank, backend::copy);
        return t;
    }

    /** Every rank's figures to rank 0 through the store (the others get their own). */
    private static List<RankFigures> exchangeFigures(Rendezvous rendezvous, RankFigures mine) {
        List<byte[]> published = rendezvous.gatherToRoot("attention/figures", encode(mine));
        if (rendezvous.rank() != 0) {
            return List.of(mine);
        }
        List<RankFigures> all = new ArrayList<>();
        for (int r = 0; r < published.size(); r++) {
            all.add(decode(r, published.get(r)));
        }
        return all;
    }

    private static byte[] encode(RankFigures f) {
        StringBuilder s = new StringBuilder();
        s.append(f.device()).append(' ').append(f.forwardSeconds()).append(' ').append(f.backwardSeconds());
        for (TrafficKind kind : TrafficKind.values()) {
            s.append(' ').append(f.bytesSent().getOrDefault(kind, 0L));
        }
        return s.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private static RankFigures decode(int rank, byte[] bytes) {
        String[] parts = new String(bytes, StandardCharsets.US_ASCII).split(" ");
        TrafficKind[] kinds = TrafficKind.values();
        if (parts.length != 3 + kinds.length) {
            throw new IllegalStateException("rank " + rank + " published malformed figures: "
                    + new String(bytes, StandardCharsets.US_ASCII));
        }
        Map<TrafficKind, Long> sent = new EnumMap<>(TrafficKind.class);
        for (int i = 0; i < kinds.length; i++) {
            sent.put(kinds[i], Long.parseLong(parts[3 + i]));
        }
        return new RankFigures(rank, Integer.parseInt(parts[0]), Double.parseDouble(parts[1]),
                Double.parseDouble(parts[2]), sent);
    }

    /** All-gathers one result of every rank into [P, ...] on the device, and on rank 0 unshards it to the host. */
    private record Gathered(Communicator world, Backend backend, TensorAllocator memory, Mesh mesh,
                            AttentionOptions options, boolean root) {

        /** A [b, S/P, h, d] result of every rank into global [b, S, h, d] rows (rank 0; null elsewhere). */
        Tensor rows(Tensor mine, DType dtype, Arena arena) {
            Tensor all = allGather(mine);
            if (!root) {
                return null;
            }
            long[] shape = mine.shape().clone();
            shape[1] *= mesh.size();
            Tensor global = Tensor.allocate(arena, dtype, shape);
            for (int r = 0; r < mesh.size(); r++) {
                options.layout().unshard(slot(all, r, mine.shape()), global, 1, mesh, r, backend::copy);
            }
            return global;
        }

        /**
         * Every rank's lse [b, h/U, S/R] (its Ulysses heads over its ring block, see UspAttention) into
         * global [b, h, S] (rank 0; null elsewhere).
         */
        Tensor lse(Tensor mine, AttentionShapes shapes, Arena arena) {
            Tensor all = allGather(mine);
            if (!root) {
                return null;
            }
            Tensor global = Tensor.allocate(arena, DType.F32, shapes.batch(), shapes.heads(), shapes.seqQ());
            long headsPerRank = shapes.heads() / mesh.ulysses();
            Mesh rings = new Mesh(1, mesh.ring());
            for (int r = 0; r < mesh.size(); r++) {
                Tensor heads = global.slice(1, mesh.ulyssesRank(r) * headsPerRank, headsPerRank);
                options.layout().unshard(slot(all, r, mine.shape()), heads, 2, rings, mesh.ringRank(r), backend::copy);
            }
            return global;
        }

        /** In place: this rank's copy goes into its own slot of the [P, ...] buffer, then NCCL fills the rest. */
        private Tensor allGather(Tensor mine) {
            long[] shape = new long[mine.rank() + 1];
            shape[0] = world.size();
            System.arraycopy(mine.shape(), 0, shape, 1, mine.rank());
            Tensor all = memory.allocate(mine.dtype(), shape);
            backend.copy(mine, slot(all, world.rank(), mine.shape()));
            world.allGather(slot(all, world.rank(), mine.shape()), all);
            return all;
        }

        private static Tensor slot(Tensor all, int rank, long[] shape) {
            return all.slice(0, rank, 1).view(shape);
        }
    }
}
