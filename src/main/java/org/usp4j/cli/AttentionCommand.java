package org.usp4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.api.Mesh;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.comm.nccl.NcclProcessRank;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.engine.ProcessRanks;
import org.usp4j.io.SafetensorsFile;
import org.usp4j.io.SafetensorsWriter;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.RingAlgorithm;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.UspPlan;
import org.usp4j.sp.linear.Lasp2Attention;
import org.usp4j.sp.linear.LinearAttentionOptions;
import org.usp4j.tensor.Tensor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j attention}: deals global q, k, v (and do) from a safetensors file to U x R in-process
 * ranks, runs the sequence-parallel forward (and backward), gathers the results back into global order
 * and writes them, with an optional per-rank traffic report. Every option, path and shape is checked
 * before any attention work starts. One path through the {@link AttentionEngine} for both worlds:
 * started by a launcher with U x R processes ({@code usp4j launch}, torchrun, srun, mpirun; see
 * {@link LaunchEnvironment}), each process is one rank on its own GPU over NCCL instead
 * ({@link ProcessRanks}); rank 0 writes the output and the report.
 */
@Command(name = "attention",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        description = {
            "Run sequence-parallel attention (USP: Ulysses inside groups of U ranks, Ring across R groups) "
                    + "on U*R simulated ranks and write the results.",
            "",
            "IN holds q [b,s,h,d], k and v [b,s,h_kv,d] and, for --backward, do [b,s,h,d], all F32, BF16 or F16 "
                    + "(one dtype). OUT gets out [b,s,h,d] in that dtype and lse [b,h,s] F32 (natural log), and "
                    + "with --backward dq, dk, dv in that dtype.",
            "",
            "Packed sequences: with cu_seqlens (I32 [n+1]: 0, increasing, last = s; b = 1) in IN, attention stays "
                    + "inside each sequence (--causal: causal within each) and OUT gets cu_seqlens too. Contiguous "
                    + "and striped deal the packed stream; zigzag splits every sequence (each length divisible by 2*U*R).",
            "",
            "--attention linear runs linear attention, out_i = scale * sum_j w(i,j) (q_i . k_j) v_j with w = G^(i-j) "
                    + "for j <= i under --causal (--decay G, default 1) and w = 1 otherwise, sequence-parallel with "
                    + "LASP-2 (one all-gather of d x d states per pass) inside Ulysses; OUT then has no lse.",
            "",
            "Under a launcher (usp4j launch, torchrun, srun, mpirun) that started U*R processes, each process is "
                    + "one rank on its own GPU over NCCL; rank 0 writes OUT and the report (with every rank's bytes)."
        })
final class AttentionCommand implements Callable<Integer> {

    private static final Logger LOG = LogManager.getLogger(AttentionCommand.class);
    /** How long a rank failed by its watchdog may take to report and exit before it is halted. */
    private static final Duration STUCK_GRACE = Duration.ofSeconds(30);

    @Spec
    CommandSpec spec;

    @Option(names = "--input", required = true, paramLabel = "IN.safetensors", description = "Input tensors.")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors", description = "Where to write the results.")
    Path output;

    @Option(names = "--ulysses", paramLabel = "U", defaultValue = "1",
            description = "Ulysses (all-to-all) degree: ranks per group that split the heads (default: ${DEFAULT-VALUE}).")
    int ulysses;

    @Option(names = "--ring", paramLabel = "R", defaultValue = "1",
            description = "Ring degree: groups that pass K/V blocks around a ring (default: ${DEFAULT-VALUE}).")
    int ring;

    @Option(names = "--attention", paramLabel = "softmax|linear", defaultValue = "softmax",
            converter = AttentionKindOption.Converter.class,
            description = "Softmax attention (USP around --ring-algo) or linear attention (USP around LASP-2) "
                    + "(default: ${DEFAULT-VALUE}).")
    AttentionKindOption attention;

    @Option(names = "--causal", description = "Causal mask (query i sees keys j <= i).")
    boolean causal;

