package org.usp4j.plan;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.ojalgo.optimisation.Expression;
import org.ojalgo.optimisation.ExpressionsBasedModel;
import org.ojalgo.optimisation.Optimisation;
import org.ojalgo.optimisation.Variable;
import org.usp4j.api.Mesh;

/**
 * The plan as a mixed-integer program (after FlexSP), solved by ojAlgo's branch and bound within a time
 * limit. Group slots: for every candidate mesh k, min(P / |k|, N) slots j with a binary "used" y_j.
 * Integer n_bj: how many sequences of length bucket b run in slot j. With t = all-to-all, c = compute,
 * q = ring, m = memory per sequence of bucket b on slot j's mesh, and L_j its fixed call cost:
 * <pre>
 *   minimise z
 *   sum_j n_bj = |b|                     every sequence in exactly one group
 *   n_bj &lt;= |b| y_j                      only used slots take sequences
 *   sum_j |j| y_j &lt;= P                   disjoint ranks
 *   sum_b m_bj n_bj &lt;= M                 memory per rank
 *   z &gt;= sum_b (t_bj + c_bj) n_bj + L_j y_j,  z &gt;= sum_b (t_bj + q_bj) n_bj + L_j y_j   (the slowest group)
 *   y_j &gt;= y_j+1 and load_j &gt;= load_j+1 among slots of one mesh   (no symmetric copies of a plan)
 * </pre>
 * Meshes that another mesh of the same size beats on every coefficient are left out first. The counts
 * become an assignment by giving each bucket's sequences, longest first, to the slot with quota left
 * that is least loaded so far, and the plan is then costed exactly.
 */
final class MilpPlanner {

    /** How the solve ended. */
    enum Status {
        /** Proved optimal for the bucketed program. */
        OPTIMAL,
        /** The time limit (or the solver) stopped it with a feasible plan in hand. */
        FEASIBLE,
        /** No feasible plan: out of time before one was found, or none exists. */
        NO_SOLUTION
    }

    record Outcome(Status status, Optional<Plan> plan, double solveSeconds, int integerVariables, int buckets) {
    }

    static {
        // ojAlgo prints a note about its hardware profiles to stdout on first use unless this is set.
        if (System.getProperty("shut.up.ojAlgo") == null) {
            System.setProperty("shut.up.ojAlgo", "true");
        }
    }

    private static final Logger LOG = LogManager.getLogger(MilpPlanner.class);
    /** How long past its time limit the planner still waits for the solver's answer. */
    private static final Duration GRACE = Duration.ofMillis(200);

    private MilpPlanner() {
    }

