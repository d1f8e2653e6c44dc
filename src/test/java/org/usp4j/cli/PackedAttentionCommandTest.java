package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.io.SafetensorsFile;
import org.usp4j.io.SafetensorsWriter;
import org.usp4j.kernel.PackedReference;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * {@code random-input --lengths} then {@code attention} on the packed file: results against each
 * sequence attended alone in float64 (relative Frobenius error: F32 1e-4, BF16 2e-2, as in
 * {@code AttentionCommandTest}), and every malformed {@code cu_seqlens} refused with one error line.
 */
class PackedAttentionCommandTest {

    @TempDir
    Path dir;

    static Stream<Arguments> runs() {
        return Stream.of(
                Arguments.of("f32", "5,1,40,18", "--ulysses 2 --ring 2 --causal --layout contiguous --backward"),
                Arguments.of("bf16", "16,8,40", "--ring 4 --causal --layout zigzag --backward --ring-algo allgather"),
                Arguments.of("f32", "1,1,29,1", "--ulysses 2 --ring 2 --layout striped --causal"),
                Arguments.of("f32", "3,60,1", "--ulysses 4 --backward"),
                Arguments.of("f32", "9,2,17,4", "--ring 4 --causal --layout contiguous --backward --ring-algo tokenring"));
    }

    @ParameterizedTest(name = "{0} lengths {1} {2}")
    @MethodSource("runs")
    void packedRunsMatchEachSequenceAttendedAlone(String dtype, String lengths, String options) throws IOException {
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        Cli.Result made = Cli.run("random-input", "--lengths", lengths, "--heads", "4", "--kv-heads", "2",
                "--head-dim", "8", "--dtype", dtype, "--seed", "3", "--output", in.toString());
        made.assertOk();
        assertTrue(made.out().contains("cu_seqlens I32["), made.out());
        List<String> args = new ArrayList<>(List.of("attention", "--input", in.toString(), "--output", out.toString()));
        args.addAll(List.of(options.split(" ")));
        Cli.Result r = Cli.run(args.toArray(String[]::new));
        r.assertOk();
        assertTrue(r.out().contains("packed sequences"), r.out());

        boolean backward = options.contains("--backward");
        try (SafetensorsFile input = SafetensorsFile.open(in); SafetensorsFile result = SafetensorsFile.open(out);
             Arena arena = Arena.ofConfined()) {
            SequenceBoundaries seqs = SequenceBoundaries.of(input.int32s("cu_seqlens"));
            assertEquals(lengths.split(",").length, seqs.count());
            assertArrayEquals(seqs.toIntArray(), result.int32s("cu_seqlens"), "the output keeps cu_seqlens");
            PackedReference ref = PackedReference.of(arena, input.tensor("q"), input.tensor("k"), input.tensor("v"),
                    backward ? input.tensor("do") : null, seqs, options.contains("--causal"),
                    (float) (1 / Math.sqrt(8)));
            double tolerance = dtype.equals("f32") ? 1e-4 : 2e-2;
            check(result.tensor("out"), ref.out(), tolerance);
            check(result.tensor("lse"), ref.lse(), 1e-5);
            if (backward) {
                check(result.tensor("dq"), ref.dq(), tolerance);
                check(result.tensor("dk"), ref.dk(), tolerance);
                check(result.tensor("dv"), ref.dv(), tolerance);
            }
        }
    }

    @Test
    void aPlannedRunMatchesEachSequenceAttendedAloneAndReportsEachRanksGroup() throws IOException {
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        Path report = dir.resolve("report.json");
        Cli.run("random-input", "--lengths", "24,8,40,16", "--heads", "4", "--kv-heads", "2", "--head-dim", "8",
                "--dtype", "f32", "--seed", "5", "--output", in.toString()).assertOk();
        Cli.Result r = Cli.run("attention", "--plan", "auto", "--ranks", "4", "--input", in.toString(), "--output",
                out.toString(), "--causal", "--backward", "--report", report.toString());
        r.assertOk();
        assertTrue(r.out().contains("group 0: ranks ["), r.out());
        try (SafetensorsFile input = SafetensorsFile.open(in); SafetensorsFile result = SafetensorsFile.open(out);
             Arena arena = Arena.ofConfined()) {
            SequenceBoundaries seqs = SequenceBoundaries.of(input.int32s("cu_seqlens"));
            assertArrayEquals(seqs.toIntArray(), result.int32s("cu_seqlens"), "the output keeps cu_seqlens");
            PackedReference ref = PackedReference.of(arena, input.tensor("q"), input.tensor("k"), input.tensor("v"),
                    input.tensor("do"), seqs, true, (float) (1 / Math.sqrt(8)));
            check(result.tensor("out"), ref.out(), 1e-4);
            check(result.tensor("lse"), ref.lse(), 1e-5);
            check(result.tensor("dq"), ref.dq(), 1e-4);
            check(result.tensor("dk"), ref.dk(), 1e-4);
            check(result.tensor("dv"), ref.dv(), 1e-4);
        }
        String json = Files.readString(report);
        assertTrue(json.contains("\"group\" : 0") && json.contains("\"mesh\" : \"")
                && json.contains("\"attention_pairs\""), json);
    }