    @Option(names = "--decay", paramLabel = "G",
            description = "Linear attention with --causal: weight G^(i-j) for key j of query i, 0 < G <= 1 (default: 1).")
    Double decay;

    @Option(names = "--layout", paramLabel = "contiguous|zigzag|striped", defaultValue = "contiguous",
            converter = LayoutOption.Converter.class,
            description = "How the sequence is dealt to ranks; zigzag and striped balance causal work "
                    + "(default: ${DEFAULT-VALUE}).")
    LayoutOption layout;

    @Option(names = "--ring-algo", paramLabel = RingAlgoOption.LABEL, defaultValue = "ring",
            converter = RingAlgoOption.class,
            description = "How the R ranks of a ring group attend: ring passes K/V blocks around, allgather "
                    + "all-gathers them once (default: ${DEFAULT-VALUE}).")
    RingAlgorithm ringAlgorithm;

    @Option(names = "--backward", description = "Also compute dq, dk, dv from the input's do.")
    boolean backward;

    @Option(names = "--scale", paramLabel = "X",
            description = "Scale of q . k (default: 1/sqrt(d) for softmax, 1 for linear attention).")
    Double scale;

    @Option(names = "--backend", paramLabel = "cpu|cuda", defaultValue = "cpu", converter = BackendKind.Converter.class,
            description = "Where the ranks compute (default: ${DEFAULT-VALUE}).")
    BackendKind backend;

    @Option(names = "--report", paramLabel = "REPORT.json",
            description = "Write the bytes each rank sent, per kind (all_to_all, p2p, all_gather, and reduce_scatter "
                    + "where the strategy uses it).")
    Path report;

    @Option(names = "--allow-nonfinite",
            description = "Compute even when an input holds NaN or Inf (by default such input is refused).")
    boolean allowNonfinite;

    @Option(names = "--dry-run",
            description = "Check everything, print the memory the run would need, and stop before computing.")
    boolean dryRun;

    @Option(names = "--plan", paramLabel = "auto",
            description = "Plan the packed input's sequences over --ranks in-process cpu ranks (FlexSP: groups of "
                    + "their own sizes and meshes, built-in cost profile) and run every group at once; needs "
                    + "cu_seqlens in IN, instead of --ulysses, --ring, --ring-algo and --layout.")
    String planMode;

    @Option(names = "--ranks", paramLabel = "P",
            description = "With --plan: the ranks to plan over (default: " + PlannedAttention.DEFAULT_RANKS + ").")
    Integer ranks;

    /** Where the launch environment is read from (a launcher's RANK, WORLD_SIZE, ...); tests put their own. */
    Map<String, String> environment = System.getenv();

