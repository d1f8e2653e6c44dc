package org.usp4j.cli;

import org.usp4j.api.Mesh;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.RingAlgorithm;
import org.usp4j.sp.RingAlgorithms;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine;

/**
 * The attention problem options that {@code demo} and {@code bench} share (picocli mixin): shape, dtype,
 * mask, layout and seed. Defaults are the long-context training case: causal, zigzag, bf16.
 */
final class ProblemOptions {

    @Option(names = "--batch", paramLabel = "B", defaultValue = "1", description = "Batch size b (default: ${DEFAULT-VALUE}).")
    long batch;

    @Option(names = "--heads", paramLabel = "H", defaultValue = "16", description = "Query heads h (default: ${DEFAULT-VALUE}).")
    long heads;

    @Option(names = "--kv-heads", paramLabel = "H_KV", description = "Key/value heads h_kv, dividing h (default: h).")
    Long kvHeads;

    @Option(names = "--head-dim", paramLabel = "D", defaultValue = "64", description = "Head dimension d (default: ${DEFAULT-VALUE}).")
    long headDim;

    @Option(names = "--dtype", paramLabel = "f32|bf16|f16", defaultValue = "bf16", converter = DTypeConverter.class,
            description = "Element type (default: ${DEFAULT-VALUE}).")
    DType dtype;

    @Option(names = "--causal", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Causal mask, query i sees keys j <= i (default: causal; --no-causal for full attention).")
    boolean causal;

    @Option(names = "--layout", paramLabel = "contiguous|zigzag|striped", defaultValue = "zigzag",
            converter = LayoutOption.Converter.class,
            description = "How the sequence is dealt to ranks; zigzag and striped balance causal work "
                    + "(default: ${DEFAULT-VALUE}).")
    LayoutOption layout;

    @Option(names = "--ring-algo", paramLabel = RingAlgoOption.LABEL, defaultValue = "ring",
            converter = RingAlgoOption.class,
            description = "How the R ranks of a ring group attend: ring passes K/V blocks around, allgather "
                    + "all-gathers them once (default: ${DEFAULT-VALUE}).")
    RingAlgorithm ringAlgorithm;

    @Option(names = "--seed", defaultValue = "0", description = "Random seed of the inputs (default: ${DEFAULT-VALUE}).")
    long seed;

    long kvHeads() {
        return kvHeads != null ? kvHeads : heads;
    }

    AttentionOptions attentionOptions() {
        return new AttentionOptions(causal, layout.layout(), null);
    }

    /** USP on {@code mesh} with the chosen ring algorithm and options. */
    UspPlan plan(Mesh mesh) {
        return new UspPlan(mesh, attentionOptions(), ringAlgorithm);
    }

    /** The problem at sequence length {@code seq}; bad values are usage errors (exit 2) naming the option. */
    AttentionProblem problem(CommandLine cmd, long seq) {
        requirePositive(cmd, "--batch", batch);
        requirePositive(cmd, "--seq", seq);
        requirePositive(cmd, "--heads", heads);
        requirePositive(cmd, "--kv-heads", kvHeads());
        requirePositive(cmd, "--head-dim", headDim);
        if (heads % kvHeads() != 0) {
            throw new ParameterException(cmd, "--heads " + heads + " is not a multiple of --kv-heads " + kvHeads());
        }
        try {
            Math.multiplyExact(Math.multiplyExact(Math.multiplyExact(batch, seq), heads), headDim);
        } catch (ArithmeticException e) {
            throw new ParameterException(cmd, "shape [" + batch + ", " + seq + ", " + heads + ", " + headDim
                    + "] is too large");
        }
        return new AttentionProblem(batch, seq, heads, kvHeads(), headDim, dtype);
    }

    /** Usage error (exit 2) unless {@code problem} can be dealt over {@code mesh} in the chosen layout. */
    void requireFits(CommandLine cmd, AttentionProblem problem, Mesh mesh) {
        try {
            plan(mesh).validate(problem.shapes());
        } catch (IllegalArgumentException e) {
            throw new ParameterException(cmd, "mesh " + mesh.ulysses() + "x" + mesh.ring() + " does not fit "
                    + problem + ": " + e.getMessage());
        }
    }

    String describe() {
        return (causal ? "causal" : "non-causal") + ", " + layout + " layout"
                + (ringAlgorithm == RingAlgorithms.defaultAlgorithm() ? "" : ", " + ringAlgorithm.name());
    }

    static void requirePositive(CommandLine cmd, String option, long value) {
        if (value < 1) {
            throw new ParameterException(cmd, option + " must be >= 1, got " + value);
        }
    }
}
