package org.usp4j.plan;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.api.Mesh;

/**
 * Heterogeneity-adaptive sequence parallelism (FlexSP): for one step's batch of sequence lengths on P
 * ranks, a partition of the ranks into SP groups (each with its own U x R mesh) and an assignment of
 * every sequence to one group, minimising the predicted step time (the slowest group) under a memory
 * limit per rank. The mixed-integer program ({@link MilpPlanner}) runs within a time limit; the greedy
 * plan ({@link GreedyPlanner}) is made too, and the better of the two is kept, so a solver that runs out
 * of time falls back to the greedy plan. The static baseline is the best single mesh over all P ranks.
 */
public final class SequencePlanner {

    private static final Logger LOG = LogManager.getLogger(SequencePlanner.class);

    /** How the kept plan was found. */
    public enum Method {
        /** The integer program, solved to optimality (of its bucketed costs). */
        SOLVER_OPTIMAL,
        /** The integer program's best plan when the time limit stopped it. */
        SOLVER_TIME_LIMIT,
        /** The greedy plan: the solver found nothing better (or nothing) within the time limit. */
        GREEDY
    }

    /** Solver settings: the time limit and how many length buckets the program distinguishes. */
    public record Options(Duration timeLimit, int maxBuckets) {

        public Options {
            Objects.requireNonNull(timeLimit, "timeLimit");
            if (timeLimit.isNegative() || timeLimit.isZero()) {
                throw new IllegalArgumentException("the solver's time limit must be positive, got " + timeLimit);
            }
            if (maxBuckets < 1) {
                throw new IllegalArgumentException("maxBuckets must be >= 1, got " + maxBuckets);
            }
        }

        /** 2 s and 12 buckets. */
        public static Options defaults() {
            return new Options(Duration.ofSeconds(2), 12);
        }
    }

    /**
     * The outcome: the kept plan, the static baseline (empty when no single mesh of all P ranks holds the
     * batch in memory), the greedy plan, how the kept plan was found, and the solver's own plan and time.
     */
    public record Result(Plan plan, Optional<Plan> staticBaseline, Plan greedy, Method method,
                         Optional<Plan> solverPlan, double solverSeconds) {

        /** The static baseline's mesh, e.g. "2x4". */
        public Optional<String> staticMesh() {
            return staticBaseline.map(p -> StepTimeModel.label(p.groups().getFirst().mesh()));
        }
    }

    private SequencePlanner() {
    }

    /**
     * Plans {@code lengths} on {@code ranks} ranks. Throws {@link IllegalArgumentException} for bad input:
     * no sequences, a length below 1, ranks below 1, or sequences that fit no group within the memory limit
     * (the message names them), or a batch that no plan holds in memory.
     */
    public static Result plan(long[] lengths, int ranks, StepTimeModel model, Options options) {
        Objects.requireNonNull(lengths, "lengths");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(options, "options");
        if (lengths.length == 0) {
            throw new IllegalArgumentException("no sequences to plan");
        }
        if (ranks < 1) {
            throw new IllegalArgumentException("ranks must be >= 1, got " + ranks);
        }
        for (int i = 0; i < lengths.length; i++) {
            if (lengths[i] < 1) {
                throw new IllegalArgumentException("sequence " + i + " has length " + lengths[i] + "; lengths must be >= 1");
            }
        }
        long memoryLimit = model.profile().memoryPerRankBytes();
        List<Mesh> candidates = GroupCandidates.all(ranks, model);
        requireEachFits(lengths, ranks, candidates, model, memoryLimit);

        Optional<Plan> staticBaseline = staticBaseline(lengths, ranks, model, memoryLimit);
        Optional<Plan> greedy = GreedyPlanner.plan(lengths, ranks, candidates, model, memoryLimit);
        MilpPlanner.Outcome solved = MilpPlanner.solve(lengths, ranks, candidates, model, memoryLimit,
                options.timeLimit(), options.maxBuckets(), greedy);
        LOG.debug("solver: {} in {} s ({} integer variables, {} length buckets); greedy {} ms", solved.status(),
                String.format(Locale.ROOT, "%.3f", solved.solveSeconds()), solved.integerVariables(), solved.buckets(),
                greedy.map(p -> String.format(Locale.ROOT, "%.3f", p.predictedSeconds() * 1e3)).orElse("none"));
        if (greedy.isEmpty() && solved.plan().isEmpty()) {
            throw new IllegalArgumentException("no plan holds the batch within " + memoryLimit
                    + " bytes per rank (every sequence fits some group alone, but not all of them at once on " + ranks
                    + " ranks" + (solved.status() == MilpPlanner.Status.NO_SOLUTION ? ", and the solver found none within "
                    + options.timeLimit().toMillis() + " ms" : "") + ")");
        }
        Plan kept;
        Method method;
        if (solved.plan().isPresent() && (greedy.isEmpty()
                || solved.plan().get().predictedSeconds() < greedy.get().predictedSeconds())) {
            kept = solved.plan().get();
            method = solved.status() == MilpPlanner.Status.OPTIMAL ? Method.SOLVER_OPTIMAL : Method.SOLVER_TIME_LIMIT;
        } else {
            kept = greedy.orElseThrow();
            method = Method.GREEDY;
        }
        return new Result(kept, staticBaseline, greedy.orElse(kept), method, solved.plan(), solved.solveSeconds());
    }

    /** The best single mesh over all {@code ranks} ranks running the whole batch, if one holds it in memory. */
    public static Optional<Plan> staticBaseline(long[] lengths, int ranks, StepTimeModel model, long memoryLimit) {
        Plan best = null;
        int[] allInOne = new int[lengths.length];
        for (Mesh mesh : GroupCandidates.meshes(ranks, model)) {
            if (model.groupMemoryBytes(mesh, lengths) > memoryLimit) {
                continue;
            }
            Plan p = Plan.of(ranks, List.of(mesh), allInOne, lengths, model);
            if (best == null || p.predictedSeconds() < best.predictedSeconds()) {
                best = p;
            }
        }
        return Optional.ofNullable(best);
    }

    private static void requireEachFits(long[] lengths, int ranks, List<Mesh> candidates, StepTimeModel model,
                                        long memoryLimit) {
        List<String> misfits = new ArrayList<>();
        for (int i = 0; i < lengths.length; i++) {
            long least = Long.MAX_VALUE;
            for (Mesh mesh : candidates) {
                least = Math.min(least, model.cost(lengths[i], mesh).memoryBytes());
            }
            if (least > memoryLimit) {
                misfits.add("#" + i + " (" + lengths[i] + " tokens, needs " + least + " bytes per rank at best)");
            }
        }
        if (!misfits.isEmpty()) {
            throw new IllegalArgumentException((misfits.size() == 1 ? "sequence " : "sequences ") + String.join(", ", misfits)
                    + (misfits.size() == 1 ? " fits" : " fit") + " no group of up to " + ranks + " ranks within the memory limit of " + memoryLimit
                    + " bytes per rank");
        }
    }
}