    @Override
    public Integer call() throws IOException {
        checkOptions();
        if (planMode != null) {
            return new PlannedAttention(this).call();
        }
        boolean linear = attention == AttentionKindOption.LINEAR;
        LaunchEnvironment launch = LaunchEnvironment.detect(environment);
        boolean distributed = launch.isDistributed();
        if (linear && (backend == BackendKind.CUDA || distributed)) {
            throw new CommandFailure("--attention linear runs on in-process cpu ranks only: the cuda backend has no "
                    + "linear attention kernel yet");
        }
        String who = distributed ? "rank " + launch.rank() + " of " + launch.worldSize() + " ("
                + launch.source().description() + ")" : null;
        Mesh mesh = new Mesh(ulysses, ring);
        if (distributed) {
            checkLaunch(launch, who, mesh);
        }
        boolean root = !distributed || launch.rank() == 0;
        PrintWriter out = spec.commandLine().getOut();
        StatusLine status = distributed ? new StatusLine(spec.commandLine().getErr(), false)
                : StatusLine.forStderr(spec.commandLine().getErr());
        try (RankBackends backends = distributed ? null : RankBackends.open(backend)) {
            if (root) {
                OutputPaths.requireWritable(output, "--output");
                if (report != null) {
                    OutputPaths.requireWritable(report, "--report");
                }
            }
            if (Files.isDirectory(input)) {
                throw new CommandFailure("--input " + input + " is a directory");
            }
            try (SafetensorsFile in = SafetensorsFile.open(input); Arena arena = Arena.ofShared()) {
                AttentionInputs inputs = AttentionInputs.read(in, backward);
                inputs.checkMesh(ulysses, ring, layout);
                LinearAttentionOptions linearOptions = linear ? LinearAttentionOptions.of(causal, decay, scale) : null;
                UspPlan plan = linear ? Lasp2Attention.plan(mesh, linearOptions)
                        : new UspPlan(mesh, new AttentionOptions(causal, layout.layout(), scale), ringAlgorithm);
                try {
                    plan.validate(inputs.shapes(), inputs.sequences());
                } catch (IllegalArgumentException e) {
                    throw new CommandFailure(e.getMessage(), e);
                }
                String what = inputs.describe() + ", mesh " + ulysses + "x" + ring + (linear ? ", " + linearOptions
                        + " (LASP-2)" : (causal ? ", causal" : "") + ", " + layout
                        + (ringAlgorithm == RingAlgorithms.defaultAlgorithm() ? "" : ", " + ringAlgorithm.name()))
                        + (distributed ? ", " + launch.worldSize()
                        + " processes on NCCL" : ", backend " + backend);
                MemoryEstimate memory = MemoryEstimate.of(inputs.shapes(), inputs.dtype(), plan, backward);
                if (preflight(memory, inputs, distributed, root, backends, out, what)) {
                    return ExitCodes.OK; // a dry run
                }
                LOG.info("attention{}: {}; memory {}", distributed ? ", " + who : "", what, memory.describe());
                AttentionEngine.Result result = distributed ? runLaunched(launch, who, plan, inputs, arena)
                        : runInProcess(backends, plan, inputs, arena, status);
                if (!root) {
                    return ExitCodes.OK;
                }
                Map<String, Tensor> results = results(result.forward(), result.gradients());
                try {
                    status.show("writing " + output + " ...");
                    write(output, results, inputs, what);
                    if (report != null) {
                        TrafficReport.of(result.ranks()).write(report);
                    }
                } finally {
                    status.clear();
                }
                out.println("attention: " + what);
                if (distributed) {
                    for (AttentionEngine.RankFigures f : result.ranks()) {
                        out.println(String.format(Locale.ROOT, "rank %d (device %d): forward %.3f s%s, sent %s", f.rank(),
                                f.device(), f.forwardSeconds().getFirst(), backward ? String.format(Locale.ROOT,
                                        ", backward %.3f s", f.backwardSeconds().getFirst()) : "",
                                Units.bytes(f.bytesSent().total())));
                    }
                    out.println("wrote " + output + " (" + String.join(", ", results.keySet()) + ")"
                            + (report != null ? "; report " + report : ""));
                } else {
                    out.println(String.format(Locale.ROOT, "forward %.3f s%s; wrote %s (%s)",
                            result.forwardSpans().getFirst(), backward ? String.format(Locale.ROOT, ", backward %.3f s",
                                    result.backwardSpans().getFirst()) : "", output, String.join(", ", results.keySet()))
                            + (report != null ? "; report " + report : ""));
                }
                out.flush();
            }
        }
        return ExitCodes.OK;
    }

    /** What OUT holds: out, lse (absent for linear attention) and, after a backward, dq, dk, dv. */
    static Map<String, Tensor> results(ForwardResult forward, Gradients gradients) {
        Map<String, Tensor> results = new LinkedHashMap<>();
        results.put("out", forward.out());
        if (forward.lse() != null) {
            results.put("lse", forward.lse());
        }
        if (gradients != null) {
            results.put("dq", gradients.dq());
            results.put("dk", gradients.dk());
            results.put("dv", gradients.dv());
        }
        return results;
    }

