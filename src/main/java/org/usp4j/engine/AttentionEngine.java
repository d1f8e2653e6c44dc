package org.usp4j.engine;

import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.IntConsumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.PairCountingKernel;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.sp.Forward;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.SequenceParallelAttention;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The one path from global tensors to distributed attention and back: it deals global host tensors to
 * the ranks by the plan's layout, runs the plan's strategy on every rank of any {@link Ranks} (in-process
 * CPU or device ranks, or this process's rank of a launched NCCL job), measures each rank's time and
 * bytes, and gathers the results into global order on the root. Every command and benchmark uses it.
 *
 * <p>Each forward replaces the saved state of the previous one; a backward uses the last forward. Every
 * shape, divisibility and dtype problem is an {@link IllegalArgumentException} thrown before any rank
 * starts. Not for concurrent use. It owns the {@link Ranks} it was given and closes them.
 *
 * <p>Packed variable-length sequences: the overloads with {@link SequenceBoundaries} take the global
 * {@code cu_seqlens} of the dealt tensors (b = 1); the layout deals and gathers by them and every rank's
 * strategy keeps attention inside each sequence. Without them the whole sequence is one.
 */
public final class AttentionEngine implements AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(AttentionEngine.class);

    /**
     * One rank's part of one pass: its own seconds, the bytes it sent, and the unmasked (query, key) pairs
     * its kernel calls computed (summed over batch and heads; see {@link PairCountingKernel}).
     */
    public record RankPass(int rank, double seconds, RankBytes bytes, long attentionPairs) {
    }

    /** One pass over the hosted ranks: from the earliest start to the latest stop, and each rank's part. */
    public record Pass(double spanSeconds, List<RankPass> ranks) {
        public Pass {
            ranks = List.copyOf(ranks);
        }

        /** The most any hosted rank sent. */
        public long maxBytesPerRank() {
            return ranks.stream().mapToLong(r -> r.bytes().total()).max().orElse(0);
        }
    }

    /**
     * What one rank did over one or more calls: its device (-1 on the host), the seconds of each timed
     * call of each pass (empty without a backward), and the bytes it sent and the attention pairs its
     * kernels computed in one call of each pass (0 without a backward).
     */
    public record RankFigures(int rank, int device, List<Double> forwardSeconds, List<Double> backwardSeconds,
                              RankBytes forwardBytes, RankBytes backwardBytes, long forwardPairs,
                              long backwardPairs) {
        public RankFigures {
            forwardSeconds = List.copyOf(forwardSeconds);
            backwardSeconds = List.copyOf(backwardSeconds);
            Objects.requireNonNull(forwardBytes, "forwardBytes");
            Objects.requireNonNull(backwardBytes, "backwardBytes");
        }

        /** Forward plus backward bytes of one call. */
        public RankBytes bytesSent() {
            return forwardBytes.plus(backwardBytes);
        }
    }

    /**
     * A run as this process sees it: on the root the results in global order (null where not gathered)
     * and every rank's figures in rank order; elsewhere null results and the figures of the hosted ranks.
     * Spans: per timed call, from the earliest start to the latest stop over all ranks.
     */
    public record Result(ForwardResult forward, Gradients gradients, List<RankFigures> ranks,
                         List<Double> forwardSpans, List<Double> backwardSpans) {
        public Result {
            ranks = List.copyOf(ranks);
            forwardSpans = List.copyOf(forwardSpans);
            backwardSpans = List.copyOf(backwardSpans);
        }

        /**
         * The balance of the ranks' work in one call of the forward (or backward): the most attention pairs
         * any rank computed over the fewest; infinite when a rank computed none, NaN when no rank did.
         */
        public double pairsSpread(boolean forward) {
            long max = 0;
            long min = Long.MAX_VALUE;
            for (RankFigures f : ranks) {
                long n = forward ? f.forwardPairs() : f.backwardPairs();
                max = Math.max(max, n);
                min = Math.min(min, n);
            }
            return ranks.isEmpty() || max == 0 ? Double.NaN : min == 0 ? Double.POSITIVE_INFINITY : (double) max / min;
        }
    }

    private final Ranks ranks;
    private final UspPlan plan;
    private final Mesh mesh;
    private final int[] hosted;
    private final MeshGroups[] groups;
    private final SequenceParallelAttention[] strategies;
    private final PairCountingBackend[] counted; // what each hosted rank's strategy computes on
    private final TensorAllocator[] dealt;
    private final Tensor[][] inputs; // per rank: q, k, v, dout (null until dealt)
    private final Forward[] saved;
    private final Gradients[] gradients;
    private final RankClocks clocks;
    private AttentionShapes shapes;
    private SequenceBoundaries sequences; // of the dealt inputs: one sequence unless packed
    private DType dtype;
    private boolean backwardDone;
    private Pass lastForward;
    private Pass lastBackward;
    private boolean alignStarts; // timed calls start with a world barrier (benchmarks)
    private boolean closed;

    /** Collective over the ranks: splits the world into the plan's mesh groups and makes each rank's strategy. */
    public AttentionEngine(Ranks ranks, UspPlan plan) {
        this.ranks = Objects.requireNonNull(ranks, "ranks");
        this.plan = Objects.requireNonNull(plan, "plan");
        this.mesh = plan.mesh();
        int p = mesh.size();
        this.hosted = ranks.hosted();
        this.groups = new MeshGroups[p];
        this.strategies = new SequenceParallelAttention[p];
        this.counted = new PairCountingBackend[p];
        this.dealt = new TensorAllocator[p];
        this.inputs = new Tensor[p][];
        this.saved = new Forward[p];
        this.gradients = new Gradients[p];
        RankClocks made = null;
        try {
            if (ranks.size() != p) {
                throw new IllegalArgumentException("mesh " + mesh.ulysses() + "x" + mesh.ring() + " needs " + p
                        + " ranks, but the world has " + ranks.size());
            }
            ranks.run(r -> groups[r] = MeshGroups.split(mesh, ranks.world(r)));
            for (int r : hosted) {
                counted[r] = new PairCountingBackend(ranks.backend(r));
                strategies[r] = plan.create(groups[r], counted[r]);
            }
            made = allCuda() ? RankClocks.cuda(cudaBackends()) : RankClocks.host(hosted.length);
        } catch (RuntimeException | Error e) {
            closeGroups();
            ranks.close();
            throw e;
        }
        this.clocks = made;
        LOG.debug("attention engine: {} on {} hosted of {} ranks", plan, hosted.length, p);
    }

    /** Opens {@code size} in-process ranks (backends from {@code backendPerRank}, owned) and the engine on them. */
    public static AttentionEngine inProcess(UspPlan plan, java.util.function.IntFunction<Backend> backendPerRank,
                                            java.time.Duration timeout) {
        return new AttentionEngine(new InProcessRanks(plan.mesh().size(), backendPerRank, timeout), plan);
    }

    /** As above, with the in-process world's default wait for peers. */
    public static AttentionEngine inProcess(UspPlan plan, java.util.function.IntFunction<Backend> backendPerRank) {
        return inProcess(plan, backendPerRank, org.usp4j.comm.local.LocalWorld.DEFAULT_TIMEOUT);
    }

    public UspPlan plan() {
        return plan;
    }

    public Ranks ranks() {
        return ranks;
    }

    /**
     * Throws an {@link IllegalArgumentException} naming the values when a call of these global shapes
     * cannot run: the plan's rules and every hosted rank's strategy and kernel. No communication.
     */
    public void validate(AttentionShapes global, DType dtype) {
        validate(global, dtype, null);
    }

    /** As {@link #validate(AttentionShapes, DType)}, for packed sequences with these boundaries (null: one). */
    public void validate(AttentionShapes global, DType dtype, SequenceBoundaries sequences) {
        Objects.requireNonNull(global, "global");
        Objects.requireNonNull(dtype, "dtype");
        if (global.batch() <= 0 || global.seqQ() <= 0 || global.heads() <= 0 || global.kvHeads() <= 0
                || global.headDim() <= 0) {
            throw new IllegalArgumentException("q has an empty dimension: " + global);
        }
        AttentionShapes local = plan.localShapes(global);
        plan.validate(global, sequences);
        for (int r : hosted) {
            strategies[r].validate(local, dtype, sequences);
        }
    }

    /** The checks of {@link #validate(AttentionShapes, DType)} on global host q, k, v and (if given) dout. */
    public AttentionShapes validate(Tensor q, Tensor k, Tensor v, Tensor dout) {
        return validate(q, k, v, dout, null);
    }

    /** As {@link #validate(Tensor, Tensor, Tensor, Tensor)}, for packed sequences (null: one sequence). */
    public AttentionShapes validate(Tensor q, Tensor k, Tensor v, Tensor dout, SequenceBoundaries sequences) {
        Objects.requireNonNull(q, "q");
        Objects.requireNonNull(k, "k");
        Objects.requireNonNull(v, "v");
        List<Tensor> all = dout == null ? List.of(q, k, v) : List.of(q, k, v, dout);
        for (Tensor t : all) {
            if (!t.isHost()) {
                throw new IllegalArgumentException("the engine deals global host tensors, got " + t.describe());
            }
            if (t.dtype() != q.dtype()) {
                throw new IllegalArgumentException("q, k and v (and do) must have one dtype, got " + q.dtype() + " and "
                        + t.dtype());
            }
        }
        AttentionShapes sh = AttentionShapes.of(q, k, v);
        if (sh.batch() <= 0 || sh.heads() <= 0 || sh.headDim() <= 0 || sh.seqQ() <= 0) {
            throw new IllegalArgumentException("q has an empty dimension: " + Arrays.toString(q.shape()));
        }
        if (dout != null) {
            sh.requireQueryShaped("dout", dout);
        }
        validate(sh, q.dtype(), sequences);
        return sh;
    }

    /** Deals global host q, k, v (and dout for a backward, or null) to the hosted ranks. */
    public void deal(Tensor q, Tensor k, Tensor v, Tensor dout) {
        deal(q, k, v, dout, null);
    }

    /** Deals packed sequences with these global boundaries (null: one sequence). */
    public void deal(Tensor q, Tensor k, Tensor v, Tensor dout, SequenceBoundaries packed) {
        requireOpen();
        AttentionShapes sh = validate(q, k, v, dout, packed);
        releaseState();
        shapes = sh;
        sequences = packed != null ? packed : SequenceBoundaries.single(sh.seqQ());
        dtype = q.dtype();
        for (int r : hosted) {
            dealt[r] = ranks.backend(r).newAllocator();
            inputs[r] = new Tensor[] {shard(q, r), shard(k, r), shard(v, r), dout == null ? null : shard(dout, r)};
        }
        synchronizeHosted(); // the global tensors are the caller's
    }

    /**
     * Deals standard-normal q, k, v and dout made from {@code seed} (seed, seed+1, seed+2, seed+3), one
     * global tensor at a time, so that every process of a launched job deals the same inputs.
     */
    public void dealRandom(AttentionShapes global, DType type, long seed) {
        dealRandom(global, type, seed, null);
    }

    /** As {@link #dealRandom(AttentionShapes, DType, long)}, for packed sequences (null: one sequence). */
    public void dealRandom(AttentionShapes global, DType type, long seed, SequenceBoundaries packed) {
        requireOpen();
        validate(global, type, packed);
        releaseState();
        shapes = global;
        sequences = packed != null ? packed : SequenceBoundaries.single(global.seqQ());
        dtype = type;
        long[][] shapesOf = {
            {global.batch(), global.seqQ(), global.heads(), global.headDim()},
            {global.batch(), global.seqKv(), global.kvHeads(), global.headDim()},
            {global.batch(), global.seqKv(), global.kvHeads(), global.headDim()},
            {global.batch(), global.seqQ(), global.heads(), global.headDim()}};
        for (int r : hosted) {
            dealt[r] = ranks.backend(r).newAllocator();
            inputs[r] = new Tensor[shapesOf.length];
        }
        for (int i = 0; i < shapesOf.length; i++) {
            try (Arena arena = Arena.ofConfined()) {
                Tensor g = Tensor.allocate(arena, type, shapesOf[i]);
                HostTensors.fillNormal(g, seed + i);
                for (int r : hosted) {
                    inputs[r][i] = shard(g, r);
                }
                synchronizeHosted(); // before the host tensor goes away
            }
        }
    }

    /** Runs the forward on every rank on the dealt inputs; keeps what the backward needs. */
    public Pass forward() {
        requireOpen();
        requireDealt();
        releaseSaved();
        lastBackward = null;
        lastForward = timed(r -> {
            Tensor[] in = inputs[r];
            saved[r] = strategies[r].forward(in[0], in[1], in[2], sequences);
        });
        backwardDone = false;
        return lastForward;
    }

    /** Runs the backward of the last forward on every rank, with the dealt dout. */
    public Pass backward() {
        requireOpen();
        if (saved[hosted[0]] == null || backwardDone) {
            throw new IllegalStateException("backward needs a forward of its own first");
        }
        if (inputs[hosted[0]][3] == null) {
            throw new IllegalStateException("backward needs a dout: deal one with the inputs");
        }
        backwardDone = true;
        lastBackward = timed(r -> gradients[r] = strategies[r].backward(saved[r], inputs[r][3]));
        return lastBackward;
    }

    /**
     * In-process convenience: deals q, k, v, runs the forward and gathers out [b,S,h,d] (q's dtype) and
     * lse [b,h,S] F32 (null for linear attention) into {@code arena}.
     */
    public ForwardResult forward(Tensor q, Tensor k, Tensor v, Arena arena) {
        return forward(q, k, v, null, arena);
    }

    /** As {@link #forward(Tensor, Tensor, Tensor, Arena)}, for packed sequences (null: one sequence). */
    public ForwardResult forward(Tensor q, Tensor k, Tensor v, SequenceBoundaries packed, Arena arena) {
        deal(q, k, v, null, packed);
        forward();
        return gatherForward(arena);
    }

    /** In-process convenience: deals dout for the last forward, runs the backward, gathers dq, dk, dv. */
    public Gradients backward(Tensor dout, Arena arena) {
        requireOpen();
        if (shapes == null || saved[hosted[0]] == null) {
            throw new IllegalStateException("backward needs a forward first");
        }
        Objects.requireNonNull(dout, "dout");
        if (!dout.isHost()) {
            throw new IllegalArgumentException("dout " + dout.describe() + " must be a host tensor");
        }
        shapes.requireQueryShaped("dout", dout);
        for (int r : hosted) {
            Tensor t = dealt[r].allocate(dtype, dout.size(0), dout.size(1) / mesh.size(), dout.size(2), dout.size(3));
            plan.options().layout().shard(dout, t, 1, mesh, r, sequences, ranks.backend(r)::copy);
            inputs[r][3] = t;
        }
        synchronizeHosted();
        backward();
        return gatherGradients(arena);
    }

    /** Collective: the last forward's out and lse in global order on the root (null elsewhere). */
    public ForwardResult gatherForward(Arena arena) {
        requireOpen();
        if (saved[hosted[0]] == null) {
            throw new IllegalStateException("nothing to gather: no forward ran");
        }
        boolean root = ranks.hostsRoot();
        AttentionShapes sh = shapes;
        SequenceLayout layout = plan.options().layout();
        Tensor out = root ? Tensor.allocate(arena, dtype, sh.batch(), sh.seqQ(), sh.heads(), sh.headDim()) : null;
        // Linear attention has no lse; the strategy is the same on every rank, so every rank skips it alike.
        boolean hasLse = saved[hosted[0]].lse() != null;
        Tensor lse = root && hasLse ? Tensor.allocate(arena, DType.F32, sh.batch(), sh.heads(), sh.seqQ()) : null;
        ranks.gather(r -> saved[r].out(), (r, piece, copy) -> layout.unshard(piece, out, 1, mesh, r, sequences, copy));
        if (!hasLse) {
            return root ? new ForwardResult(out, null) : null;
        }
        // A rank's lse: its Ulysses heads over its whole ring block (see UspAttention).
        long headsPerRank = sh.heads() / mesh.ulysses();
        Mesh rings = new Mesh(1, mesh.ring());
        ranks.gather(r -> saved[r].lse(), (r, piece, copy) -> layout.unshard(piece,
                lse.slice(1, mesh.ulyssesRank(r) * headsPerRank, headsPerRank), 2, rings, mesh.ringRank(r), sequences,
                copy));
        return root ? new ForwardResult(out, lse) : null;
    }

    /** Collective: the last backward's dq, dk, dv in global order on the root (null elsewhere). */
    public Gradients gatherGradients(Arena arena) {
        requireOpen();
        if (!backwardDone || gradients[hosted[0]] == null) {
            throw new IllegalStateException("nothing to gather: no backward ran");
        }
        boolean root = ranks.hostsRoot();
        AttentionShapes sh = shapes;
        Tensor dq = root ? Tensor.allocate(arena, dtype, sh.batch(), sh.seqQ(), sh.heads(), sh.headDim()) : null;
        Tensor dk = root ? Tensor.allocate(arena, dtype, sh.batch(), sh.seqKv(), sh.kvHeads(), sh.headDim()) : null;
        Tensor dv = root ? Tensor.allocate(arena, dtype, sh.batch(), sh.seqKv(), sh.kvHeads(), sh.headDim()) : null;
        SequenceLayout layout = plan.options().layout();
        ranks.gather(r -> gradients[r].dq(), (r, piece, copy) -> layout.unshard(piece, dq, 1, mesh, r, sequences,
                copy));
        ranks.gather(r -> gradients[r].dk(), (r, piece, copy) -> layout.unshard(piece, dk, 1, mesh, r, sequences,
                copy));
        ranks.gather(r -> gradients[r].dv(), (r, piece, copy) -> layout.unshard(piece, dv, 1, mesh, r, sequences,
                copy));
        return root ? new Gradients(dq, dk, dv) : null;
    }

    /**
     * One whole call, collective: deals q, k, v (and dout, or null for the forward only), runs the forward
     * (and backward), gathers the results on the root into {@code arena}, and collects every rank's figures.
     */
    public Result run(Tensor q, Tensor k, Tensor v, Tensor dout, Arena arena) {
        return run(q, k, v, dout, null, arena);
    }

    /** As {@link #run(Tensor, Tensor, Tensor, Tensor, Arena)}, for packed sequences (null: one sequence). */
    public Result run(Tensor q, Tensor k, Tensor v, Tensor dout, SequenceBoundaries packed, Arena arena) {
        deal(q, k, v, dout, packed);
        Pass f = forward();
        Pass b = dout != null ? backward() : null;
        ForwardResult out = gatherForward(arena);
        Gradients grads = b != null ? gatherGradients(arena) : null;
        return collect(out, grads, List.of(f), b == null ? List.of() : List.of(b));
    }

    /**
     * Times {@code warmup + repeat} calls on the dealt inputs (forward, and backward when asked), calling
     * {@code beforeCall} with each call's index first; collective. Results are not gathered.
     */
    public Result measure(int warmup, int repeat, boolean withBackward, IntConsumer beforeCall) {
        if (warmup < 0 || repeat < 1) {
            throw new IllegalArgumentException("warmup must be >= 0 and repeat >= 1, got " + warmup + " and " + repeat);
        }
        List<Pass> forwards = new ArrayList<>();
        List<Pass> backwards = new ArrayList<>();
        alignStarts = true;
        try {
            for (int i = 0; i < warmup + repeat; i++) {
                beforeCall.accept(i);
                Pass f = forward();
                Pass b = withBackward ? backward() : null;
                if (i >= warmup) {
                    forwards.add(f);
                    if (b != null) {
                        backwards.add(b);
                    }
                }
            }
        } finally {
            alignStarts = false;
        }
        return collect(null, null, forwards, backwards);
    }

    /** The figures of the last forward's pass (null before one). */
    public Pass lastForward() {
        return lastForward;
    }

    /** The figures of the last backward's pass (null before one, or after a newer forward). */
    public Pass lastBackward() {
        return lastBackward;
    }

    /** Frees every rank's state, closes the mesh groups and the ranks. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            releaseState();
            clocks.close();
            closeGroups();
        } finally {
            ranks.close();
        }
    }

    private interface RankWork {
        void run(int rank);
    }

    private Pass timed(RankWork work) {
        RankBytes[] bytes = new RankBytes[mesh.size()];
        long[] pairs = new long[mesh.size()];
        ranks.run(r -> {
            Communicator world = ranks.world(r);
            Backend backend = ranks.backend(r);
            int slot = slot(r);
            if (alignStarts) {
                world.barrier(); // the ranks start together
            }
            Map<TrafficKind, Long> before = world.traffic().snapshot();
            long pairsBefore = counted[r].pairs();
            clocks.start(slot);
            work.run(r);
            if (clocks.onDevice()) {
                clocks.stop(slot);
                backend.synchronize();
            } else {
                backend.synchronize();
                clocks.stop(slot);
            }
            ranks.checkHealthy(r);
            bytes[r] = new RankBytes(world.traffic().since(before));
            pairs[r] = counted[r].pairs() - pairsBefore;
            return null;
        });
        List<RankPass> parts = new ArrayList<>();
        for (int r : hosted) {
            parts.add(new RankPass(r, clocks.seconds(slot(r)), bytes[r], pairs[r]));
        }
        return new Pass(clocks.spanSeconds(), parts);
    }

    /** Every rank's figures to the root (the spans: per call, the latest stop over all processes' spans). */
    private Result collect(ForwardResult out, Gradients grads, List<Pass> forwards, List<Pass> backwards) {
        List<byte[]> published = ranks.gatherBytes("engine/figures", r -> encode(r, forwards, backwards));
        List<RankFigures> figures = new ArrayList<>();
        List<Double> forwardSpans = new ArrayList<>(forwards.stream().map(Pass::spanSeconds).toList());
        List<Double> backwardSpans = new ArrayList<>(backwards.stream().map(Pass::spanSeconds).toList());
        int first = published.size() == mesh.size() ? 0 : hosted[0];
        for (int i = 0; i < published.size(); i++) {
            Decoded d = decode(first + i, published.get(i));
            figures.add(d.figures);
            maxInto(forwardSpans, d.forwardSpans);
            maxInto(backwardSpans, d.backwardSpans);
        }
        return new Result(out, grads, figures, forwardSpans, backwardSpans);
    }

    private static void maxInto(List<Double> spans, List<Double> others) {
        for (int i = 0; i < spans.size() && i < others.size(); i++) {
            spans.set(i, Math.max(spans.get(i), others.get(i)));
        }
    }

    private record Decoded(RankFigures figures, List<Double> forwardSpans, List<Double> backwardSpans) {
    }

    /** "device;f1,f2;b1,b2;fspan1,..;bspan1,..;fwd bytes per kind;bwd bytes per kind;fwd pairs;bwd pairs". */
    private byte[] encode(int r, List<Pass> forwards, List<Pass> backwards) {
        StringBuilder s = new StringBuilder().append(ranks.device(r));
        s.append(';').append(join(forwards.stream().map(p -> secondsOf(p, r)).toList()));
        s.append(';').append(join(backwards.stream().map(p -> secondsOf(p, r)).toList()));
        s.append(';').append(join(forwards.stream().map(Pass::spanSeconds).toList()));
        s.append(';').append(join(backwards.stream().map(Pass::spanSeconds).toList()));
        s.append(';').append(bytes(forwards.isEmpty() ? RankBytes.none() : bytesOf(forwards.getLast(), r)));
        s.append(';').append(bytes(backwards.isEmpty() ? RankBytes.none() : bytesOf(backwards.getLast(), r)));
        s.append(';').append(forwards.isEmpty() ? 0 : partOf(forwards.getLast(), r).attentionPairs());
        s.append(';').append(backwards.isEmpty() ? 0 : partOf(backwards.getLast(), r).attentionPairs());
        return s.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private static Decoded decode(int rank, byte[] payload) {
        String text = new String(payload, StandardCharsets.US_ASCII);
        String[] parts = text.split(";", -1);
        if (parts.length != 9) {
            throw new IllegalStateException("rank " + rank + " published malformed figures: " + text);
        }
        RankFigures f = new RankFigures(rank, Integer.parseInt(parts[0]), doubles(parts[1]), doubles(parts[2]),
                bytes(parts[5]), bytes(parts[6]), Long.parseLong(parts[7]), Long.parseLong(parts[8]));
        return new Decoded(f, doubles(parts[3]), doubles(parts[4]));
    }

    private static double secondsOf(Pass p, int rank) {
        return partOf(p, rank).seconds();
    }

    private static RankBytes bytesOf(Pass p, int rank) {
        return partOf(p, rank).bytes();
    }

    private static RankPass partOf(Pass p, int rank) {
        return p.ranks().stream().filter(x -> x.rank() == rank).findFirst().orElseThrow();
    }

    private static String join(List<Double> values) {
        return String.join(",", values.stream().map(String::valueOf).toList());
    }

    private static List<Double> doubles(String csv) {
        return csv.isEmpty() ? List.of() : Arrays.stream(csv.split(",")).map(Double::valueOf).toList();
    }

    private static String bytes(RankBytes b) {
        List<String> values = new ArrayList<>();
        for (TrafficKind kind : TrafficKind.values()) {
            values.add(String.valueOf(b.get(kind)));
        }
        return String.join(",", values);
    }

    private static RankBytes bytes(String csv) {
        String[] parts = csv.split(",");
        Map<TrafficKind, Long> m = new EnumMap<>(TrafficKind.class);
        for (TrafficKind kind : TrafficKind.values()) {
            m.put(kind, Long.parseLong(parts[kind.ordinal()]));
        }
        return new RankBytes(m);
    }

    private Tensor shard(Tensor global, int r) {
        Tensor t = dealt[r].allocate(global.dtype(), global.size(0), global.size(1) / mesh.size(), global.size(2),
                global.size(3));
        plan.options().layout().shard(global, t, 1, mesh, r, sequences, ranks.backend(r)::copy);
        return t;
    }

    private int slot(int rank) {
        for (int i = 0; i < hosted.length; i++) {
            if (hosted[i] == rank) {
                return i;
            }
        }
        throw new IllegalArgumentException("rank " + rank + " is not hosted here");
    }

    private void synchronizeHosted() {
        for (int r : hosted) {
            ranks.backend(r).synchronize();
        }
    }

    private boolean allCuda() {
        for (int r : hosted) {
            if (!(ranks.backend(r) instanceof CudaBackend)) {
                return false;
            }
        }
        return true;
    }

    private CudaBackend[] cudaBackends() {
        CudaBackend[] cuda = new CudaBackend[hosted.length];
        for (int i = 0; i < hosted.length; i++) {
            cuda[i] = (CudaBackend) ranks.backend(hosted[i]);
        }
        return cuda;
    }

    private void requireDealt() {
        if (shapes == null || inputs[hosted[0]] == null) {
            throw new IllegalStateException("deal the inputs first");
        }
    }

    private void releaseSaved() {
        for (int r : hosted) {
            gradients[r] = null; // they live in the forward's scope
            if (saved[r] != null) {
                saved[r].close();
                saved[r] = null;
            }
        }
        backwardDone = false;
    }

    private void releaseState() {
        releaseSaved();
        for (int r : hosted) {
            inputs[r] = null;
            if (dealt[r] != null) {
                dealt[r].close();
                dealt[r] = null;
            }
        }
        shapes = null;
        sequences = null;
        lastForward = null;
        lastBackward = null;
    }

    private void closeGroups() {
        for (MeshGroups g : groups) {
            if (g != null) {
                g.close();
            }
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the attention engine is closed");
        }
    }
}
