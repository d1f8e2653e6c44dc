package org.usp4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.usp4j.cuda.Cuda;
import org.usp4j.plan.Calibration;
import org.usp4j.plan.CostProfile;
import org.usp4j.plan.Plan;
import org.usp4j.plan.PlanShape;
import org.usp4j.plan.PlannedGroup;
import org.usp4j.plan.SequencePlanner;
import org.usp4j.plan.StepTimeModel;
import org.usp4j.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j plan}: heterogeneity-adaptive SP (FlexSP). For one step's sequence lengths on P ranks,
 * SP groups of their own sizes and U x R meshes and the sequences each runs, chosen by a mixed-integer
 * program over a measured cost model, against the best static mesh. {@code --calibrate} measures the
 * model's constants here and writes a profile; {@code --bench} plans long-tailed batches for P = 8, 16, 64.
 */
@Command(name = "plan",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        description = {
            "Plan heterogeneity-adaptive sequence parallelism (FlexSP): split P ranks into SP groups of their own "
                    + "sizes and U x R meshes and give every sequence of the batch to one group, minimising the step "
                    + "time (the slowest group's attention forward and backward) under a cost model, within the memory "
                    + "per rank; compared with the best single U x R mesh over all P ranks.",
            "",
            "--calibrate measures the cost model's constants on --backend and writes a profile (--output, else stdout); "
                    + "--bench plans seeded lognormal batches for P = 8, 16, 64 and prints the table."
        })
