package org.usp4j.plan;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.function.IntFunction;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Runs a {@link Plan} on in-process ranks: every group gets its own sub-batch of whole sequences (cut out
 * of the packed global tensors and packed again with its own {@code cu_seqlens}), its own world of the
 * group's size and its own {@link AttentionEngine} on the group's mesh, and all groups run at once, each
 * on a thread of its own. The results are put back in the global packed order.
 *
 * <p>Each group's layout: zigzag for causal attention when every one of its lengths divides by 2p (it
 * balances the causal work), else contiguous. Every group's shapes are checked before any group starts.
 */
public final class PlanRunner {

    private static final Logger LOG = LogManager.getLogger(PlanRunner.class);

    /** What one world rank did: its group (index into the plan), its rank in the group, and its figures. */
    public record RankRun(int rank, int group, int groupRank, Mesh mesh, AttentionEngine.RankFigures figures) {
    }

    /**
     * The results in global order (gradients null without a dout), every rank that ran in world rank order
     * (ranks in no group are absent), and the wall seconds from the first group's start to the last one's end.
     */
    public record Result(ForwardResult forward, Gradients gradients, List<RankRun> ranks, double wallSeconds) {
        public Result {
            ranks = List.copyOf(ranks);
        }
    }

    private PlanRunner() {
    }

    /**
     * Runs {@code plan} over q, k, v (and dout, or null for the forward only) packed by {@code sequences}
     * (b = 1; sequence i of the plan is sequence i here), with {@code causal} and {@code scale} (null:
     * 1/sqrt(d)); group rank i of a group computes on {@code backendPerRank} of its world rank. Results go
     * into {@code arena} (allocated on the calling thread). Throws {@link IllegalArgumentException} naming the problem, before any group
     * starts, when the plan does not cover the sequences exactly once or a group's sub-batch cannot run.
     */
    public static Result run(Plan plan, boolean causal, Double scale, IntFunction<Backend> backendPerRank, Tensor q,
                             Tensor k, Tensor v, Tensor dout, SequenceBoundaries sequences, Arena arena) {
        Objects.requireNonNull(plan, "plan");
        Objects.requireNonNull(backendPerRank, "backendPerRank");
        Objects.requireNonNull(sequences, "sequences");
        if (q.rank() != 4 || q.size(0) != 1) {
            throw new IllegalArgumentException("a plan runs packed sequences: q must be [1, s, h, d], got "
                    + Arrays.toString(q.shape()));
        }
        sequences.requireTotal(q.size(1));
        requireCovers(plan, sequences);
        List<PlannedGroup> groups = plan.groups();
        List<AttentionEngine> engines = new ArrayList<>();
        try (Arena batches = Arena.ofShared()) {
            List<SubBatch> subs = new ArrayList<>();
            for (PlannedGroup g : groups) {
                SubBatch sub = SubBatch.cut(g, q, k, v, dout, sequences, batches);
                subs.add(sub);
                UspPlan usp = new UspPlan(g.mesh(), new AttentionOptions(causal, layoutFor(g.mesh(), sub.sequences,
                        causal), scale));
                engines.add(AttentionEngine.inProcess(usp, r -> backendPerRank.apply(g.ranks().get(r))));
                try {
                    engines.getLast().validate(sub.q, sub.k, sub.v, sub.dout, sub.sequences);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("group " + (subs.size() - 1)
                            + " (ranks " + g.ranks() + ", mesh " + StepTimeModel.label(g.mesh()) + ", sequences "
                            + g.sequences() + "): " + e.getMessage(), e);
                }
            }
            AttentionEngine.Result[] results = new AttentionEngine.Result[groups.size()];
            long start = System.nanoTime();
            runConcurrently(groups.size(), i -> {
                SubBatch sub = subs.get(i);
                results[i] = engines.get(i).run(sub.q, sub.k, sub.v, sub.dout, sub.sequences, batches);
            });
            double wall = (System.nanoTime() - start) / 1e9;
            LOG.debug("plan of {} groups ran in {} s", groups.size(), wall);
            return assemble(groups, subs, results, q, k, v, dout, sequences, arena, wall);
        } finally {
            for (AttentionEngine e : engines) {
                e.close();
            }
        }
    }

    /** Zigzag for causal attention when every length divides by 2p, else contiguous. */
    static SequenceLayout layoutFor(Mesh mesh, SequenceBoundaries sequences, boolean causal) {
        if (!causal) {
            return SequenceLayout.CONTIGUOUS;
        }
        long unit = 2L * mesh.size();
        for (int i = 0; i < sequences.count(); i++) {
            if (sequences.length(i) % unit != 0) {
                return SequenceLayout.CONTIGUOUS;
            }
        }
        return SequenceLayout.ZIGZAG;
    }

    private static void requireCovers(Plan plan, SequenceBoundaries sequences) {
        int[] seen = new int[sequences.count()];
        for (PlannedGroup g : plan.groups()) {
            if (g.sequences().isEmpty()) {
                throw new IllegalArgumentException("group on ranks " + g.ranks() + " has no sequence");
            }
            for (int i : g.sequences()) {
                if (i < 0 || i >= seen.length) {
                    throw new IllegalArgumentException("the plan names sequence " + i + ", but the input has "
                            + seen.length + " sequences");
                }
                seen[i]++;
            }
        }
        for (int i = 0; i < seen.length; i++) {
            if (seen[i] != 1) {
                throw new IllegalArgumentException("sequence " + i + " is in " + seen[i] + " groups of the plan; "
                        + "every sequence must be in exactly one");
            }
        }
        boolean[] used = new boolean[Math.max(plan.worldSize(), 0)];
        for (PlannedGroup g : plan.groups()) {
            for (int r : g.ranks()) {
                if (r < 0 || r >= used.length || used[r]) {
                    throw new IllegalArgumentException("rank " + r + " is outside the world of " + plan.worldSize()
                            + " or in two groups");
                }
                used[r] = true;
            }
        }
    }