    /** Writes OUT: the results, the input's cu_seqlens when packed, and what ran. */
    static void write(Path output, Map<String, Tensor> results, AttentionInputs inputs, String what) throws IOException {
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("generator", "usp4j attention " + VersionProvider.version());
        metadata.put("run", what);
        SafetensorsWriter.write(output, results, inputs.sequences() == null ? Map.of()
                : Map.of(AttentionInputs.CU_SEQLENS, inputs.sequences().toIntArray()), metadata);
    }

    /**
     * Refuses a run that cannot fit (unless it is a dry run), then inputs holding NaN or Inf (unless
     * allowed); a dry run then prints the estimate. True when this was a dry run and nothing is to be done.
     * In-process ranks hold their working sets in this host's memory (CPU) or on device 0 (CUDA); a
     * launched rank holds its own on its device, and rank 0 the gathered results on its host.
     */
    private boolean preflight(MemoryEstimate memory, AttentionInputs inputs, boolean distributed, boolean root,
                              RankBackends backends, PrintWriter out, String what) {
        boolean onDevice = distributed || backends.kind() == BackendKind.CUDA;
        long hostNeed = (root ? memory.resultBytes() : 0) + (onDevice ? 0 : memory.ranks() * memory.perRankBytes());
        long hostAvailable = MemoryEstimate.availableHostBytes();
        if (!dryRun) {
            memory.require(hostNeed, hostAvailable, "host");
            if (!distributed && onDevice) {
                memory.require(memory.ranks() * memory.perRankBytes(), backends.deviceFreeBytes(), "device");
            }
        }
        if (!allowNonfinite) {
            inputs.requireFinite(input);
        }
        if (!dryRun) {
            return false;
        }
        out.println("attention: " + what);
        out.println("memory: " + (distributed ? Units.bytes(memory.perRankBytes()) + " on this rank's device"
                : memory.describe() + (onDevice ? " on the device" : " on the host")) + ", "
                + Units.bytes(hostNeed) + " on the host" + (hostAvailable == Long.MAX_VALUE ? ""
                : " (" + Units.bytes(hostAvailable) + " available)") + "; dry run, nothing computed");
        out.flush();
        return true;
    }

    /** U x R in-process ranks on the chosen backend. */
    private AttentionEngine.Result runInProcess(RankBackends backends, UspPlan plan, AttentionInputs inputs,
                                                Arena arena, StatusLine status) {
        try (AttentionEngine engine = AttentionEngine.inProcess(plan, backends::forRank, LocalWorld.DEFAULT_TIMEOUT)) {
            status.show("attention on " + plan.mesh().size() + " ranks ...");
            return engine.run(inputs.q(), inputs.k(), inputs.v(), inputs.dout(), inputs.sequences(), arena);
        } finally {
            status.clear();
        }
    }

    /** This process's rank of a launched job on NCCL; rank 0 gets the results and every rank's figures. */
    private AttentionEngine.Result runLaunched(LaunchEnvironment env, String who, UspPlan plan, AttentionInputs inputs,
                                               Arena arena) {
        NcclProcessRank rank;
        try {
            rank = NcclProcessRank.open(env, NcclProcessRank.exitWhenStuck(System.err, STUCK_GRACE));
        } catch (RuntimeException e) {
            throw rankFailure(who, e);
        }
        AttentionEngine.Result result;
        try (AttentionEngine engine = new AttentionEngine(new ProcessRanks(rank), plan)) {
            result = engine.run(inputs.q(), inputs.k(), inputs.v(), inputs.dout(), inputs.sequences(), arena);
        } catch (RuntimeException e) {
            rank.closeAfterFailure();
            throw rankFailure(who, e);
        } catch (Error e) {
            rank.closeAfterFailure();
            throw e;
        }
        rank.close();
        return result;
    }