final class PlanCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    @Spec
    CommandSpec spec;

    @Option(names = "--lengths", paramLabel = "L1,L2,...", split = ",",
            description = "The batch's sequence lengths in tokens, comma-separated.")
    List<String> lengths;

    @Option(names = "--ranks", paramLabel = "P", description = "Ranks to plan for.")
    Integer ranks;

    @Option(names = "--heads", paramLabel = "H", defaultValue = "32", description = "Query heads (default: ${DEFAULT-VALUE}).")
    long heads;

    @Option(names = "--kv-heads", paramLabel = "HKV", defaultValue = "8",
            description = "Key/value heads, dividing --heads (default: ${DEFAULT-VALUE}).")
    long kvHeads;

    @Option(names = "--head-dim", paramLabel = "D", defaultValue = "128", description = "Head size (default: ${DEFAULT-VALUE}).")
    long headDim;

    @Option(names = "--dtype", paramLabel = "f32|bf16|f16", defaultValue = "bf16", converter = DTypeConverter.class,
            description = "Element type (default: ${DEFAULT-VALUE}).")
    DType dtype;

    @Option(names = "--causal", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Causal attention, zigzag layout (default; --no-causal: full attention, contiguous layout).")
    boolean causal;

    @Option(names = "--memory-per-rank", paramLabel = "BYTES",
            description = "Memory a rank may hold for attention (default: the profile's).")
    Long memoryPerRank;

    @Option(names = "--profile", paramLabel = "FILE", description = "Cost profile from --calibrate (default: the built-in one).")
    Path profile;

    @Option(names = "--time-limit-ms", paramLabel = "MS", defaultValue = "2000",
            description = "The solver's time limit; past it the better of its best plan and the greedy one is used "
                    + "(default: ${DEFAULT-VALUE}).")
    long timeLimitMs;

    @Option(names = "--json", description = "Print the plan as one JSON object.")
    boolean json;

    @Option(names = "--calibrate", description = "Measure the cost model's constants on --backend and write a profile.")
    boolean calibrate;

    @Option(names = "--backend", paramLabel = "cpu|cuda", defaultValue = "cpu", converter = BackendKind.Converter.class,
            description = "With --calibrate: where to measure (default: ${DEFAULT-VALUE}).")
    BackendKind backend;

    @Option(names = "--output", paramLabel = "FILE", description = "With --calibrate: the profile file (default: stdout).")
    Path output;

    @Option(names = "--bench", description = "Plan seeded lognormal batches for P = 8, 16, 64 and print the table.")
    boolean bench;

    @Override
    public Integer call() throws IOException {
        if (calibrate && bench) {
            throw new ParameterException(spec.commandLine(), "--calibrate and --bench do not go together");
        }
        PlanShape shape = shape();
        if (calibrate) {
            return calibrate(shape);
        }
        if (timeLimitMs < 1) {
            throw new ParameterException(spec.commandLine(), "--time-limit-ms must be >= 1, got " + timeLimitMs);
        }
        if (memoryPerRank != null && memoryPerRank < 1) {
            throw new ParameterException(spec.commandLine(), "--memory-per-rank must be >= 1, got " + memoryPerRank);
        }
        CostProfile costs = loadProfile();
        StepTimeModel model = new StepTimeModel(costs, shape);
        SequencePlanner.Options options = new SequencePlanner.Options(Duration.ofMillis(timeLimitMs),
                SequencePlanner.Options.defaults().maxBuckets());
        if (bench) {
            return PlanBench.run(spec.commandLine().getOut(), model, options, json);
        }
        if (lengths == null) {
            throw new ParameterException(spec.commandLine(), "--lengths is required (or --calibrate, --bench)");
        }
        if (ranks == null) {
            throw new ParameterException(spec.commandLine(), "--ranks is required");
        }
        ProblemOptions.requirePositive(spec.commandLine(), "--ranks", ranks);
        long[] batch = parseLengths();
        SequencePlanner.Result result;
        try {
            result = SequencePlanner.plan(batch, ranks, model, options);
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(JSON.writeValueAsString(toJson(result)));
        } else {
            print(out, batch, model, result);
        }
        out.flush();
        return ExitCodes.OK;
    }

    private PlanShape shape() {
        ProblemOptions.requirePositive(spec.commandLine(), "--heads", heads);
        ProblemOptions.requirePositive(spec.commandLine(), "--kv-heads", kvHeads);
        ProblemOptions.requirePositive(spec.commandLine(), "--head-dim", headDim);
        if (heads % kvHeads != 0) {
            throw new ParameterException(spec.commandLine(), "--heads " + heads + " is not a multiple of --kv-heads " + kvHeads);
        }
        return new PlanShape(heads, kvHeads, headDim, dtype, causal);
    }

    private long[] parseLengths() {
        if (lengths.isEmpty() || lengths.stream().allMatch(String::isBlank)) {
            throw new ParameterException(spec.commandLine(), "--lengths is empty: give at least one sequence length");
        }
        long[] batch = new long[lengths.size()];
        for (int i = 0; i < batch.length; i++) {
            String v = lengths.get(i).strip();
            try {
                batch[i] = Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new ParameterException(spec.commandLine(), "--lengths: \"" + v + "\" (sequence " + i
                        + ") is not a whole number");
            }
            if (batch[i] < 1 || batch[i] > (1L << 40)) {
                throw new ParameterException(spec.commandLine(), "--lengths: sequence " + i + " has length " + batch[i]
                        + "; lengths must be between 1 and 2^40");
            }
        }
        return batch;
    }

    private CostProfile loadProfile() throws IOException {
        CostProfile p;
        if (profile == null) {
            p = CostProfile.builtInDefault();
        } else {
            try {
                p = CostProfile.read(profile);
            } catch (NoSuchFileException e) {
                throw new CommandFailure("--profile " + profile + ": no such file");
            } catch (IllegalArgumentException e) {
                throw new CommandFailure(e.getMessage());
            }
        }
        return memoryPerRank != null ? p.withMemoryPerRank(memoryPerRank) : p;
    }

    private int calibrate(PlanShape shape) throws IOException {
        if (backend == BackendKind.AUTO) {
            throw new ParameterException(spec.commandLine(), "--calibrate needs --backend cpu or cuda");
        }
        if (output != null) {
            OutputPaths.requireWritable(output, "--output");
        }
        boolean cuda = backend == BackendKind.CUDA;
        CostProfile measured;
        try (RankBackends backends = RankBackends.open(backend);
             Progress progress = new Progress(StatusLine.forStderr(spec.commandLine().getErr()))) {
            progress.phase("calibrating on " + backend + " (attention at two lengths, then transfers)");
            long memory = memoryPerRank != null ? memoryPerRank : cuda ? Cuda.memoryInfo().totalBytes()
                    : Calibration.hostMemoryBytes().orElse(Runtime.getRuntime().maxMemory());
            String source = "usp4j plan --calibrate --backend " + backend + " on " + machine(cuda) + ", " + shape + ", "
                    + LocalDate.now();
            Calibration.Settings settings = new Calibration.Settings(shape,
                    cuda ? new long[] {4096, 16384} : new long[] {1024, 4096},
                    cuda ? new long[] {1L << 16, 1L << 28} : new long[] {1L << 16, 1L << 24}, 3);
            measured = Calibration.measure(backend.toString(), backends::forRank, settings, memory, source);
            progress.clear();
        }
        if (output == null) {
            spec.commandLine().getOut().println(measured.toJson().toPrettyString());
        } else {
            measured.write(output);
            spec.commandLine().getOut().println("profile: " + output);
        }
        spec.commandLine().getOut().flush();
        return ExitCodes.OK;
    }

    /** The CPU model (lscpu's "Model name", from /proc/cpuinfo) and core count, or the GPU's name. */
    private static String machine(boolean cuda) {
        if (cuda) {
            return Cuda.deviceProperties(0).name();
        }
        String model = System.getProperty("os.arch");
        try {
            model = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).strip()).findFirst().orElse(model);
        } catch (IOException e) {
            // not Linux: the architecture says less, but something
        }
        return model + " (" + Runtime.getRuntime().availableProcessors() + " processors), JDK " + Runtime.version();
    }

    static ObjectNode toJson(SequencePlanner.Result result) {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode groups = root.putArray("groups");
        for (PlannedGroup g : result.plan().groups()) {
            ObjectNode o = groups.addObject();
            ArrayNode r = o.putArray("ranks");
            g.ranks().forEach(r::add);
            o.put("ulysses", g.mesh().ulysses());
            o.put("ring", g.mesh().ring());
            ArrayNode s = o.putArray("sequences");
            g.sequences().forEach(s::add);
        }
        root.put("predicted_ms", result.plan().predictedSeconds() * 1e3);
        if (result.staticBaseline().isPresent()) {
            root.put("static_predicted_ms", result.staticBaseline().get().predictedSeconds() * 1e3);
            root.put("static_mesh", result.staticMesh().orElseThrow());
        } else {
            root.putNull("static_predicted_ms");
            root.putNull("static_mesh");
        }
        return root;
    }

    private static void print(PrintWriter out, long[] batch, StepTimeModel model, SequencePlanner.Result result) {
        Plan plan = result.plan();
        out.printf(Locale.ROOT, "usp4j plan: %d sequences on %d ranks; %s; memory per rank %s%n", batch.length,
                plan.worldSize(), model.shape(), Units.bytes(model.profile().memoryPerRankBytes()));
        out.println("cost profile: " + model.profile().backend() + ", " + model.profile().source());
        out.printf(Locale.ROOT, "%-5s %-9s %-6s %12s %12s  %s%n", "group", "ranks", "mesh", "predicted ms", "memory/rank",
                "sequences (index:length)");
        for (int g = 0; g < plan.groups().size(); g++) {
            PlannedGroup group = plan.groups().get(g);
            int first = group.ranks().getFirst();
            int last = group.ranks().getLast();
            out.printf(Locale.ROOT, "%-5d %-9s %-6s %12.3f %12s  %s%n", g, first == last ? "" + first : first + "-" + last,
                    StepTimeModel.label(group.mesh()), group.predictedSeconds() * 1e3,
                    Units.bytes(group.memoryBytesPerRank()),
                    group.sequences().stream().map(i -> i + ":" + batch[i]).collect(Collectors.joining(" ")));
        }
        out.printf(Locale.ROOT, "predicted step: %.3f ms on %d of %d ranks (%s)%n", plan.predictedSeconds() * 1e3,
                plan.ranksUsed(), plan.worldSize(), describe(result));
        if (result.staticBaseline().isPresent()) {
            double s = result.staticBaseline().get().predictedSeconds();
            out.printf(Locale.ROOT, "best static mesh %s: %.3f ms; the plan is %.2fx faster%n", result.staticMesh().get(),
                    s * 1e3, s / plan.predictedSeconds());
        } else {
            out.println("best static mesh: none holds the whole batch within the memory per rank");
        }
    }

    static String describe(SequencePlanner.Result result) {
        return switch (result.method()) {
            case SOLVER_OPTIMAL -> "integer program, optimal";
            case SOLVER_TIME_LIMIT -> "integer program, best plan at the time limit";
            case GREEDY -> "greedy plan: the integer program found no better one in time";
        };
    }
}