    private interface GroupWork {
        void run(int group);
    }

    /** One thread per group; every failure is thrown after all groups ended (the first, the others suppressed). */
    private static void runConcurrently(int count, GroupWork work) {
        List<Thread> threads = new ArrayList<>();
        RuntimeException[] failures = new RuntimeException[count];
        Error[] errors = new Error[count];
        for (int i = 0; i < count; i++) {
            int g = i;
            threads.add(Thread.ofPlatform().name("plan-group-" + g).start(() -> {
                try {
                    work.run(g);
                } catch (RuntimeException e) {
                    failures[g] = e;
                } catch (Error e) {
                    errors[g] = e;
                }
            }));
        }
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the plan's groups ran", e);
            }
        }
        Throwable first = null;
        for (int i = 0; i < count; i++) {
            Throwable t = errors[i] != null ? errors[i] : failures[i];
            if (t == null) {
                continue;
            }
            if (first == null) {
                first = t;
            } else {
                first.addSuppressed(t);
            }
        }
        if (first instanceof Error e) {
            throw e;
        }
        if (first != null) {
            throw (RuntimeException) first;
        }
    }

    private static Result assemble(List<PlannedGroup> groups, List<SubBatch> subs, AttentionEngine.Result[] results,
                                   Tensor q, Tensor k, Tensor v, Tensor dout, SequenceBoundaries sequences,
                                   Arena arena, double wall) {
        Tensor out = Tensor.allocate(arena, q.dtype(), q.shape());
        Tensor lse = Tensor.allocate(arena, DType.F32, q.size(0), q.size(2), q.size(1));
        Tensor dq = dout == null ? null : Tensor.allocate(arena, q.dtype(), q.shape());
        Tensor dk = dout == null ? null : Tensor.allocate(arena, k.dtype(), k.shape());
        Tensor dv = dout == null ? null : Tensor.allocate(arena, v.dtype(), v.shape());
        List<RankRun> ranks = new ArrayList<>();
        for (int g = 0; g < groups.size(); g++) {
            SubBatch sub = subs.get(g);
            AttentionEngine.Result r = results[g];
            sub.putBack(r.forward().out(), out, 1, sequences);
            sub.putBack(r.forward().lse(), lse, 2, sequences);
            if (dout != null) {
                sub.putBack(r.gradients().dq(), dq, 1, sequences);
                sub.putBack(r.gradients().dk(), dk, 1, sequences);
                sub.putBack(r.gradients().dv(), dv, 1, sequences);
            }
            PlannedGroup group = groups.get(g);
            for (AttentionEngine.RankFigures f : r.ranks()) {
                ranks.add(new RankRun(group.ranks().get(f.rank()), g, f.rank(), group.mesh(), f));
            }
        }
        ranks.sort(Comparator.comparingInt(RankRun::rank));
        return new Result(new ForwardResult(out, lse), dout == null ? null : new Gradients(dq, dk, dv), ranks, wall);
    }

    /** One group's sequences cut out of the global packed tensors, packed in the group's order. */
    private record SubBatch(List<Integer> members, SequenceBoundaries sequences, Tensor q, Tensor k, Tensor v,
                            Tensor dout) {

        static SubBatch cut(PlannedGroup g, Tensor q, Tensor k, Tensor v, Tensor dout, SequenceBoundaries global,
                            Arena arena) {
            long[] lengths = g.sequences().stream().mapToLong(global::length).toArray();
            SequenceBoundaries own = SequenceBoundaries.ofLengths(lengths);
            return new SubBatch(g.sequences(), own, cut(q, g.sequences(), global, own, arena),
                    cut(k, g.sequences(), global, own, arena), cut(v, g.sequences(), global, own, arena),
                    dout == null ? null : cut(dout, g.sequences(), global, own, arena));
        }

        private static Tensor cut(Tensor t, List<Integer> members, SequenceBoundaries global, SequenceBoundaries own,
                                  Arena arena) {
            Tensor part = Tensor.allocate(arena, t.dtype(), t.size(0), own.totalLength(), t.size(2), t.size(3));
            for (int j = 0; j < members.size(); j++) {
                int i = members.get(j);
                HostTensors.copy(t.slice(1, global.start(i), global.length(i)),
                        part.slice(1, own.start(j), own.length(j)));
            }
            return part;
        }

        /** Copies this group's {@code piece} (packed by its own boundaries along {@code dim}) into {@code whole}. */
        void putBack(Tensor piece, Tensor whole, int dim, SequenceBoundaries global) {
            for (int j = 0; j < members.size(); j++) {
                int i = members.get(j);
                HostTensors.copy(piece.slice(dim, sequences.start(j), sequences.length(j)),
                        whole.slice(dim, global.start(i), global.length(i)));
            }
        }
    }
}
