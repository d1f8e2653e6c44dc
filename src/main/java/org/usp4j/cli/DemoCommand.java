package org.usp4j.cli;

import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.usp4j.api.Mesh;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.bench.Pass;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j demo}: USP attention over U x R simulated ranks on random inputs, forward and backward,
 * checked against single-rank attention on the whole sequence (the same kernel, one call), with the
 * time, the throughput over unmasked pairs, and the bytes every rank sent against the cost model.
 * Exits 1 when a result or a byte count is off.
 */
@Command(name = "demo",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        description = {
            "Run USP attention (Ulysses inside groups of U ranks, Ring across R groups) on U*R simulated ranks "
                    + "with random inputs, check it against single-rank attention on the whole sequence, and print "
                    + "the error, the time, the throughput and the bytes each rank sent against the cost model.",
            "",
            "Throughput counts unmasked (query, key) pairs only: forward 4*b*h*pairs*d FLOPs, backward 2.5x that."
        })
final class DemoCommand implements Callable<Integer> {

    /** CPU default: finishes in well under a minute on two cores. */
    static final long CPU_SEQ = 8192;
    /** GPU default: a long context. */
    static final long GPU_SEQ = 65536;

    @Spec
    CommandSpec spec;

    @Option(names = "--backend", paramLabel = "auto|cpu|cuda", defaultValue = "auto", converter = BackendKind.Converter.class,
            description = "Where the ranks compute; auto picks cuda when a GPU is usable (default: ${DEFAULT-VALUE}).")
    BackendKind backend;

    @Option(names = "--seq", paramLabel = "S", description = "Sequence length (default: " + CPU_SEQ + " on cpu, "
            + GPU_SEQ + " on cuda).")
    Long seq;

    @Option(names = "--ulysses", paramLabel = "U", defaultValue = "2", description = "Ulysses degree (default: ${DEFAULT-VALUE}).")
    int ulysses;

    @Option(names = "--ring", paramLabel = "R", defaultValue = "2", description = "Ring degree (default: ${DEFAULT-VALUE}).")
    int ring;

