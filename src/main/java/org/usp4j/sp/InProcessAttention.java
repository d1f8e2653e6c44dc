package org.usp4j.sp;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiFunction;
import java.util.function.IntFunction;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Runs distributed attention on global host tensors over mesh.size() in-process ranks: it deals the
 * inputs to the ranks by the layout, runs {@link UspAttention} on every rank (one thread each, over a
 * {@link LocalWorld}), and gathers the results back into global order. Dealing and gathering happen on
 * the caller's thread, so the global tensors may live in a confined arena.
 *
 * <p>It owns the backends {@code backendPerRank} makes, the world and the communicators, and closes them.
 * Each {@link #forward} replaces the saved state of the previous one; {@link #backward} uses the last
 * forward. Not for concurrent use. After a rank fails, the world is aborted and every later call throws.
 */
public final class InProcessAttention implements AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(InProcessAttention.class);

    private final Mesh mesh;
    private final AttentionOptions options;
    private final Backend[] backends;
    private final LocalWorld world;
    private final MeshGroups[] groups;
    private final SequenceParallelAttention[] ranks;
    private final Forward[] saved;
    private final TensorAllocator[] dealt;
    private AttentionShapes shapes;
    private DType dtype;
    private List<Map<TrafficKind, Long>> forwardTraffic = List.of();
    private List<Map<TrafficKind, Long>> backwardTraffic = List.of();
    private boolean closed;

    public InProcessAttention(Mesh mesh, AttentionOptions options, IntFunction<Backend> backendPerRank) {
        this(mesh, options, backendPerRank, LocalWorld.DEFAULT_TIMEOUT);
    }

    /** As above, with the time any rank waits for its peers before failing (default 60 s). */
    public InProcessAttention(Mesh mesh, AttentionOptions options, IntFunction<Backend> backendPerRank,
                              Duration timeout) {
        this(mesh, options, backendPerRank, timeout, (groups, backend) -> new UspAttention(groups, backend, options));
    }

    /**
     * Another strategy on every rank, made by {@code strategy} from the rank's mesh groups and backend;
     * {@code options} gives the layout the inputs are dealt by. A strategy whose forward has no lse
     * (linear attention) gives a {@link ForwardResult} with a null lse.
     */
    public InProcessAttention(Mesh mesh, AttentionOptions options, IntFunction<Backend> backendPerRank,
                              Duration timeout, BiFunction<MeshGroups, Backend, SequenceParallelAttention> strategy) {
        Objects.requireNonNull(strategy, "strategy");
        this.mesh = Objects.requireNonNull(mesh, "mesh");
        this.options = Objects.requireNonNull(options, "options");
        Objects.requireNonNull(backendPerRank, "backendPerRank");
        int p = mesh.size();
        this.backends = new Backend[p];
        this.saved = new Forward[p];
        this.dealt = new TensorAllocator[p];
        this.ranks = new SequenceParallelAttention[p];
        this.groups = new MeshGroups[p];
        LocalWorld w = null;
        try {
            for (int r = 0; r < p; r++) {
                backends[r] = Objects.requireNonNull(backendPerRank.apply(r), "backend of rank " + r);
            }
            w = new LocalWorld(p, timeout, rank -> LocalTransport.of(backends[rank]));
            w.run((rank, comm) -> groups[rank] = MeshGroups.split(mesh, comm));
        } catch (RuntimeException | Error e) {
            if (w != null) {
                w.close();
            }
            closeBackends();
            throw e;
        }
        this.world = w;
        for (int r = 0; r < p; r++) {
            ranks[r] = strategy.apply(groups[r], backends[r]);
        }
        LOG.debug("in-process attention on mesh {}, {}", mesh, options);
    }

    public Mesh mesh() {
        return mesh;
    }

    public AttentionOptions options() {
        return options;
    }

    /**
     * Deals q [b,S,h,d], k, v [b,S,h_kv,d] to the ranks by the layout, runs the forward, gathers: out
     * [b,S,h,d] in q's dtype and lse [b,h,S] F32, allocated in {@code arena}. Every shape, divisibility and
     * dtype problem is an {@link IllegalArgumentException} thrown before any rank starts.
     */
    public ForwardResult forward(Tensor q, Tensor k, Tensor v, Arena arena) {
        requireOpen();
        Objects.requireNonNull(arena, "arena");
        AttentionShapes sh = validateInputs(q, k, v);
        releaseRankState();
        shapes = sh;
        dtype = q.dtype();
        world.traffic().forEach(TrafficCounter::reset);
        backwardTraffic = List.of();
        long local = sh.seqQ() / mesh.size();
        Tensor[][] inputs = new Tensor[mesh.size()][];
        for (int r = 0; r < mesh.size(); r++) {
            dealt[r] = backends[r].newAllocator();
            inputs[r] = new Tensor[] {deal(q, r, local), deal(k, r, local), deal(v, r, local)};
        }
        world.run((rank, comm) -> {
            Tensor[] in = inputs[rank];
            saved[rank] = ranks[rank].forward(in[0], in[1], in[2]);
            return null;
        });
        forwardTraffic = snapshotTraffic();
        Tensor out = Tensor.allocate(arena, dtype, sh.batch(), sh.seqQ(), sh.heads(), sh.headDim());
        boolean hasLse = saved[0].lse() != null;
        Tensor lse = hasLse ? Tensor.allocate(arena, DType.F32, sh.batch(), sh.heads(), sh.seqQ()) : null;
        long headsPerRank = sh.heads() / mesh.ulysses();
        Mesh rings = new Mesh(1, mesh.ring());
        for (int r = 0; r < mesh.size(); r++) {
            Backend b = backends[r];
            options.layout().unshard(saved[r].out(), out, 1, mesh, r, b::copy);
            if (!hasLse) {
                continue;
            }
            // Rank r's lse: its Ulysses heads over its whole ring block (see UspAttention).
            Tensor heads = lse.slice(1, mesh.ulyssesRank(r) * headsPerRank, headsPerRank);
            options.layout().unshard(saved[r].lse(), heads, 2, rings, mesh.ringRank(r), b::copy);
        }
        return new ForwardResult(out, lse);
    }

    /** After forward: dq, dk, dv in the input dtype, global order, allocated in {@code arena}. */
    public Gradients backward(Tensor dout, Arena arena) {
        requireOpen();
        Objects.requireNonNull(arena, "arena");
        if (shapes == null) {
            throw new IllegalStateException("backward needs a forward first");
        }
        Objects.requireNonNull(dout, "dout");
        requireHost("dout", dout);
        shapes.requireQueryShaped("dout", dout);
        long local = shapes.seqQ() / mesh.size();
        List<Map<TrafficKind, Long>> before = snapshotTraffic();
        Tensor[] douts = new Tensor[mesh.size()];
        for (int r = 0; r < mesh.size(); r++) {
            douts[r] = dealAs(dout, dtype, r, local);
        }
        List<Gradients> grads = world.run((rank, comm) -> ranks[rank].backward(saved[rank], douts[rank]));
        List<Map<TrafficKind, Long>> after = snapshotTraffic();
        List<Map<TrafficKind, Long>> diff = new ArrayList<>();
        for (int r = 0; r < mesh.size(); r++) {
            Map<TrafficKind, Long> m = new EnumMap<>(TrafficKind.class);
            for (TrafficKind kind : TrafficKind.values()) {
                m.put(kind, after.get(r).get(kind) - before.get(r).get(kind));
            }
            diff.add(Map.copyOf(m));
        }
        backwardTraffic = List.copyOf(diff);
        Tensor dq = Tensor.allocate(arena, dtype, shapes.batch(), shapes.seqQ(), shapes.heads(), shapes.headDim());
        Tensor dk = Tensor.allocate(arena, dtype, shapes.batch(), shapes.seqKv(), shapes.kvHeads(), shapes.headDim());
        Tensor dv = Tensor.allocate(arena, dtype, shapes.batch(), shapes.seqKv(), shapes.kvHeads(), shapes.headDim());
        for (int r = 0; r < mesh.size(); r++) {
            Backend b = backends[r];
            Gradients g = grads.get(r);
            options.layout().unshard(g.dq(), dq, 1, mesh, r, b::copy);
            options.layout().unshard(g.dk(), dk, 1, mesh, r, b::copy);
            options.layout().unshard(g.dv(), dv, 1, mesh, r, b::copy);
        }
        return new Gradients(dq, dk, dv);
    }

    /**
     * Bytes each rank sent during the attention's own collectives (not the dealing and gathering) since
     * the last forward started: after a backward, forward plus backward. Live counters.
     */
    public List<TrafficCounter> traffic() {
        return world.traffic();
    }

    /** Per rank, what the last forward sent (equal to {@link CostModel#forward}). */
    public List<Map<TrafficKind, Long>> forwardTraffic() {
        return forwardTraffic;
    }

    /** Per rank, what the last backward sent (equal to {@link CostModel#backward}); empty before one. */
    public List<Map<TrafficKind, Long>> backwardTraffic() {
        return backwardTraffic;
    }

    /** Frees every rank's saved state, closes the communicators, the world and the backends. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        releaseRankState();
        for (MeshGroups g : groups) {
            if (g != null) {
                g.close();
            }
        }
        world.close();
        closeBackends();
    }

    private AttentionShapes validateInputs(Tensor q, Tensor k, Tensor v) {
        Objects.requireNonNull(q, "q");
        Objects.requireNonNull(k, "k");
        Objects.requireNonNull(v, "v");
        requireHost("q", q);
        requireHost("k", k);
        requireHost("v", v);
        AttentionShapes sh = AttentionShapes.of(q, k, v);
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("q, k and v must have one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        if (sh.seqQ() != sh.seqKv()) {
            throw new IllegalArgumentException("q has sequence length " + sh.seqQ() + " but k and v have "
                    + sh.seqKv() + " (self-attention over one sequence)");
        }
        if (sh.batch() <= 0 || sh.heads() <= 0 || sh.headDim() <= 0) {
            throw new IllegalArgumentException("q has an empty dimension: " + Arrays.toString(q.shape()));
        }
        options.layout().validate(sh.seqQ(), mesh);
        long local = sh.seqQ() / mesh.size();
        ranks[0].validate(new AttentionShapes(sh.batch(), local, local, sh.heads(), sh.kvHeads(), sh.headDim()),
                q.dtype());
        return sh;
    }

    private Tensor deal(Tensor global, int rank, long local) {
        return dealAs(global, global.dtype(), rank, local);
    }

    private Tensor dealAs(Tensor global, DType as, int rank, long local) {
        Tensor t = dealt[rank].allocate(as, global.size(0), local, global.size(2), global.size(3));
        options.layout().shard(global, t, 1, mesh, rank, backends[rank]::copy);
        return t;
    }

    private List<Map<TrafficKind, Long>> snapshotTraffic() {
        List<Map<TrafficKind, Long>> list = new ArrayList<>();
        for (TrafficCounter c : world.traffic()) {
            list.add(Map.copyOf(c.snapshot()));
        }
        return List.copyOf(list);
    }

    private void releaseRankState() {
        for (int r = 0; r < saved.length; r++) {
            if (saved[r] != null) {
                saved[r].close();
                saved[r] = null;
            }
            if (dealt[r] != null) {
                dealt[r].close();
                dealt[r] = null;
            }
        }
        shapes = null;
    }

    private void closeBackends() {
        for (Backend b : backends) {
            if (b != null) {
                b.close();
            }
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("InProcessAttention is closed");
        }
    }

    private static void requireHost(String name, Tensor t) {
        if (!t.isHost()) {
            throw new IllegalArgumentException(name + " " + t.describe() + " must be a host tensor");
        }
    }
}
