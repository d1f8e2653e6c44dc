package org.usp4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.dist.DistributedAttention;
import org.usp4j.dist.LaunchEnvironment;
import org.usp4j.dist.nccl.NcclProcessRank;
import org.usp4j.io.SafetensorsFile;
import org.usp4j.io.SafetensorsWriter;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.ForwardResult;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.InProcessAttention;
import org.usp4j.sp.Mesh;
import org.usp4j.sp.linear.Lasp2Attention;
import org.usp4j.sp.linear.LinearAttentionOptions;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j attention}: deals global q, k, v (and do) from a safetensors file to U x R in-process
 * ranks, runs the sequence-parallel forward (and backward), gathers the results back into global order
 * and writes them, with an optional per-rank traffic report. Every option, path and shape is checked
 * before any attention work starts.
 *
 * <p>Started by a launcher with U x R processes ({@code usp4j launch}, torchrun, srun, mpirun; see
 * {@link LaunchEnvironment}), each process is one rank on its own GPU over NCCL instead
 * ({@link DistributedAttention}); rank 0 writes the output and the report.
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
            description = "Softmax attention (USP with ring attention) or linear attention (USP with LASP-2) "
                    + "(default: ${DEFAULT-VALUE}).")
    AttentionKindOption attention;

    @Option(names = "--causal", description = "Causal mask (query i sees keys j <= i).")
    boolean causal;

    @Option(names = "--decay", paramLabel = "G",
            description = "Linear attention with --causal: weight G^(i-j) for key j of query i, 0 < G <= 1 (default: 1).")
    Double decay;

    @Option(names = "--layout", paramLabel = "contiguous|zigzag", defaultValue = "contiguous",
            converter = LayoutOption.Converter.class,
            description = "How the sequence is dealt to ranks; zigzag balances causal work (default: ${DEFAULT-VALUE}).")
    LayoutOption layout;

    @Option(names = "--backward", description = "Also compute dq, dk, dv from the input's do.")
    boolean backward;

    @Option(names = "--scale", paramLabel = "X",
            description = "Scale of q . k (default: 1/sqrt(d) for softmax, 1 for linear attention).")
    Double scale;

    @Option(names = "--backend", paramLabel = "cpu|cuda", defaultValue = "cpu", converter = BackendKind.Converter.class,
            description = "Where the ranks compute (default: ${DEFAULT-VALUE}).")
    BackendKind backend;

    @Option(names = "--report", paramLabel = "REPORT.json",
            description = "Write the bytes each rank sent, per kind (all_to_all, p2p, all_gather).")
    Path report;

    /** Where the launch environment is read from (a launcher's RANK, WORLD_SIZE, ...); tests put their own. */
    Map<String, String> environment = System.getenv();

    @Override
    public Integer call() throws IOException {
        checkOptions();
        boolean linear = attention == AttentionKindOption.LINEAR;
        LaunchEnvironment launch = LaunchEnvironment.detect(environment);
        if (linear && (backend == BackendKind.CUDA || launch.isDistributed())) {
            throw new CommandFailure("--attention linear runs on in-process cpu ranks only: the cuda backend has no "
                    + "linear attention kernel yet");
        }
        if (launch.isDistributed()) {
            return callDistributed(launch);
        }
        PrintWriter out = spec.commandLine().getOut();
        StatusLine status = StatusLine.forStderr(spec.commandLine().getErr());
        try (RankBackends backends = RankBackends.open(backend)) {
            OutputPaths.requireWritable(output, "--output");
            if (report != null) {
                OutputPaths.requireWritable(report, "--report");
            }
            if (Files.isDirectory(input)) {
                throw new CommandFailure("--input " + input + " is a directory");
            }
            try (SafetensorsFile in = SafetensorsFile.open(input); Arena arena = Arena.ofShared()) {
                AttentionInputs inputs = AttentionInputs.read(in, backward);
                inputs.checkMesh(ulysses, ring, layout);
                LinearAttentionOptions linearOptions = linear ? AttentionKindOption.linear(causal, decay, scale) : null;
                String what = inputs.describe() + ", mesh " + ulysses + "x" + ring
                        + (linear ? ", " + linearOptions + " (LASP-2)" : (causal ? ", causal" : "") + ", " + layout)
                        + ", backend " + backend;
                LOG.info("attention: {}", what);

                Mesh mesh = new Mesh(ulysses, ring);
                AttentionOptions options = new AttentionOptions(causal, layout.layout(), scale);
                Map<String, Tensor> results = new LinkedHashMap<>();
                double forwardSeconds;
                double backwardSeconds = 0;
                InProcessAttention attention = linear
                        ? Lasp2Attention.inProcess(mesh, linearOptions, backends::forRank, LocalWorld.DEFAULT_TIMEOUT)
                        : new InProcessAttention(mesh, options, backends::forRank);
                try {
                    status.show("attention forward on " + mesh.size() + " ranks ...");
                    long t0 = System.nanoTime();
                    ForwardResult fwd = attention.forward(inputs.q(), inputs.k(), inputs.v(), arena);
                    forwardSeconds = (System.nanoTime() - t0) / 1e9;
                    results.put("out", as(fwd.out(), inputs.dtype(), arena));
                    if (fwd.lse() != null) {
                        results.put("lse", as(fwd.lse(), DType.F32, arena));
                    }
                    if (backward) {
                        status.show("attention backward on " + mesh.size() + " ranks ...");
                        long t1 = System.nanoTime();
                        Gradients grads = attention.backward(inputs.dout(), arena);
                        backwardSeconds = (System.nanoTime() - t1) / 1e9;
                        results.put("dq", as(grads.dq(), inputs.dtype(), arena));
                        results.put("dk", as(grads.dk(), inputs.dtype(), arena));
                        results.put("dv", as(grads.dv(), inputs.dtype(), arena));
                    }
                    status.show("writing " + output + " ...");
                    Map<String, String> metadata = new LinkedHashMap<>();
                    metadata.put("generator", "usp4j attention " + VersionProvider.version());
                    metadata.put("run", what);
                    SafetensorsWriter.write(output, results, metadata);
                    if (report != null) {
                        TrafficReport.of(attention.traffic()).write(report);
                    }
                } finally {
                    status.clear();
                    attention.close();
                }
                out.println("attention: " + what);
                out.println(String.format(Locale.ROOT, "forward %.3f s%s; wrote %s (%s)", forwardSeconds,
                        backward ? String.format(Locale.ROOT, ", backward %.3f s", backwardSeconds) : "",
                        output, String.join(", ", results.keySet()))
                        + (report != null ? "; report " + report : ""));
                out.flush();
            }
        }
        return ExitCodes.OK;
    }

    /**
     * One rank of a multi-process run (see {@link DistributedAttention}): every check that needs no peer
     * comes first, so that without a GPU (or with a mesh that does not match the world) each rank fails with
     * one line before any work. Rank 0 alone writes the output and the report.
     */
    private int callDistributed(LaunchEnvironment env) throws IOException {
        String who = "rank " + env.rank() + " of " + env.worldSize() + " (" + env.source().description() + ")";
        Mesh mesh = new Mesh(ulysses, ring);
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
        boolean root = env.rank() == 0;
        if (root) {
            OutputPaths.requireWritable(output, "--output");
            if (report != null) {
                OutputPaths.requireWritable(report, "--report");
            }
        }
        if (Files.isDirectory(input)) {
            throw new CommandFailure("--input " + input + " is a directory");
        }
        PrintWriter out = spec.commandLine().getOut();
        try (SafetensorsFile in = SafetensorsFile.open(input); Arena arena = Arena.ofShared()) {
            AttentionInputs inputs = AttentionInputs.read(in, backward);
            inputs.checkMesh(ulysses, ring, layout);
            String what = inputs.describe() + ", mesh " + ulysses + "x" + ring + (causal ? ", causal" : "")
                    + ", " + layout + ", " + env.worldSize() + " processes on NCCL";
            LOG.info("attention, {}: {}", who, what);
            AttentionOptions options = new AttentionOptions(causal, layout.layout(), scale);
            DistributedAttention.Result result;
            NcclProcessRank rank;
            try {
                rank = NcclProcessRank.open(env, NcclProcessRank.exitWhenStuck(System.err, STUCK_GRACE));
            } catch (RuntimeException e) {
                throw rankFailure(who, e);
            }
            try {
                result = DistributedAttention.run(rank, mesh, options, new DistributedAttention.Inputs(inputs.q(),
                        inputs.k(), inputs.v(), inputs.dout()), arena);
            } catch (RuntimeException e) {
                rank.closeAfterFailure();
                throw rankFailure(who, e);
            } catch (Error e) {
                rank.closeAfterFailure();
                throw e;
            }
            rank.close();
            if (!root) {
                return ExitCodes.OK;
            }
            Map<String, Tensor> results = new LinkedHashMap<>();
            results.put("out", result.forward().out());
            results.put("lse", result.forward().lse());
            if (result.gradients() != null) {
                results.put("dq", result.gradients().dq());
                results.put("dk", result.gradients().dk());
                results.put("dv", result.gradients().dv());
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            metadata.put("generator", "usp4j attention " + VersionProvider.version());
            metadata.put("run", what);
            SafetensorsWriter.write(output, results, metadata);
            List<TrafficCounter> perRank = new ArrayList<>();
            for (DistributedAttention.RankFigures f : result.ranks()) {
                TrafficCounter c = new TrafficCounter();
                f.bytesSent().forEach(c::add);
                perRank.add(c);
            }
            if (report != null) {
                TrafficReport.of(perRank).write(report);
            }
            out.println("attention: " + what);
            for (DistributedAttention.RankFigures f : result.ranks()) {
                out.println(String.format(Locale.ROOT, "rank %d (device %d): forward %.3f s%s, sent %s", f.rank(),
                        f.device(), f.forwardSeconds(), backward ? String.format(Locale.ROOT, ", backward %.3f s",
                                f.backwardSeconds()) : "", Units.bytes(f.totalBytes())));
            }
            out.println("wrote " + output + " (" + String.join(", ", results.keySet()) + ")"
                    + (report != null ? "; report " + report : ""));
            out.flush();
        }
        return ExitCodes.OK;
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
        attention.check(spec.commandLine(), causal, decay, layout);
        Path in = input.toAbsolutePath().normalize();
        Path outPath = output.toAbsolutePath().normalize();
        if (report != null) {
            Path rep = report.toAbsolutePath().normalize();
            if (rep.equals(outPath) || rep.equals(in)) {
                throw new ParameterException(spec.commandLine(), "--report " + report + " would overwrite "
                        + (rep.equals(outPath) ? "--output" : "--input"));
            }
        }
    }

    /** {@code t} in host memory with {@code dtype}, converted only if the facade returned something else. */
    private static Tensor as(Tensor t, DType dtype, Arena arena) {
        if (t.isHost() && t.dtype() == dtype) {
            return t;
        }
        if (!t.isHost()) {
            throw new IllegalStateException("result " + t.describe() + " is not in host memory");
        }
        Tensor converted = Tensor.allocate(arena, dtype, t.shape());
        HostTensors.copy(t, converted);
        return converted;
    }
}
