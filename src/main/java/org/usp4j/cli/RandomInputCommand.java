package org.usp4j.cli;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.usp4j.io.SafetensorsWriter;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j random-input}: writes standard-normal q, k, v and do of the given shape to a safetensors
 * file, the input {@code usp4j attention} reads. The same seed gives the same file. With
 * {@code --lengths} the sequences of those lengths are packed into one (b = 1, s = their sum) and the
 * file also gets their {@code cu_seqlens} (I32).
 */
@Command(name = "random-input",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        description = "Write random q [b,s,h,d], k and v [b,s,h_kv,d] and do [b,s,h,d] (standard normal) "
                + "to a safetensors file, as input for 'usp4j attention'.")
final class RandomInputCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "1", description = "Batch size b (default: ${DEFAULT-VALUE}).")
    long batch;

    @Option(names = "--seq", paramLabel = "S", defaultValue = "1024", description = "Sequence length s (default: ${DEFAULT-VALUE}).")
    long seq;

    @Option(names = "--lengths", split = ",", paramLabel = "L1,L2,...",
            description = "Pack sequences of these lengths into one (b = 1, s = their sum) and write their "
                    + "cu_seqlens (I32 [n+1]) too; instead of --seq and --batch.")
    long[] lengths;

    @Option(names = "--heads", paramLabel = "H", defaultValue = "8", description = "Query heads h (default: ${DEFAULT-VALUE}).")
    long heads;

    @Option(names = "--kv-heads", paramLabel = "H_KV", description = "Key/value heads h_kv, dividing h (default: h).")
    Long kvHeads;

    @Option(names = "--head-dim", paramLabel = "D", defaultValue = "64", description = "Head dimension d (default: ${DEFAULT-VALUE}).")
    long headDim;

    @Option(names = "--dtype", paramLabel = "f32|bf16|f16", defaultValue = "f32", converter = DTypeConverter.class,
            description = "Element type (default: ${DEFAULT-VALUE}).")
    DType dtype;

    @Option(names = "--seed", defaultValue = "0", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--output", required = true, paramLabel = "FILE.safetensors", description = "Where to write.")
    Path output;

    @Override
    public Integer call() throws IOException {
        SequenceBoundaries packed = packedSequences();
        long hkv = kvHeads != null ? kvHeads : heads;
        requirePositive("--batch", batch);
        requirePositive("--seq", seq);
        requirePositive("--heads", heads);
        requirePositive("--kv-heads", hkv);
        requirePositive("--head-dim", headDim);
        if (heads % hkv != 0) {
            throw new ParameterException(spec.commandLine(), "--heads " + heads + " is not a multiple of --kv-heads " + hkv);
        }
        long elements;
        try {
            elements = Math.multiplyExact(Math.multiplyExact(Math.multiplyExact(batch, seq), heads), headDim);
        } catch (ArithmeticException e) {
            throw new ParameterException(spec.commandLine(), "shape [" + batch + ", " + seq + ", " + heads + ", "
                    + headDim + "] is too large");
        }
        if (elements > Integer.MAX_VALUE) {
            throw new ParameterException(spec.commandLine(), "q would have " + elements
                    + " elements; random-input writes at most " + Integer.MAX_VALUE + " per tensor");
        }
        OutputPaths.requireWritable(output, "--output");

        SplittableRandom seeds = new SplittableRandom(seed);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (Arena arena = Arena.ofConfined()) {
            for (String name : new String[] {"q", "k", "v", "do"}) {
                long h = name.equals("k") || name.equals("v") ? hkv : heads;
                Tensor t = Tensor.allocate(arena, dtype, batch, seq, h, headDim);
                HostTensors.fillNormal(t, seeds.nextLong());
                tensors.put(name, t);
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            metadata.put("generator", "usp4j random-input " + VersionProvider.version());
            metadata.put("seed", Long.toString(seed));
            SafetensorsWriter.write(output, tensors, packed == null ? Map.of()
                    : Map.of("cu_seqlens", packed.toIntArray()), metadata);
        }
        spec.commandLine().getOut().println("wrote " + output + ": q, do " + dtype + "[" + batch + ", " + seq + ", "
                + heads + ", " + headDim + "], k, v " + dtype + "[" + batch + ", " + seq + ", " + hkv + ", " + headDim
                + "] (seed " + seed + ")" + (packed == null ? "" : ", cu_seqlens I32[" + (packed.count() + 1) + "] ("
                + packed.count() + " packed sequences)"));
        return ExitCodes.OK;
    }

    /** The boundaries of --lengths (null without it), which also set --seq and --batch. */
    private SequenceBoundaries packedSequences() {
        if (lengths == null) {
            return null;
        }
        var parsed = spec.commandLine().getParseResult();
        for (String option : new String[] {"--seq", "--batch"}) {
            if (parsed.hasMatchedOption(option)) {
                throw new ParameterException(spec.commandLine(), "--lengths sets the sequence length and batch 1; "
                        + "leave out " + option);
            }
        }
        SequenceBoundaries packed;
        try {
            packed = SequenceBoundaries.ofLengths(lengths);
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new ParameterException(spec.commandLine(), "--lengths: " + e.getMessage());
        }
        if (packed.totalLength() > Integer.MAX_VALUE) {
            throw new ParameterException(spec.commandLine(), "--lengths add up to " + packed.totalLength()
                    + ", more than cu_seqlens (I32) can hold");
        }
        batch = 1;
        seq = packed.totalLength();
        return packed;
    }

    private void requirePositive(String option, long value) {
        if (value < 1) {
            throw new ParameterException(spec.commandLine(), option + " must be >= 1, got " + value);
        }
    }
}
