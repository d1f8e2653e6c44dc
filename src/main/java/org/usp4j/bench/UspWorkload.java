package org.usp4j.bench;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiFunction;
import java.util.function.IntFunction;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.Forward;
import org.usp4j.sp.Mesh;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.SequenceParallelAttention;
import org.usp4j.sp.UspAttention;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * USP on {@code mesh.size()} in-process ranks with random inputs dealt to the ranks once, so that the
 * timed calls measure the distributed attention itself: each rank's Ulysses exchanges, ring steps and
 * kernels, not the dealing and gathering of global tensors (which {@link org.usp4j.sp.InProcessAttention}
 * does around every call). Each {@link #forward} replaces the previous one's saved state; one
 * {@link #backward} may follow each forward.
 *
 * <p>Ranks run on one thread each; a call's time is the span from the first rank's start to the last
 * rank's finish, measured on the host or, for GPU ranks, with CUDA events on the ranks' streams.
 */
public final class UspWorkload implements AutoCloseable {

    /** One timed call: its span in seconds and the bytes each rank sent during it. */
    public record Measurement(double seconds, List<Map<TrafficKind, Long>> bytesSent) {

        /** The largest total any rank sent (all ranks send the same under USP). */
        public long maxBytesPerRank() {
            long max = 0;
            for (Map<TrafficKind, Long> rank : bytesSent) {
                max = Math.max(max, rank.values().stream().mapToLong(Long::longValue).sum());
            }
            return max;
        }
    }

    private final Mesh mesh;
    private final AttentionOptions options;
    private final AttentionProblem problem;
    private final Backend[] backends;
    private final LocalWorld world;
    private final MeshGroups[] groups;
    private final SequenceParallelAttention[] ranks;
    private final TensorAllocator[] inputMemory;
    private final Tensor[][] inputs; // per rank: q, k, v, dout
    private final Forward[] saved;
    private final RankClocks clocks;
    private boolean backwardDone = true;
    private boolean closed;

    private UspWorkload(Mesh mesh, AttentionOptions options, AttentionProblem problem, Backend[] backends,
                        LocalWorld world, MeshGroups[] groups,
                        BiFunction<MeshGroups, Backend, SequenceParallelAttention> strategy) {
        this.mesh = mesh;
        this.options = options;
        this.problem = problem;
        this.backends = backends;
        this.world = world;
        this.groups = groups;
        int p = mesh.size();
        this.ranks = new SequenceParallelAttention[p];
        this.inputMemory = new TensorAllocator[p];
        this.inputs = new Tensor[p][];
        this.saved = new Forward[p];
        for (int r = 0; r < p; r++) {
            ranks[r] = strategy.apply(groups[r], backends[r]);
        }
        this.clocks = allCuda(backends) ? RankClocks.cuda(cudaBackends(backends)) : RankClocks.host(p);
    }

    /**
     * Opens the ranks (backends from {@code backendPerRank}, owned and closed by the workload), checks that
     * {@code problem} fits the mesh and layout, and deals standard-normal q, k, v and dout (from
     * {@code seed}) to the ranks. Shape problems are {@link IllegalArgumentException}s before any rank
     * starts.
     */
    public static UspWorkload open(Mesh mesh, AttentionOptions options, AttentionProblem problem,
                                   IntFunction<Backend> backendPerRank, long seed) {
        return open(mesh, options, problem, backendPerRank, seed,
                (groups, backend) -> new UspAttention(groups, backend, options));
    }

    /**
     * As above with another strategy on every rank (made from the rank's groups and backend); {@code options}
     * gives the layout the inputs are dealt by.
     */
    public static UspWorkload open(Mesh mesh, AttentionOptions options, AttentionProblem problem,
                                   IntFunction<Backend> backendPerRank, long seed,
                                   BiFunction<MeshGroups, Backend, SequenceParallelAttention> strategy) {
        Objects.requireNonNull(strategy, "strategy");
        Objects.requireNonNull(mesh, "mesh");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(problem, "problem");
        Objects.requireNonNull(backendPerRank, "backendPerRank");
        options.layout().validate(problem.seq(), mesh);
        int p = mesh.size();
        Backend[] backends = new Backend[p];
        LocalWorld world = null;
        MeshGroups[] groups = new MeshGroups[p];
        UspWorkload workload = null;
        try {
            for (int r = 0; r < p; r++) {
                backends[r] = Objects.requireNonNull(backendPerRank.apply(r), "backend of rank " + r);
            }
            world = new LocalWorld(p, LocalWorld.DEFAULT_TIMEOUT.plus(Duration.ofMinutes(4)),
                    rank -> LocalTransport.of(backends[rank]));
            world.run((rank, comm) -> groups[rank] = MeshGroups.split(mesh, comm));
            workload = new UspWorkload(mesh, options, problem, backends, world, groups, strategy);
            workload.validate();
            workload.deal(seed);
            return workload;
        } catch (RuntimeException | Error e) {
            if (workload != null) {
                workload.close();
            } else {
                for (MeshGroups g : groups) {
                    if (g != null) {
                        g.close();
                    }
                }
                if (world != null) {
                    world.close();
                }
                for (Backend b : backends) {
                    if (b != null) {
                        b.close();
                    }
                }
            }
            throw e;
        }
    }

    public Mesh mesh() {
        return mesh;
    }

    public AttentionOptions options() {
        return options;
    }

    public AttentionProblem problem() {
        return problem;
    }

    /** Runs the forward on every rank and measures it. */
    public Measurement forward() {
        requireOpen();
        releaseSaved();
        return measure(rank -> {
            Tensor[] in = inputs[rank];
            saved[rank] = ranks[rank].forward(in[0], in[1], in[2]);
        });
    }

    /** Runs the backward of the last forward on every rank and measures it. */
    public Measurement backward() {
        requireOpen();
        if (saved[0] == null || backwardDone) {
            throw new IllegalStateException("backward needs a forward of its own first");
        }
        backwardDone = true;
        return measure(rank -> ranks[rank].backward(saved[rank], inputs[rank][3]));
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        releaseSaved();
        for (TensorAllocator a : inputMemory) {
            if (a != null) {
                a.close();
            }
        }
        clocks.close();
        for (MeshGroups g : groups) {
            if (g != null) {
                g.close();
            }
        }
        world.close();
        for (Backend b : backends) {
            b.close();
        }
    }

    private interface RankWork {
        void run(int rank);
    }

    private Measurement measure(RankWork work) {
        world.traffic().forEach(TrafficCounter::reset);
        world.run((rank, comm) -> {
            clocks.start(rank);
            work.run(rank);
            clocks.stop(rank);
            backends[rank].synchronize();
            return null;
        });
        double seconds = clocks.spanSeconds();
        List<Map<TrafficKind, Long>> bytes = new ArrayList<>();
        for (TrafficCounter c : world.traffic()) {
            bytes.add(Map.copyOf(c.snapshot()));
        }
        return new Measurement(seconds, List.copyOf(bytes));
    }

    private void validate() {
        long local = problem.seq() / mesh.size();
        ranks[0].validate(new AttentionShapes(problem.batch(), local, local, problem.heads(), problem.kvHeads(),
                problem.headDim()), problem.dtype());
    }

    /** Global random tensors in host memory, each rank's share copied to its device, the global ones freed. */
    private void deal(long seed) {
        AttentionProblem pr = problem;
        long local = pr.seq() / mesh.size();
        try (Arena arena = Arena.ofConfined()) {
            Tensor[] global = {
                Tensor.allocate(arena, pr.dtype(), pr.batch(), pr.seq(), pr.heads(), pr.headDim()),
                Tensor.allocate(arena, pr.dtype(), pr.batch(), pr.seq(), pr.kvHeads(), pr.headDim()),
                Tensor.allocate(arena, pr.dtype(), pr.batch(), pr.seq(), pr.kvHeads(), pr.headDim()),
                Tensor.allocate(arena, pr.dtype(), pr.batch(), pr.seq(), pr.heads(), pr.headDim())};
            for (int i = 0; i < global.length; i++) {
                HostTensors.fillNormal(global[i], seed + i);
            }
            for (int r = 0; r < mesh.size(); r++) {
                inputMemory[r] = backends[r].newAllocator();
                inputs[r] = new Tensor[global.length];
                for (int i = 0; i < global.length; i++) {
                    Tensor g = global[i];
                    Tensor t = inputMemory[r].allocate(g.dtype(), g.size(0), local, g.size(2), g.size(3));
                    options.layout().shard(g, t, 1, mesh, r, backends[r]::copy);
                    inputs[r][i] = t;
                }
                backends[r].synchronize(); // the host tensors go away with the arena
            }
        }
    }

    private void releaseSaved() {
        for (int r = 0; r < saved.length; r++) {
            if (saved[r] != null) {
                saved[r].close();
                saved[r] = null;
            }
        }
        backwardDone = false;
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the workload is closed");
        }
    }

    private static boolean allCuda(Backend[] backends) {
        for (Backend b : backends) {
            if (!(b instanceof CudaBackend)) {
                return false;
            }
        }
        return true;
    }

    private static CudaBackend[] cudaBackends(Backend[] backends) {
        CudaBackend[] cuda = new CudaBackend[backends.length];
        for (int i = 0; i < backends.length; i++) {
            cuda[i] = (CudaBackend) backends[i];
        }
        return cuda;
    }
}
