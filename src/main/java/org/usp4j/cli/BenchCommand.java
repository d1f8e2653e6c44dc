package org.usp4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.usp4j.api.Mesh;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.bench.GpuSuite;
import org.usp4j.bench.Pass;
import org.usp4j.bench.Timings;
import org.usp4j.comm.nccl.NcclProcessRank;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.engine.ProcessRanks;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.UspPlan;
import org.usp4j.sp.linear.Lasp2Attention;
import org.usp4j.sp.linear.LinearAttentionOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j bench}: USP throughput over sequence lengths and meshes on one backend, forward and
 * backward. Each configuration deals random inputs to its ranks once, then times {@code --warmup} plus
 * {@code --repeat} calls of the distributed attention itself (Ulysses exchanges, ring steps, kernels) and
 * reports the median. Text table, or one JSON object per line with {@code --json}; {@code --plot} draws
 * throughput against sequence length. {@code --suite gpu} runs the fixed GPU comparison suite instead.
 *
 * <p>Both worlds take one path through the {@link AttentionEngine}. Under a launcher with P processes,
 * each process is one rank on its own GPU over NCCL ({@link ProcessRanks}): every mesh must have P ranks, each rank makes the inputs from the shared
 * seed and keeps its shard, and rank 0 prints the rows (the slowest rank's time) and every rank's bytes.
 */
@Command(name = "bench",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        description = {
            "Measure USP attention throughput over sequence lengths and meshes (U x R simulated ranks): "
                    + "time per call, FLOP/s over unmasked pairs (forward 4*b*h*pairs*d, backward 2.5x), "
                    + "the bytes one rank sent per call next to the cost model, and the spread (max/min) of the "
                    + "ranks' attention pairs (the unmasked (query, key) pairs each rank's kernels computed).",
            "",
            "--attention linear measures linear attention with LASP-2 (--decay G under --causal) and, at the same "
                    + "shapes and meshes, softmax attention with ring attention, one row each (cpu backend).",
            "",
            "--suite gpu prints the JSON lines of the GPU comparison suite (.ci/gpu-suite): single-call cuDNN "
                    + "SDPA on bf16, h=16, head_dim 64 and 128, causal and not, 4K..64K tokens (or --seq), and USP "
                    + "over 4 in-process device ranks at 64K tokens.",
            "",
            "Under a launcher (usp4j launch, torchrun, srun, mpirun) with P processes, each process is one rank on "
                    + "its own GPU over NCCL; every --mesh must have P ranks (default: every U x R = P) and rank 0 "
                    + "prints the table (the slowest rank's time) with every rank's bytes."
        })
final class BenchCommand implements Callable<Integer> {

    static final String CPU_SEQS = "1024,2048,4096";
    static final String CPU_MESHES = "1x1,2x1,1x2,2x2";
    static final String GPU_SEQS = "4096,8192,16384,32768,65536";
    static final String GPU_MESHES = "1x1,1x4,2x2,4x1";

    private static final Pattern MESH = Pattern.compile("(\\d{1,4})x(\\d{1,4})");
    private static final ObjectMapper JSON = JsonMapper.builder().build();

    /** The fixed suites. */
    enum Suite {
        GPU;

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }

        static final class Converter extends LowercaseEnumConverter<Suite> {
            Converter() {
                super(Suite.class);
            }
        }
    }

    @Spec
    CommandSpec spec;

    @Option(names = "--backend", paramLabel = "auto|cpu|cuda", defaultValue = "auto", converter = BackendKind.Converter.class,
            description = "Where the ranks compute; auto picks cuda when a GPU is usable (default: ${DEFAULT-VALUE}).")
    BackendKind backend;

    @Option(names = "--seq", paramLabel = "S", split = ",",
            description = "Sequence lengths, comma-separated (default: " + CPU_SEQS + " on cpu, " + GPU_SEQS + " on cuda).")
    List<Long> seqs;

    @Option(names = "--mesh", paramLabel = "UxR", split = ",",
            description = "Meshes, Ulysses x Ring, comma-separated (default: " + CPU_MESHES + " on cpu, " + GPU_MESHES
                    + " on cuda).")
    List<String> meshes;

    @Option(names = "--repeat", paramLabel = "N", defaultValue = "3",
            description = "Timed calls per configuration; the median is reported (default: ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "1",
            description = "Untimed calls first (JIT, plans) (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--backward", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Also time the backward (default: on; --no-backward for the forward only).")
    boolean backward;

    @Option(names = "--attention", paramLabel = "softmax|linear", defaultValue = "softmax",
            converter = AttentionKindOption.Converter.class,
            description = "softmax (USP around --ring-algo), or linear: LASP-2 next to softmax ring attention at the "
                    + "same shapes (default: ${DEFAULT-VALUE}).")
    AttentionKindOption attention;

    @Option(names = "--decay", paramLabel = "G",
            description = "Linear attention's decay under --causal, 0 < G <= 1 (default: 1).")
    Double decay;

    @Option(names = "--json", description = "One JSON object per line instead of the table.")
    boolean json;

    @Option(names = "--plot", paramLabel = "FILE.png|FILE.svg",
            description = "Also draw throughput against sequence length (PNG or SVG, by the extension).")
    Path plot;

    @Option(names = "--suite", paramLabel = "gpu", converter = Suite.Converter.class,
            description = "Run a fixed suite instead of the table: gpu (JSON lines; needs a GPU).")
    Suite suite;

    @Mixin
    ProblemOptions problemOptions;

    /** Where a launcher's variables are read from (tests put their own). */
    Map<String, String> environment = System.getenv();

    @Override
    public Integer call() throws IOException {
        ProblemOptions.requirePositive(spec.commandLine(), "--repeat", repeat);
        if (warmup < 0) {
            throw new ParameterException(spec.commandLine(), "--warmup must be >= 0, got " + warmup);
        }
        ThroughputPlot.Format plotFormat = null;
        if (plot != null) {
            if (suite != null) {
                throw new ParameterException(spec.commandLine(), "--plot does not go with --suite");
            }
            plotFormat = ThroughputPlot.Format.of(plot);
            if (plotFormat == null) {
                throw new ParameterException(spec.commandLine(), "--plot " + plot + ": the file name must end in .png or .svg");
            }
        }
        attention.checkDecay(spec.commandLine(), problemOptions.causal, decay);
        boolean linear = attention == AttentionKindOption.LINEAR;
        if (linear && plot != null) {
            throw new ParameterException(spec.commandLine(), "--plot draws softmax attention only; leave it out with "
                    + "--attention linear");
        }
        LaunchEnvironment launch = LaunchEnvironment.detect(environment);
        if (linear && (backend == BackendKind.CUDA || launch.isDistributed() || suite != null)) {
            throw new CommandFailure("--attention linear runs on in-process cpu ranks only: the cuda backend has no "
                    + "linear attention kernel yet");
        }
        if (launch.isDistributed()) {
            return callDistributed(launch);
        }
        if (suite != null) {
            return runGpuSuite();
        }
        LinearAttentionOptions linearOptions = linear ? LinearAttentionOptions.of(problemOptions.causal, decay, null)
                : null;
        List<Mesh> givenMeshes = meshes != null ? parseMeshes(meshes) : null;
        PrintWriter out = spec.commandLine().getOut();
        List<BenchRow> rows = new ArrayList<>();
        try (RankBackends backends = RankBackends.open(linear && backend == BackendKind.AUTO ? BackendKind.CPU : backend);
             Progress progress = new Progress(StatusLine.forStderr(spec.commandLine().getErr()))) {
            boolean cuda = backends.kind() == BackendKind.CUDA;
            List<Long> seqList = seqs != null ? seqs : parseLongs(cuda ? GPU_SEQS : CPU_SEQS);
            List<Mesh> meshList = givenMeshes != null ? givenMeshes
                    : parseMeshes(List.of((cuda ? GPU_MESHES : CPU_MESHES).split(",")));
            List<AttentionProblem> problems = new ArrayList<>();
            for (long s : seqList) {
                problems.add(problemOptions.problem(spec.commandLine(), s));
            }
            for (Mesh mesh : meshList) {
                for (AttentionProblem p : problems) {
                    problemOptions.requireFits(spec.commandLine(), p, mesh);
                }
            }
            if (plot != null) {
                OutputPaths.requireWritable(plot, "--plot");
            }
            String backendName = backends.kind().toString();
            if (!json) {
                AttentionProblem first = problems.get(0);
                out.printf(Locale.ROOT, "usp4j bench: %s backend%s; b=%d h=%d h_kv=%d d=%d %s, %s; median of %d call%s "
                                + "after %d warm-up; spread: most attention pairs of a rank over fewest%n", backendName,
                        cuda ? " (in-process ranks on GPU 0)" : " (" + backends.cpuThreads() + " kernel threads)",
                        first.batch(), first.heads(), first.kvHeads(), first.headDim(),
                        first.dtype().name().toLowerCase(Locale.ROOT), linear ? "linear: LASP-2, " + linearOptions.mask()
                                + ", contiguous layout; softmax: " + problemOptions.describe() : problemOptions.describe(),
                        repeat, repeat == 1 ? "" : "s", warmup);
                out.printf(Locale.ROOT, "%s%-6s %5s %8s %-4s %11s %7s %11s %12s %12s%n", linear ? "attention " : "", "mesh",
                        "ranks", "seq", "pass", "ms/call", "spread", cuda ? "TFLOP/s" : "GFLOP/s", "bytes/rank",
                        "cost model");
                out.flush();
            }
            // --attention linear: LASP-2 and softmax (the --ring-algo, ring by default) on the same shapes, in turn.
            List<UspPlanChoice> choices = new ArrayList<>();
            for (Mesh mesh : meshList) {
                if (linear) {
                    choices.add(new UspPlanChoice(AttentionKindOption.LINEAR, Lasp2Attention.plan(mesh, linearOptions)));
                }
                choices.add(new UspPlanChoice(AttentionKindOption.SOFTMAX, problemOptions.plan(mesh)));
            }
            for (UspPlanChoice choice : choices) {
                Mesh mesh = choice.plan().mesh();
                for (AttentionProblem problem : problems) {
                    String what = (linear ? choice.kind() + ", " : "") + "mesh " + mesh.ulysses() + "x" + mesh.ring()
                            + ", S=" + problem.seq();
                    progress.phase(what + ": dealing inputs");
                    AttentionEngine.Result m;
                    try (AttentionEngine w = AttentionEngine.inProcess(choice.plan(), backends::forRank,
                            GpuSuite.BENCH_TIMEOUT)) {
                        w.dealRandom(problem.shapes(), problem.dtype(), problemOptions.seed);
                        m = w.measure(warmup, repeat, backward, i -> progress.phase(what + (i < warmup
                                ? ": warm-up call " + (i + 1) : ": timed call " + (i - warmup + 1) + " of " + repeat)));
                    }
                    List<BenchRow> made = new ArrayList<>();
                    made.add(row(backendName, choice, problem, Pass.FORWARD, m));
                    if (backward) {
                        made.add(row(backendName, choice, problem, Pass.BACKWARD, m));
                    }
                    progress.clear();
                    for (BenchRow r : made) {
                        print(out, r, cuda, linear);
                    }
                    rows.addAll(made);
                }
            }
        }
        if (plot != null) {
            String title = "usp4j USP throughput, " + rows.get(0).backend() + " backend, " + problemOptions.describe();
            try {
                ThroughputPlot.write(plot, plotFormat, title, rows);
            } catch (NoClassDefFoundError e) {
                throw new CommandFailure("--plot needs XChart (org.knowm.xchart:xchart) on the class path: " + e.getMessage());
            }
            if (!json) {
                out.println("plot: " + plot);
            }
        }
        out.flush();
        return ExitCodes.OK;
    }

    /**
     * One rank of a multi-process benchmark (see {@link ProcessRanks}): every mesh must use all the
     * processes (default: every U x R = world size), checks that need no peer come first, rank 0 prints.
     */
    private int callDistributed(LaunchEnvironment env) throws IOException {
        String who = "rank " + env.rank() + " of " + env.worldSize() + " (" + env.source().description() + ")";
        if (plot != null || suite != null) {
            throw new CommandFailure(who + ": " + (plot != null ? "--plot" : "--suite") + " is for single-process runs");
        }
        if (backend == BackendKind.CPU) {
            throw new CommandFailure(who + ": --backend cpu runs in-process ranks only; a multi-process bench "
                    + "computes on cuda (--backend auto or cuda)");
        }
        List<Mesh> meshList = new ArrayList<>();
        if (meshes != null) {
            for (Mesh m : parseMeshes(meshes)) {
                if (m.size() != env.worldSize()) {
                    throw new CommandFailure(who + ": --mesh " + m.ulysses() + "x" + m.ring() + " makes " + m.size()
                            + " ranks, but the launcher started " + env.worldSize() + " processes");
                }
                meshList.add(m);
            }
        } else {
            for (int u = env.worldSize(); u >= 1; u--) {
                if (env.worldSize() % u == 0) {
                    meshList.add(new Mesh(u, env.worldSize() / u));
                }
            }
        }
        List<AttentionProblem> problems = new ArrayList<>();
        for (long s : seqs != null ? seqs : parseLongs(GPU_SEQS)) {
            AttentionProblem p = problemOptions.problem(spec.commandLine(), s);
            for (Mesh mesh : meshList) {
                problemOptions.requireFits(spec.commandLine(), p, mesh);
            }
            problems.add(p);
        }
        env.requireToken();
        NcclProcessRank.unavailableReason().ifPresent(why -> {
            throw new CommandFailure(who + ": a multi-process run needs a GPU with CUDA, cuDNN and NCCL: " + why);
        });
        PrintWriter out = spec.commandLine().getOut();
        boolean root = env.rank() == 0;
        NcclProcessRank rank;
        try {
            rank = NcclProcessRank.open(env, NcclProcessRank.exitWhenStuck(System.err, Duration.ofSeconds(30)));
        } catch (RuntimeException e) {
            throw AttentionCommand.rankFailure(who, e);
        }
        try {
            if (root && !json) {
                AttentionProblem first = problems.get(0);
                out.printf(Locale.ROOT, "usp4j bench: cuda backend (%d processes on NCCL, one GPU each); b=%d h=%d "
                                + "h_kv=%d d=%d %s, %s; slowest rank, median of %d call%s after %d warm-up%n",
                        env.worldSize(), first.batch(), first.heads(), first.kvHeads(), first.headDim(),
                        first.dtype().name().toLowerCase(Locale.ROOT), problemOptions.describe(), repeat,
                        repeat == 1 ? "" : "s", warmup);
                out.printf(Locale.ROOT, "%-6s %5s %8s %-4s %11s %7s %11s %12s %12s%n", "mesh", "ranks", "seq", "pass",
                        "ms/call", "spread", "TFLOP/s", "bytes/rank", "cost model");
                out.flush();
            }
            for (Mesh mesh : meshList) {
                for (AttentionProblem problem : problems) {
                    AttentionEngine.Result m;
                    try (AttentionEngine engine = new AttentionEngine(new ProcessRanks(rank), problemOptions.plan(mesh))) {
                        engine.dealRandom(problem.shapes(), problem.dtype(), problemOptions.seed);
                        m = engine.measure(warmup, repeat, backward, i -> { });
                    }
                    if (!root) {
                        continue;
                    }
                    print(out, row("cuda", mesh, problem, Pass.FORWARD, m), true);
                    printPerRank(out, m, true);
                    if (backward) {
                        print(out, row("cuda", mesh, problem, Pass.BACKWARD, m), true);
                        printPerRank(out, m, false);
                    }
                }
            }
        } catch (RuntimeException e) {
            rank.closeAfterFailure();
            throw AttentionCommand.rankFailure(who, e);
        } catch (Error e) {
            rank.closeAfterFailure();
            throw e;
        }
        rank.close();
        out.flush();
        return ExitCodes.OK;
    }

    private static long maxTotal(AttentionEngine.Result m, boolean forward) {
        return m.ranks().stream().mapToLong(r -> (forward ? r.forwardBytes() : r.backwardBytes()).total()).max()
                .orElse(0);
    }

    /** Table mode: what each rank sent and its median, under the row. */
    private void printPerRank(PrintWriter out, AttentionEngine.Result m, boolean forward) {
        if (json) {
            return;
        }
        List<String> parts = new ArrayList<>();
        for (AttentionEngine.RankFigures r : m.ranks()) {
            RankBytes bytes = forward ? r.forwardBytes() : r.backwardBytes();
            parts.add(String.format(Locale.ROOT, "%d: %s %.3f ms", r.rank(), Units.bytes(bytes.total()),
                    Timings.median(forward ? r.forwardSeconds() : r.backwardSeconds()) * 1e3));
        }
        out.println("       per rank (sent, median): " + String.join("; ", parts));
        out.flush();
    }

    private int runGpuSuite() {
        PrintWriter out = spec.commandLine().getOut();
        if (backend == BackendKind.CPU) {
            throw new ParameterException(spec.commandLine(), "--suite gpu runs on cuda, not on --backend cpu");
        }
        try (RankBackends backends = RankBackends.open(BackendKind.CUDA)) {
            GpuSuite.Config standard = GpuSuite.Config.standard();
            GpuSuite.Config config = seqs == null ? standard : new GpuSuite.Config(List.copyOf(seqs), standard.headDims(),
                    standard.heads(), standard.warmup(), standard.reps(), standard.sets(), standard.uspSeq(),
                    standard.uspMeshes(), standard.uspHeadDims(), standard.uspReps());
            GpuSuite.run(config, fields -> {
                try {
                    out.println(JSON.writeValueAsString(fields));
                } catch (JsonProcessingException e) {
                    throw new UncheckedIOException(e);
                }
                out.flush();
            });
        }
        return ExitCodes.OK;
    }

    /** What one group of rows ran: the kind of attention and its plan. */
    private record UspPlanChoice(AttentionKindOption kind, UspPlan plan) {
    }

    private BenchRow row(String backendName, Mesh mesh, AttentionProblem p, Pass pass, AttentionEngine.Result m) {
        return row(backendName, new UspPlanChoice(AttentionKindOption.SOFTMAX, problemOptions.plan(mesh)), p, pass, m);
    }

    /** One pass's row: the slowest rank's median time, the most bytes any rank sent, every rank's pairs. */
    private BenchRow row(String backendName, UspPlanChoice choice, AttentionProblem p, Pass pass,
                         AttentionEngine.Result m) {
        boolean forward = pass == Pass.FORWARD;
        List<Double> seconds = forward ? m.forwardSpans() : m.backwardSpans();
        long bytes = maxTotal(m, forward);
        double median = Timings.median(seconds);
        double best = seconds.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
        boolean linear = choice.kind() == AttentionKindOption.LINEAR;
        // Linear attention: the state products, K^T V and Q M (2 b h S d^2 each), twice that backward.
        double linearFlops = 4.0 * p.batch() * p.heads() * p.seq() * p.headDim() * p.headDim()
                * (pass == Pass.FORWARD ? 1 : 2);
        double flops = (linear ? linearFlops : p.flops(pass, problemOptions.causal)) / median;
        UspPlan plan = choice.plan();
        Mesh mesh = plan.mesh();
        long model = 0;
        for (int r = 0; r < mesh.size(); r++) {
            RankBytes b = forward ? plan.forwardBytes(p.shapes(), p.dtype(), r) : plan.backwardBytes(p.shapes(), p.dtype(), r);
            model = Math.max(model, b.total());
        }
        List<Long> pairs = m.ranks().stream()
                .map(f -> forward ? f.forwardPairs() : f.backwardPairs()).toList();
        double spread = m.pairsSpread(forward);
        return new BenchRow(backendName, mesh.ulysses() + "x" + mesh.ring(), mesh.ulysses(), mesh.ring(), mesh.size(),
                p.seq(), p.batch(), p.heads(), p.kvHeads(), p.headDim(), p.dtype().name().toLowerCase(Locale.ROOT),
                problemOptions.causal, linear ? "contiguous" : problemOptions.layout.toString(), choice.kind().toString(),
                pass.label(), seconds.size(), median * 1e3,
                best * 1e3, flops * 1e-9, flops * 1e-12, bytes, model, pairs, Double.isNaN(spread) ? null : spread);
    }

    private void print(PrintWriter out, BenchRow r, boolean cuda) throws JsonProcessingException {
        print(out, r, cuda, false);
    }

    private void print(PrintWriter out, BenchRow r, boolean cuda, boolean kindColumn) throws JsonProcessingException {
        if (json) {
            out.println(JSON.writeValueAsString(r));
        } else {
            out.printf(Locale.ROOT, "%s%-6s %5d %8d %-4s %11.3f %7s %11.1f %12s %12s%n",
                    kindColumn ? String.format(Locale.ROOT, "%-9s ", r.attention()) : "", r.mesh(), r.ranks(), r.seq(),
                    r.pass(), r.ms(), r.pairsSpread() == null ? "-" : String.format(Locale.ROOT, "%.2f", r.pairsSpread()),
                    cuda ? r.tflops() : r.gflops(), Units.bytes(r.bytesPerRank()), Units.bytes(r.modelBytesPerRank()));
        }
        out.flush();
    }

    private List<Mesh> parseMeshes(List<String> specs) {
        List<Mesh> list = new ArrayList<>();
        for (String m : specs) {
            Matcher matcher = MESH.matcher(m.strip().toLowerCase(Locale.ROOT));
            if (!matcher.matches()) {
                throw new ParameterException(spec.commandLine(), "--mesh " + m + ": expected UxR, e.g. 2x2");
            }
            int u = Integer.parseInt(matcher.group(1));
            int r = Integer.parseInt(matcher.group(2));
            if (u < 1 || r < 1) {
                throw new ParameterException(spec.commandLine(), "--mesh " + m + ": degrees must be >= 1");
            }
            list.add(new Mesh(u, r));
        }
        return list;
    }

    private static List<Long> parseLongs(String csv) {
        List<Long> list = new ArrayList<>();
        for (String s : csv.split(",")) {
            list.add(Long.parseLong(s));
        }
        return list;
    }
}