    /**
     * Solves the program; {@code start}, when present, is a plan whose groups become the solver's first
     * incumbent (so that its search only looks for better ones).
     */
    static Outcome solve(long[] lengths, int ranks, List<Mesh> candidates, StepTimeModel model, long memoryLimit,
                         Duration timeLimit, int maxBuckets, Optional<Plan> start) {
        long started = System.nanoTime();
        List<LengthBuckets.Bucket> buckets = LengthBuckets.of(lengths, maxBuckets);
        List<Mesh> types = new ArrayList<>(undominated(candidates, buckets, model));
        start.ifPresent(p -> p.groups().stream().map(PlannedGroup::mesh).distinct().filter(k -> !types.contains(k))
                .forEach(types::add));
        List<Mesh> slots = new ArrayList<>();
        List<Integer> typeOf = new ArrayList<>();
        for (int k = 0; k < types.size(); k++) {
            int count = Math.min(ranks / types.get(k).size(), lengths.length);
            for (int c = 0; c < count; c++) {
                slots.add(types.get(k));
                typeOf.add(k);
            }
        }
        int nb = buckets.size();
        int ns = slots.size();
        ExpressionsBasedModel m = new ExpressionsBasedModel();
        long limitMs = Math.max(1, timeLimit.toMillis());
        m.options.time_abort = limitMs;
        m.options.time_suffice = limitMs;
        Variable z = m.addVariable("z").lower(0).weight(1);
        Variable[] used = new Variable[ns];
        Variable[][] n = new Variable[nb][ns];
        for (int j = 0; j < ns; j++) {
            used[j] = m.addVariable("y" + j).binary();
        }
        double[][] fast = new double[nb][ns]; // all-to-all + compute, ms
        double[][] ring = new double[nb][ns]; // all-to-all + ring, ms
        for (int b = 0; b < nb; b++) {
            LengthBuckets.Bucket bucket = buckets.get(b);
            Expression all = m.addExpression("assign" + b).level(bucket.count());
            for (int j = 0; j < ns; j++) {
                StepTimeModel.SequenceCost c = model.cost(bucket.longest(), slots.get(j));
                fast[b][j] = (c.allToAllSeconds() + c.computeSeconds()) * 1e3;
                ring[b][j] = (c.allToAllSeconds() + c.p2pSeconds()) * 1e3;
                long fits = c.memoryBytes() <= memoryLimit ? Math.min(bucket.count(), memoryLimit / c.memoryBytes()) : 0;
                n[b][j] = m.addVariable("n" + b + "_" + j).integer(true).lower(0).upper(fits);
                all.set(n[b][j], 1);
                m.addExpression("link" + b + "_" + j).upper(0).set(n[b][j], 1).set(used[j], -bucket.count());
            }
        }
        Expression rankBudget = m.addExpression("ranks").upper(ranks);
        for (int j = 0; j < ns; j++) {
            Mesh mesh = slots.get(j);
            rankBudget.set(used[j], mesh.size());
            double fixedMs = model.callSeconds(mesh) * 1e3;
            // Rows that cannot bind are left out: they only slow the simplex down.
            double memoryIfAll = 0;
            boolean computeBound = true;
            boolean ringBound = true;
            for (int b = 0; b < nb; b++) {
                memoryIfAll += (double) buckets.get(b).count() * model.cost(buckets.get(b).longest(), mesh).memoryBytes();
                computeBound &= fast[b][j] >= ring[b][j];
                ringBound &= ring[b][j] >= fast[b][j];
            }
            if (memoryIfAll > memoryLimit) {
                Expression memory = m.addExpression("memory" + j).upper(1.0);
                for (int b = 0; b < nb; b++) {
                    memory.set(n[b][j], (double) model.cost(buckets.get(b).longest(), mesh).memoryBytes() / memoryLimit);
                }
            }
            if (!ringBound) {
                Expression t = m.addExpression("time" + j + "a").upper(0).set(z, -1).set(used[j], fixedMs);
                for (int b = 0; b < nb; b++) {
                    t.set(n[b][j], fast[b][j]);
                }
            }
            if (!computeBound) {
                Expression t = m.addExpression("time" + j + "b").upper(0).set(z, -1).set(used[j], fixedMs);
                for (int b = 0; b < nb; b++) {
                    t.set(n[b][j], ring[b][j]);
                }
            }
            if (j + 1 < ns && typeOf.get(j + 1).equals(typeOf.get(j))) {
                m.addExpression("order" + j).upper(0).set(used[j + 1], 1).set(used[j], -1);
                Expression load = m.addExpression("load" + j).upper(0);
                for (int b = 0; b < nb; b++) {
                    load.set(n[b][j + 1], fast[b][j + 1]);
                    load.set(n[b][j], -fast[b][j]);
                }
            }
        }
        start.ifPresent(p -> warmStart(p, lengths, buckets, slots, z, used, n, fast, ring, model));
        int integers = ns + nb * ns;
        Optimisation.Result result = minimiseWithin(m, timeLimit);
        double seconds = (System.nanoTime() - started) * 1e-9;
        if (result == null || !result.getState().isFeasible()) {
            return new Outcome(Status.NO_SOLUTION, Optional.empty(), seconds, integers, nb);
        }
        Optimisation.State state = result.getState();
        Optional<Plan> plan = assign(result, m, n, buckets, slots, lengths, ranks, model, memoryLimit);
        Status status = plan.isEmpty() ? Status.NO_SOLUTION : state.isOptimal() ? Status.OPTIMAL : Status.FEASIBLE;
        return new Outcome(status, plan, seconds, integers, nb);
    }