    @Option(names = "--backward", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Also run and check the backward (default: on; --no-backward for the forward only).")
    boolean backward;

    @Mixin
    ProblemOptions problemOptions;

    /** Relative Frobenius error allowed for out (index 0) and the gradients (index 1) per dtype. */
    static double[] tolerance(DType dtype) {
        // Both sides round their results to the dtype once; bf16 keeps 8 mantissa bits, f16 11.
        return switch (dtype) {
            case F32 -> new double[] {1e-4, 1e-4};
            case BF16 -> new double[] {1e-2, 2e-2};
            case F16 -> new double[] {5e-3, 1e-2};
        };
    }

    /** The lse is float32 on both sides; only the blockwise merge order differs. */
    static final double LSE_TOLERANCE = 1e-5;

    @Override
    public Integer call() {
        long wallStart = System.nanoTime();
        ProblemOptions.requirePositive(spec.commandLine(), "--ulysses", ulysses);
        ProblemOptions.requirePositive(spec.commandLine(), "--ring", ring);
        if ((long) ulysses * ring > 1024) {
            throw new ParameterException(spec.commandLine(), "--ulysses " + ulysses + " x --ring " + ring
                    + " is more simulated ranks than the demo runs (at most 1024)");
        }
        Mesh mesh = new Mesh(ulysses, ring);
        PrintWriter out = spec.commandLine().getOut();
        try (RankBackends backends = RankBackends.open(backend);
             Progress progress = new Progress(StatusLine.forStderr(spec.commandLine().getErr()));
             Arena arena = Arena.ofShared()) {
            long s = seq != null ? seq : backends.kind() == BackendKind.CUDA ? GPU_SEQ : CPU_SEQ;
            AttentionProblem problem = problemOptions.problem(spec.commandLine(), s);
            problemOptions.requireFits(spec.commandLine(), problem, mesh);
            boolean causal = problemOptions.causal;

            out.printf(Locale.ROOT, "usp4j demo: USP attention on %d simulated ranks (Ulysses %d x Ring %d%s), %s%n",
                    mesh.size(), ulysses, ring, problemOptions.ringAlgorithm == RingAlgorithms.defaultAlgorithm() ? ""
                            : ", " + problemOptions.ringAlgorithm.name(), describe(backends));
            out.printf(Locale.ROOT, "inputs: %s, %s, seed %d%n", problem, problemOptions.describe(), problemOptions.seed);
            out.printf(Locale.ROOT, "times are of warm calls: %s before the clock starts%n",
                    backends.kind() == BackendKind.CUDA ? "JIT compiled and cuDNN plans built by one untimed call"
                            + " of each configuration" : "JIT compiled by untimed runs on a short sequence");
            out.flush();

            progress.phase("making random inputs");
            Tensor q = random(arena, problem, problem.heads(), problemOptions.seed);
            Tensor k = random(arena, problem, problem.kvHeads(), problemOptions.seed + 1);
            Tensor v = random(arena, problem, problem.kvHeads(), problemOptions.seed + 2);
            Tensor dout = backward ? random(arena, problem, problem.heads(), problemOptions.seed + 3) : null;

            warmUp(mesh, problem, backends, progress);
            Run usp = run("USP", mesh, backends, progress, arena, q, k, v, dout);
            Run single = run("single-rank", new Mesh(1, 1), backends, progress, arena, q, k, v, dout);
            progress.phase("comparing");

            List<String> failures = new ArrayList<>();
            double[] tol = tolerance(problem.dtype());
            Map<String, Double> errors = new LinkedHashMap<>();
            errors.put("out", HostTensors.relativeError(usp.forward.out(), single.forward.out()));
            errors.put("lse", HostTensors.relativeError(usp.forward.lse(), single.forward.lse()));
            if (backward) {
                errors.put("dq", HostTensors.relativeError(usp.grads.dq(), single.grads.dq()));
                errors.put("dk", HostTensors.relativeError(usp.grads.dk(), single.grads.dk()));
                errors.put("dv", HostTensors.relativeError(usp.grads.dv(), single.grads.dv()));
            }
            StringBuilder line = new StringBuilder("relative error vs single rank:");
            for (Map.Entry<String, Double> e : errors.entrySet()) {
                double limit = e.getKey().equals("out") ? tol[0] : e.getKey().equals("lse") ? LSE_TOLERANCE : tol[1];
                line.append(String.format(Locale.ROOT, " %s %.1e", e.getKey(), e.getValue()));
                if (!(e.getValue() <= limit)) {
                    failures.add(String.format(Locale.ROOT, "%s relative error %.3e > %.0e", e.getKey(), e.getValue(), limit));
                }
            }
            line.append(String.format(Locale.ROOT, " (limits: out %.0e, lse %.0e%s)", tol[0], LSE_TOLERANCE,
                    backward ? String.format(Locale.ROOT, ", grads %.0e", tol[1]) : ""));
            progress.clear(); // results follow on the terminal
            printTimes(out, usp, problem, causal, mesh.size() + " ranks");
            printTimes(out, single, problem, causal, "1 rank, reference");
            out.println(line + (failures.isEmpty() ? ": ok" : ": FAILED"));

            failures.addAll(printTraffic(out, usp, problem, mesh));
            out.printf(Locale.ROOT, "total %.1f s%n", (System.nanoTime() - wallStart) * 1e-9);
            out.flush();
            if (!failures.isEmpty()) {
                throw new CommandFailure("demo check failed: " + String.join("; ", failures));
            }
        }
        return ExitCodes.OK;
    }

    /** What one configuration produced, with its times and per-rank bytes. */
    private record Run(ForwardResult forward, Gradients grads, double forwardSeconds, double backwardSeconds,
                       List<RankBytes> forwardBytes, List<RankBytes> backwardBytes) {
    }

    private Run run(String name, Mesh mesh, RankBackends backends, Progress progress, Arena arena, Tensor q, Tensor k,
                    Tensor v, Tensor dout) {
        try (AttentionEngine attention = AttentionEngine.inProcess(problemOptions.plan(mesh), backends::forRank,
                LocalWorld.DEFAULT_TIMEOUT)) {
            if (backends.kind() == BackendKind.CUDA) {
                // cuDNN plans are built per shape and cached per rank's backend: one untimed call builds
                // them, so that the clock measures what every later call of a training step costs.
                progress.phase(name + ": building cuDNN plans");
                attention.run(q, k, v, dout, arena);
            }
            progress.phase(name + (dout != null ? " forward and backward on " : " forward on ") + mesh.size()
                    + (mesh.size() == 1 ? " rank" : " ranks"));
            AttentionEngine.Result r = attention.run(q, k, v, dout, arena);
            return new Run(r.forward(), r.gradients(), r.forwardSpans().getFirst(),
                    dout != null ? r.backwardSpans().getFirst() : 0,
                    r.ranks().stream().map(AttentionEngine.RankFigures::forwardBytes).toList(),
                    r.ranks().stream().map(AttentionEngine.RankFigures::backwardBytes).toList());
        }
    }

    /**
     * Runs both configurations on a short sequence, so that the timed runs measure compiled code rather
     * than the JIT compiler warming up (the CPU kernel's loops take a few calls to compile). Shape-keyed
     * state (cuDNN plans) is warmed at the full shape in {@link #run}.
     */
    private void warmUp(Mesh mesh, AttentionProblem problem, RankBackends backends, Progress progress) {
        long granule = 2L * mesh.size(); // zigzag needs S % 2P == 0
        long s = Math.min(problem.seq(), Math.max(granule, (1024 / granule) * granule));
        AttentionProblem small = problem.withSeq(s);
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, small, small.heads(), 1);
            Tensor k = random(arena, small, small.kvHeads(), 2);
            Tensor v = random(arena, small, small.kvHeads(), 3);
            Tensor dout = backward ? random(arena, small, small.heads(), 4) : null;
            for (int i = 0; i < 2; i++) {
                run("warm-up: USP", mesh, backends, progress, arena, q, k, v, dout);
                run("warm-up: single-rank", new Mesh(1, 1), backends, progress, arena, q, k, v, dout);
            }
        }
    }

    private void printTimes(PrintWriter out, Run run, AttentionProblem problem, boolean causal, String who) {
        out.printf(Locale.ROOT, "forward  %10s  %16s  (%s)%n", Units.seconds(run.forwardSeconds),
                Units.flopRate(problem.flops(Pass.FORWARD, causal) / run.forwardSeconds), who);
        if (backward) {
            out.printf(Locale.ROOT, "backward %10s  %16s  (%s)%n", Units.seconds(run.backwardSeconds),
                    Units.flopRate(problem.flops(Pass.BACKWARD, causal) / run.backwardSeconds), who);
        }
    }

    /** Prints the bytes per rank against the chosen strategy's own cost model; returns the mismatches. */
    private List<String> printTraffic(PrintWriter out, Run usp, AttentionProblem problem, Mesh mesh) {
        List<String> failures = new ArrayList<>();
        UspPlan plan = problemOptions.plan(mesh);
        List<RankBytes> forwardModel = new ArrayList<>();
        List<RankBytes> backwardModel = new ArrayList<>();
        for (int r = 0; r < mesh.size(); r++) {
            forwardModel.add(plan.forwardBytes(problem.shapes(), problem.dtype(), r));
            backwardModel.add(plan.backwardBytes(problem.shapes(), problem.dtype(), r));
        }
        failures.addAll(printPass(out, "forward", usp.forwardBytes, forwardModel));
        if (backward) {
            failures.addAll(printPass(out, "backward", usp.backwardBytes, backwardModel));
        }
        return failures;
    }

    private static List<String> printPass(PrintWriter out, String pass, List<RankBytes> ranks, List<RankBytes> models) {
        List<String> failures = new ArrayList<>();
        for (int r = 0; r < ranks.size(); r++) {
            for (TrafficKind kind : TrafficKind.values()) {
                long got = ranks.get(r).get(kind);
                if (got != models.get(r).get(kind)) {
                    failures.add(pass + " rank " + r + " sent " + got + " " + kind.jsonName() + " bytes, cost model "
                            + models.get(r).get(kind));
                }
            }
        }
        // The most any rank sends: every rank's figure where they are the same.
        RankBytes model = models.stream().max(Comparator.comparingLong(RankBytes::total)).orElseThrow();
        boolean uniform = models.stream().allMatch(model::equals);
        List<String> kinds = new ArrayList<>();
        for (TrafficKind kind : TrafficKind.values()) {
            // The first report's two kinds always, any other where the strategy moves bytes.
            if (kind == TrafficKind.ALL_TO_ALL || kind == TrafficKind.P2P || model.get(kind) > 0) {
                kinds.add(kind.jsonName() + " " + Units.bytes(model.get(kind)));
            }
        }
        String moved = String.join(", ", kinds);
        if (failures.isEmpty()) {
            out.printf(Locale.ROOT, "bytes sent per rank, %-8s: %s %s %d ranks = cost model: ok%n", pass, moved,
                    uniform ? "on each of" : "at most, per-rank models on all", ranks.size());
        } else {
            out.printf(Locale.ROOT, "bytes sent per rank, %-8s: cost model %s; FAILED: %s%n", pass, moved,
                    String.join("; ", failures));
        }
        return failures;
    }

    private static String describe(RankBackends backends) {
        return backends.kind() == BackendKind.CPU
                ? "cpu backend (" + backends.cpuThreads() + " kernel threads shared by the ranks)"
                : "cuda backend (in-process ranks on GPU 0, cuDNN SDPA)";
    }

    private static Tensor random(Arena arena, AttentionProblem p, long heads, long seed) {
        Tensor t = Tensor.allocate(arena, p.dtype(), p.batch(), p.seq(), heads, p.headDim());
        HostTensors.fillNormal(t, seed);
        return t;
    }
}