    /**
     * The checks of a multi-process run that need no peer, so that without a GPU (or with a mesh that does
     * not match the world) each rank fails with one line before any work.
     */
    private void checkLaunch(LaunchEnvironment env, String who, Mesh mesh) {
        if (mesh.size() != env.worldSize()) {
            throw new CommandFailure(who + ": --ulysses " + ulysses + " x --ring " + ring + " makes " + mesh.size()
                    + " ranks, but the launcher started " + env.worldSize() + " processes");
        }
        if (backend == BackendKind.CPU && spec.commandLine().getParseResult().hasMatchedOption("--backend")) {
            throw new CommandFailure(who + ": --backend cpu runs in-process ranks only; a multi-process run computes "
                    + "on cuda (leave --backend out or pass --backend cuda)");
        }
        env.requireToken();
        NcclProcessRank.unavailableReason().ifPresent(why -> {
            throw new CommandFailure(who + ": a multi-process run needs a GPU with CUDA, cuDNN and NCCL: " + why);
        });
    }

    /**
     * A rank's failure as one error line that names the rank: NCCL, CUDA, rendezvous and watchdog errors
     * (their messages mostly begin with "rank r of P" already); bad input stays as it is.
     */
    static RuntimeException rankFailure(String who, RuntimeException e) {
        if (e instanceof CommandFailure || e instanceof IllegalArgumentException) {
            return e;
        }
        String message = String.valueOf(e.getMessage());
        return new CommandFailure(message.startsWith("rank ") ? message : who + ": " + message, e);
    }

    /** {@code --plan auto} picks the meshes and layouts itself; {@code --ranks} belongs to it. */
    private void checkPlanOptions() {
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        if (planMode == null) {
            if (ranks != null) {
                throw new ParameterException(spec.commandLine(), "--ranks goes with --plan auto (a mesh run has "
                        + "--ulysses x --ring ranks)");
            }
            return;
        }
        if (!planMode.equals("auto")) {
            throw new ParameterException(spec.commandLine(), "--plan must be auto, got '" + planMode + "'");
        }
        for (String option : new String[] {"--ulysses", "--ring", "--ring-algo", "--layout"}) {
            if (parsed.hasMatchedOption(option)) {
                throw new ParameterException(spec.commandLine(), "--plan auto chooses each group's mesh and layout; "
                        + "leave out " + option);
            }
        }
        if (dryRun) {
            throw new ParameterException(spec.commandLine(), "--plan has no --dry-run");
        }
        if (attention == AttentionKindOption.LINEAR) {
            throw new ParameterException(spec.commandLine(), "--plan runs softmax attention only, not --attention linear");
        }
        if (ranks != null && ranks < 1) {
            throw new ParameterException(spec.commandLine(), "--ranks must be >= 1, got " + ranks);
        }
    }

    /** Usage errors (exit 2) that need no file: ranges the option types cannot express. */
    private void checkOptions() {
        if (ulysses < 1) {
            throw new ParameterException(spec.commandLine(), "--ulysses must be >= 1, got " + ulysses);
        }
        if (ring < 1) {
            throw new ParameterException(spec.commandLine(), "--ring must be >= 1, got " + ring);
        }
        try {
            Math.multiplyExact(ulysses, ring);
        } catch (ArithmeticException e) {
            throw new ParameterException(spec.commandLine(), "--ulysses " + ulysses + " x --ring " + ring + " is too many ranks");
        }
        if (scale != null && !(Double.isFinite(scale) && scale > 0)) {
            throw new ParameterException(spec.commandLine(), "--scale must be a finite number > 0, got " + scale);
        }
        checkPlanOptions();
        attention.check(spec.commandLine(), causal, decay, layout,
                spec.commandLine().getParseResult().hasMatchedOption("--ring-algo"));
        // real paths (symbolic links, "..", hard links), so that no spelling of the input can be overwritten
        if (OutputPaths.sameFile(output, input)) {
            throw new ParameterException(spec.commandLine(), "--output " + output + " is the same file as --input "
                    + input + ": the results would replace the input");
        }
        if (report != null && (OutputPaths.sameFile(report, input) || OutputPaths.sameFile(report, output))) {
            throw new ParameterException(spec.commandLine(), "--report " + report + " would overwrite "
                    + (OutputPaths.sameFile(report, output) ? "--output" : "--input"));
        }
    }
}