    @Test
    void planCombinationsThatCannotRunAreOneErrorLine() throws IOException {
        Path packed = dir.resolve("packed.safetensors");
        Path plain = dir.resolve("plain.safetensors");
        Path out = dir.resolve("out.safetensors");
        Cli.run("random-input", "--lengths", "8,8", "--heads", "2", "--head-dim", "8", "--output", packed.toString())
                .assertOk();
        Cli.run("random-input", "--seq", "16", "--heads", "2", "--head-dim", "8", "--output", plain.toString())
                .assertOk();
        String[][] usage = {
            {"--plan", "auto", "--ulysses", "2"}, {"--plan", "auto", "--ring", "2"},
            {"--plan", "auto", "--ring-algo", "allgather"}, {"--plan", "static"}, {"--ranks", "2"},
            {"--plan", "auto", "--ranks", "0"}};
        String[] messages = {"leave out --ulysses", "leave out --ring", "leave out --ring-algo", "--plan must be auto",
            "--ranks goes with --plan auto", "--ranks must be >= 1"};
        for (int i = 0; i < usage.length; i++) {
            List<String> args = new ArrayList<>(List.of("attention", "--input", packed.toString(), "--output",
                    out.toString()));
            args.addAll(List.of(usage[i]));
            String line = Cli.run(args.toArray(String[]::new)).assertOneErrorLine(ExitCodes.USAGE);
            assertTrue(line.contains(messages[i]), line);
        }
        String line = Cli.run("attention", "--plan", "auto", "--input", plain.toString(), "--output", out.toString())
                .assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains("--plan needs packed sequences"), line);
        assertTrue(!Files.exists(out), "nothing written");
    }

    @Test
    void malformedCuSeqlensAreOneErrorLineAndWriteNothing() throws IOException {
        assertRefused(new int[] {0, 8, 16}, null, 1, "", "cu_seqlens ends at 16 but the sequence length s is 32");
        assertRefused(new int[] {1, 8, 32}, null, 1, "", "cu_seqlens must start at 0, got 1");
        assertRefused(new int[] {0, 8, 8, 32}, null, 1, "", "sequence 1 would be empty");
        assertRefused(new int[] {0, 20, 8, 32}, null, 1, "", "strictly increasing");
        assertRefused(new int[] {0, 32}, DType.F32, 1, "", "cu_seqlens must be I32, got F32");
        assertRefused(new int[] {0, 16, 32}, null, 2, "", "need batch b = 1, got b = 2");
        assertRefused(new int[] {0, 12, 32}, null, 1, "--ring 2 --ulysses 2 --layout zigzag --causal",
                "sequence 0 has length 12");
        assertRefused(new int[] {0, 8, 32}, null, 1, "--attention linear --ring 2",
                "ring algorithm lasp2 does not support packed variable-length sequences (cu_seqlens); ring, allgather, tokenring do");
        String bad = Cli.run("random-input", "--lengths", "4,0,4", "--output", dir.resolve("x.safetensors").toString())
                .assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(bad.contains("sequence 1 has length 0"), bad);
        bad = Cli.run("random-input", "--lengths", "4,4", "--seq", "8", "--output", dir.resolve("x.safetensors").toString())
                .assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(bad.contains("leave out --seq"), bad);
    }

    /** A file with s = 32 and this cu_seqlens (as I32, or as {@code asFloat} to get the wrong dtype). */
    private void assertRefused(int[] cu, DType asFloat, int batch, String options, String message) throws IOException {
        Path in = dir.resolve("bad.safetensors");
        Path out = dir.resolve("bad-out.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : new String[] {"q", "k", "v"}) {
                Tensor t = Tensor.allocate(arena, DType.F32, batch, 32, 2, 8);
                HostTensors.fillNormal(t, name.hashCode());
                tensors.put(name, t);
            }
            Map<String, int[]> ints = Map.of();
            if (asFloat != null) {
                Tensor t = Tensor.allocate(arena, asFloat, cu.length);
                tensors.put("cu_seqlens", t);
            } else {
                ints = Map.of("cu_seqlens", cu);
            }
            SafetensorsWriter.write(in, tensors, ints, Map.of());
        }
        List<String> args = new ArrayList<>(List.of("attention", "--input", in.toString(), "--output", out.toString()));
        if (!options.isEmpty()) {
            args.addAll(List.of(options.split(" ")));
        }
        String line = Cli.run(args.toArray(String[]::new)).assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains(message), line);
        assertTrue(!Files.exists(out), "nothing written");
    }

    private static void check(Tensor actual, Tensor expected, double tolerance) {
        assertArrayEquals(expected.shape(), actual.shape());
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, "relative error " + error + " above " + tolerance);
    }
}