    /**
     * ojAlgo checks its time limit between branch-and-bound nodes only, so one slow node can overrun it:
     * the solve runs on a daemon thread that the planner stops waiting for shortly after the limit (it
     * then ends by itself at its next check). Null when it did not answer in time.
     */
    private static Optimisation.Result minimiseWithin(ExpressionsBasedModel m, Duration timeLimit) {
        CompletableFuture<Optimisation.Result> solve = new CompletableFuture<>();
        Thread solver = new Thread(() -> {
            try {
                solve.complete(m.minimise());
            } catch (RuntimeException | Error e) {
                solve.completeExceptionally(e);
            } finally {
                m.dispose();
            }
        }, "usp4j-plan-solver");
        solver.setDaemon(true);
        solver.start();
        try {
            return solve.get(timeLimit.toMillis() + GRACE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            LOG.debug("the solver did not answer within {} ms; using the greedy plan", timeLimit.plus(GRACE).toMillis());
            return null;
        } catch (ExecutionException e) {
            LOG.warn("the solver failed ({}); using the greedy plan", e.getCause().toString());
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** Sets every variable to {@code plan}'s values (each group in a free slot of its mesh): a feasible start. */
    private static void warmStart(Plan plan, long[] lengths, List<LengthBuckets.Bucket> buckets, List<Mesh> slots,
                                  Variable z, Variable[] used, Variable[][] n, double[][] fast, double[][] ring,
                                  StepTimeModel model) {
        int[] bucketOf = new int[lengths.length];
        for (int b = 0; b < buckets.size(); b++) {
            for (int i : buckets.get(b).members()) {
                bucketOf[i] = b;
            }
        }
        long[][] counts = new long[buckets.size()][slots.size()];
        boolean[] taken = new boolean[slots.size()];
        for (PlannedGroup g : plan.groups()) {
            int j = 0;
            while (taken[j] || !slots.get(j).equals(g.mesh())) {
                j++;
            }
            taken[j] = true;
            for (int i : g.sequences()) {
                counts[bucketOf[i]][j]++;
            }
        }
        double slowest = 0;
        for (int j = 0; j < slots.size(); j++) {
            used[j].setValue(BigDecimal.valueOf(taken[j] ? 1 : 0));
            double a = taken[j] ? model.callSeconds(slots.get(j)) * 1e3 : 0;
            double c = a;
            for (int b = 0; b < buckets.size(); b++) {
                n[b][j].setValue(BigDecimal.valueOf(counts[b][j]));
                a += counts[b][j] * fast[b][j];
                c += counts[b][j] * ring[b][j];
            }
            slowest = Math.max(slowest, Math.max(a, c));
        }
        z.setValue(BigDecimal.valueOf(slowest));
    }

    /** Turns the solver's counts into an assignment; empty when they do not make a valid plan. */
    private static Optional<Plan> assign(Optimisation.Result result, ExpressionsBasedModel m, Variable[][] n,
                                         List<LengthBuckets.Bucket> buckets, List<Mesh> slots,
                                         long[] lengths, int ranks, StepTimeModel model, long memoryLimit) {
        int ns = slots.size();
        long[][] quota = new long[buckets.size()][ns];
        for (int b = 0; b < buckets.size(); b++) {
            long total = 0;
            for (int j = 0; j < ns; j++) {
                quota[b][j] = Math.max(0, Math.round(result.doubleValue(m.indexOf(n[b][j]))));
                total += quota[b][j];
            }
            if (total != buckets.get(b).count()) {
                return Optional.empty();
            }
        }
        double[] compute = new double[ns];
        double[] allToAll = new double[ns];
        double[] p2p = new double[ns];
        long[] memory = new long[ns];
        int[] groupOf = new int[lengths.length];
        for (int b = 0; b < buckets.size(); b++) {
            for (int i : buckets.get(b).members()) {
                int chosen = -1;
                double chosenTime = Double.POSITIVE_INFINITY;
                for (int j = 0; j < ns; j++) {
                    if (quota[b][j] == 0) {
                        continue;
                    }
                    double t = StepTimeModel.combine(compute[j], allToAll[j], p2p[j], 0);
                    if (t < chosenTime) {
                        chosen = j;
                        chosenTime = t;
                    }
                }
                StepTimeModel.SequenceCost c = model.cost(lengths[i], slots.get(chosen));
                quota[b][chosen]--;
                compute[chosen] += c.computeSeconds();
                allToAll[chosen] += c.allToAllSeconds();
                p2p[chosen] += c.p2pSeconds();
                memory[chosen] += c.memoryBytes();
                groupOf[i] = chosen;
            }
        }
        int needed = 0;
        boolean[] any = new boolean[ns];
        for (int g : groupOf) {
            if (!any[g]) {
                any[g] = true;
                needed += slots.get(g).size();
            }
        }
        for (int j = 0; j < ns; j++) {
            if (memory[j] > memoryLimit) {
                return Optional.empty();
            }
        }
        if (needed > ranks) {
            return Optional.empty();
        }
        return Optional.of(Plan.of(ranks, slots, groupOf, lengths, model));
    }

    /** Candidates without those that a mesh of the same size beats or equals on every coefficient. */
    static List<Mesh> undominated(List<Mesh> candidates, List<LengthBuckets.Bucket> buckets, StepTimeModel model) {
        List<Mesh> kept = new ArrayList<>();
        for (Mesh a : candidates) {
            boolean dominated = false;
            for (Mesh b : candidates) {
                if (b.equals(a) || b.size() != a.size()) {
                    continue;
                }
                if (noWorse(b, a, buckets, model) && (!noWorse(a, b, buckets, model) || b.ulysses() < a.ulysses())) {
                    dominated = true;
                    break;
                }
            }
            if (!dominated) {
                kept.add(a);
            }
        }
        return kept;
    }

    private static boolean noWorse(Mesh b, Mesh a, List<LengthBuckets.Bucket> buckets, StepTimeModel model) {
        if (model.callSeconds(b) > model.callSeconds(a)) {
            return false;
        }
        for (LengthBuckets.Bucket bucket : buckets) {
            StepTimeModel.SequenceCost cb = model.cost(bucket.longest(), b);
            StepTimeModel.SequenceCost ca = model.cost(bucket.longest(), a);
            if (cb.allToAllSeconds() > ca.allToAllSeconds() || cb.p2pSeconds() > ca.p2pSeconds()
                    || cb.memoryBytes() > ca.memoryBytes() || cb.computeSeconds() > ca.computeSeconds()) {
                return false;
            }
        }
        return true;
    }
}
