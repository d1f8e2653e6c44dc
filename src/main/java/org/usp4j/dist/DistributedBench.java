package org.usp4j.dist;

import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.Forward;
import org.usp4j.sp.Mesh;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.UlyssesAllToAll;
import org.usp4j.sp.UspAttention;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * One process's part of a multi-process benchmark of USP: every rank makes the same standard-normal
 * global q, k, v and dout from the shared seed (as the in-process benchmark does: seed, seed+1, seed+2,
 * seed+3), keeps its own shard on its device, and times {@code warmup + repeat} calls of the distributed
 * forward (and backward). Each call starts after a store barrier, so the ranks start together, and ends
 * when the rank's device work is done; the call's time is the slowest rank's. Rank 0 gets every rank's
 * times and bytes through the store.
 *
 * <p>Collective: every rank calls {@link #run} with the same arguments.
 */
public final class DistributedBench {


    private DistributedBench() {
    }

    /** What one rank measured: its timed calls' seconds and the bytes it sent in one call of each pass. */
    public record RankTimes(int rank, int device, List<Double> forwardSeconds, List<Double> backwardSeconds,
                            Map<TrafficKind, Long> forwardBytes, Map<TrafficKind, Long> backwardBytes) {
        public RankTimes {
            forwardSeconds = List.copyOf(forwardSeconds);
            backwardSeconds = List.copyOf(backwardSeconds);
            forwardBytes = Map.copyOf(forwardBytes);
            backwardBytes = Map.copyOf(backwardBytes);
        }
    }

    /** Every rank's times on rank 0 (only its own elsewhere), in rank order. */
    public record Measurement(List<RankTimes> ranks) {
        public Measurement {
            ranks = List.copyOf(ranks);
        }

        /** Per timed call, the slowest rank's forward seconds. */
        public List<Double> forwardSpans() {
            return spans(true);
        }

        /** Per timed call, the slowest rank's backward seconds (empty without a backward). */
        public List<Double> backwardSpans() {
            return spans(false);
        }

        private List<Double> spans(boolean forward) {
            List<Double> spans = new ArrayList<>();
            int calls = forward ? ranks.getFirst().forwardSeconds().size() : ranks.getFirst().backwardSeconds().size();
            for (int i = 0; i < calls; i++) {
                double max = 0;
                for (RankTimes r : ranks) {
                    max = Math.max(max, (forward ? r.forwardSeconds() : r.backwardSeconds()).get(i));
                }
                spans.add(max);
            }
            return spans;
        }
    }

    /**
     * Measures one configuration on this rank; see the class comment.
     *
     * @throws IllegalArgumentException before any communication when the world does not match the mesh or
     *                                  the problem does not fit it
     */
    public static Measurement run(DistributedAttention.Rank rank, Mesh mesh, AttentionOptions options,
                                  AttentionProblem problem, long seed, int warmup, int repeat, boolean backward) {
        Objects.requireNonNull(rank, "rank");
        Objects.requireNonNull(mesh, "mesh");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(problem, "problem");
        if (warmup < 0 || repeat < 1) {
            throw new IllegalArgumentException("warmup must be >= 0 and repeat >= 1, got " + warmup + " and " + repeat);
        }
        Communicator world = rank.world();
        Backend backend = rank.backend();
        if (world.size() != mesh.size() || rank.rendezvous().worldSize() != mesh.size()) {
            throw new IllegalArgumentException("mesh " + mesh.ulysses() + "x" + mesh.ring() + " needs " + mesh.size()
                    + " ranks, but the world has " + world.size());
        }
        options.layout().validate(problem.seq(), mesh);
        UlyssesAllToAll.validateHeads(problem.heads(), problem.kvHeads(), mesh.ulysses());
        int me = world.rank();
        long local = problem.seq() / mesh.size();
        try (MeshGroups groups = MeshGroups.split(mesh, world);
             TensorAllocator memory = backend.newAllocator()) {
            UspAttention usp = new UspAttention(groups, backend, options);
            usp.validate(new AttentionShapes(problem.batch(), local, local, problem.heads(), problem.kvHeads(),
                    problem.headDim()), problem.dtype());
            Tensor[] in = shards(problem, seed, mesh, options, me, local, memory, backend);
            List<Double> fwd = new ArrayList<>();
            List<Double> bwd = new ArrayList<>();
            Map<TrafficKind, Long> fwdBytes = Map.of();
            Map<TrafficKind, Long> bwdBytes = Map.of();
            for (int i = 0; i < warmup + repeat; i++) {
                world.barrier();
                Map<TrafficKind, Long> t0Bytes = world.traffic().snapshot();
                long t0 = System.nanoTime();
                try (Forward f = usp.forward(in[0], in[1], in[2])) {
                    backend.synchronize();
                    rank.checkHealthy();
                    double forwardSeconds = (System.nanoTime() - t0) / 1e9;
                    Map<TrafficKind, Long> forwardSent = world.traffic().since(t0Bytes);
                    Map<TrafficKind, Long> t1Bytes = world.traffic().snapshot();
                    if (i >= warmup) {
                        fwd.add(forwardSeconds);
                        fwdBytes = forwardSent;
                    }
                    if (backward) {
                        world.barrier();
                        long t1 = System.nanoTime();
                        usp.backward(f, in[3]);
                        backend.synchronize();
                        rank.checkHealthy();
                        if (i >= warmup) {
                            bwd.add((System.nanoTime() - t1) / 1e9);
                            bwdBytes = world.traffic().since(t1Bytes);
                        }
                    }
                }
            }
            RankTimes mine = new RankTimes(me, rank.device(), fwd, bwd, fwdBytes, bwdBytes);
            return new Measurement(exchange(rank.rendezvous(), mine));
        }
    }

    /** This rank's shards of the global inputs made from {@code seed}, on its device. */
    private static Tensor[] shards(AttentionProblem p, long seed, Mesh mesh, AttentionOptions options, int rank,
                                   long local, TensorAllocator memory, Backend backend) {
        long[][] shapes = {
            {p.batch(), p.seq(), p.heads(), p.headDim()},
            {p.batch(), p.seq(), p.kvHeads(), p.headDim()},
            {p.batch(), p.seq(), p.kvHeads(), p.headDim()},
            {p.batch(), p.seq(), p.heads(), p.headDim()}};
        Tensor[] mine = new Tensor[shapes.length];
        for (int i = 0; i < shapes.length; i++) {
            try (Arena arena = Arena.ofConfined()) { // one global tensor at a time
                Tensor global = Tensor.allocate(arena, p.dtype(), shapes[i]);
                HostTensors.fillNormal(global, seed + i);
                mine[i] = memory.allocate(p.dtype(), p.batch(), local, shapes[i][2], p.headDim());
                options.layout().shard(global, mine[i], 1, mesh, rank, backend::copy);
                backend.synchronize(); // before the host tensor goes away
            }
        }
        return mine;
    }

    /** Every rank's times to rank 0 through the store (the others get their own). */
    private static List<RankTimes> exchange(Rendezvous rendezvous, RankTimes mine) {
        List<byte[]> published = rendezvous.gatherToRoot("bench/times", encode(mine));
        if (rendezvous.rank() != 0) {
            return List.of(mine);
        }
        List<RankTimes> all = new ArrayList<>();
        for (int r = 0; r < published.size(); r++) {
            all.add(decode(r, new String(published.get(r), StandardCharsets.US_ASCII)));
        }
        return all;
    }

    /** "device;f1,f2;b1,b2;a2a,p2p,ag;a2a,p2p,ag". */
    private static byte[] encode(RankTimes t) {
        return (t.device() + ";" + join(t.forwardSeconds()) + ";" + join(t.backwardSeconds()) + ";"
                + bytes(t.forwardBytes()) + ";" + bytes(t.backwardBytes())).getBytes(StandardCharsets.US_ASCII);
    }

    private static RankTimes decode(int rank, String s) {
        String[] parts = s.split(";", -1);
        if (parts.length != 5) {
            throw new IllegalStateException("rank " + rank + " published malformed times: " + s);
        }
        return new RankTimes(rank, Integer.parseInt(parts[0]), doubles(parts[1]), doubles(parts[2]),
                bytes(parts[3]), bytes(parts[4]));
    }

    private static String join(List<Double> values) {
        return String.join(",", values.stream().map(String::valueOf).toList());
    }

    private static List<Double> doubles(String csv) {
        return csv.isEmpty() ? List.of() : java.util.Arrays.stream(csv.split(",")).map(Double::valueOf).toList();
    }

    private static String bytes(Map<TrafficKind, Long> m) {
        List<String> values = new ArrayList<>();
        for (TrafficKind kind : TrafficKind.values()) {
            values.add(String.valueOf(m.getOrDefault(kind, 0L)));
        }
        return String.join(",", values);
    }

    private static Map<TrafficKind, Long> bytes(String csv) {
        String[] parts = csv.split(",");
        Map<TrafficKind, Long> m = new EnumMap<>(TrafficKind.class);
        for (TrafficKind kind : TrafficKind.values()) {
            m.put(kind, Long.parseLong(parts[kind.ordinal()]));
        }
        return m;
    }
}
