package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
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
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * {@code usp4j attention} end to end in this JVM: results against the float64 reference on the same
 * inputs, the report against DESIGN's cost model, and every bad input refused with one error line before
 * anything is written.
 */
class AttentionCommandTest {

    /**
     * Relative Frobenius error allowed per dtype: f32 arithmetic differs from float64 in about the 6th
     * digit; bf16 (8-bit mantissa) and f16 (11-bit) outputs carry their own rounding, about 2^-9 and 2^-11.
     */
    private static double tolerance(DType dtype) {
        return switch (dtype) {
            case F32 -> 1e-4;
            case BF16 -> 2e-2;
            case F16 -> 5e-3;
        };
    }

    @TempDir
    Path dir;

    static Stream<Arguments> roundTrips() {
        // dtype, b, s, h, h_kv, d, extra options
        return Stream.of(
                Arguments.of(DType.F32, 2, 32, 4, 2, 8, "--ulysses 2 --ring 2 --causal --layout zigzag --backward"),
                Arguments.of(DType.F32, 1, 24, 6, 6, 12, "--ulysses 3 --ring 2 --backward --scale 0.2"),
                Arguments.of(DType.BF16, 1, 32, 2, 2, 16, "--ring 4 --causal --backward"),
                Arguments.of(DType.F16, 1, 16, 4, 1, 5, "--ulysses 4 --causal --scale 0.3"),
                Arguments.of(DType.F32, 1, 16, 2, 1, 8, ""),
                Arguments.of(DType.F32, 2, 32, 4, 2, 8,
                        "--ring-algo allgather --layout zigzag --causal --backward --ulysses 2 --ring 2"),
                Arguments.of(DType.BF16, 1, 32, 4, 1, 8, "--layout striped --causal --backward --ulysses 2 --ring 2"),
                Arguments.of(DType.F32, 1, 24, 2, 2, 8, "--ring-algo allgather --layout striped --causal --backward "
                        + "--ring 3"),
                // the issue's two commands, on the CPU kernel: TokenRing over USP 2x2, LightSeq over a ring of 4
                Arguments.of(DType.BF16, 1, 32, 4, 2, 8, "--ring-algo tokenring --ulysses 2 --ring 2 --causal --layout zigzag "
                        + "--backward"),
                Arguments.of(DType.F32, 2, 32, 4, 1, 8, "--ring-algo lightseq --ring 4 --causal --layout contiguous --backward"),
                Arguments.of(DType.F32, 1, 24, 2, 2, 8, "--ring-algo tokenring --ring 3 --layout striped --causal --backward"),
                Arguments.of(DType.BF16, 1, 24, 2, 2, 8, "--ring-algo lightseq --ring 3 --causal --backward"));
    }

    @ParameterizedTest(name = "{0} b={1} s={2} h={3} h_kv={4} d={5} {6}")
    @MethodSource("roundTrips")
    void matchesTheReferenceOnTheSameInputs(DType dtype, int b, int s, int h, int hkv, int d, String options)
            throws IOException {
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        boolean backward = options.contains("--backward");
        Cli.writeAttentionInput(in, dtype, 11, b, s, h, hkv, d, backward);
        List<String> args = new ArrayList<>(List.of("attention", "--input", in.toString(), "--output", out.toString()));
        if (!options.isBlank()) {
            args.addAll(List.of(options.trim().split("\\s+")));
        }
        Cli.Result r = Cli.run(args.toArray(String[]::new));
        r.assertOk();
        assertTrue(r.out().contains("wrote " + out), r.out());

        boolean causal = options.contains("--causal");
        float scale = options.contains("--scale")
                ? Float.parseFloat(options.replaceAll(".*--scale (\\S+).*", "$1"))
                : (float) (1 / Math.sqrt(d));
        ReferenceAttention reference = new ReferenceAttention();
        Mask mask = causal ? Mask.CAUSAL : Mask.NONE;
        try (SafetensorsFile input = SafetensorsFile.open(in); SafetensorsFile result = SafetensorsFile.open(out);
             Arena arena = Arena.ofConfined()) {
            Tensor q = input.tensor("q");
            Tensor k = input.tensor("k");
            Tensor v = input.tensor("v");
            Tensor expectedOut = Tensor.allocate(arena, DType.F32, b, s, h, d);
            Tensor expectedLse = Tensor.allocate(arena, DType.F32, b, h, s);
            reference.forward(q, k, v, mask, scale, expectedOut, expectedLse);

            assertEquals(backward ? List.of("out", "lse", "dq", "dk", "dv") : List.of("out", "lse"), result.names());
            check(result.tensor("out"), expectedOut, dtype);
            check(result.tensor("lse"), expectedLse, DType.F32);
            if (backward) {
                Tensor dq = Tensor.allocate(arena, DType.F32, b, s, h, d);
                Tensor dk = Tensor.allocate(arena, DType.F32, b, s, hkv, d);
                Tensor dv = Tensor.allocate(arena, DType.F32, b, s, hkv, d);
                reference.backward(q, k, v, expectedOut, input.tensor("do"), expectedLse, mask, scale, dq, dk, dv, false);
                check(result.tensor("dq"), dq, dtype);
                check(result.tensor("dk"), dk, dtype);
                check(result.tensor("dv"), dv, dtype);
            }
        }
    }

    private static void check(Tensor actual, Tensor expected, DType dtype) {
        assertEquals(dtype, actual.dtype());
        assertArrayEquals(expected.shape(), actual.shape());
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance(dtype),
                "relative error " + error + " above " + tolerance(dtype));
    }

    static Stream<Arguments> meshes() {
        // U, R, layout, causal, h, h_kv
        return Stream.of(
                Arguments.of(1, 1, "contiguous", false, 4, 4),
                Arguments.of(2, 1, "contiguous", false, 4, 4),
                Arguments.of(1, 4, "contiguous", true, 4, 2),
                Arguments.of(2, 2, "zigzag", true, 4, 2),
                Arguments.of(4, 2, "zigzag", false, 8, 4),
                Arguments.of(2, 2, "striped", true, 4, 2));
    }

    @ParameterizedTest(name = "U={0} R={1} {2} causal={3} h={4} h_kv={5}")
    @MethodSource("meshes")
    void reportHasOneEntryPerRankWithTheForwardCostModelBytes(int u, int ring, String layout, boolean causal,
                                                              int h, int hkv) throws IOException {
        int b = 1;
        int s = 32;
        int d = 8;
        Path in = dir.resolve("in.safetensors");
        Path report = dir.resolve("report.json");
        Cli.writeAttentionInput(in, DType.F32, 3, b, s, h, hkv, d, false);
        List<String> args = new ArrayList<>(List.of("attention", "--input", in.toString(), "--output",
                dir.resolve("out.safetensors").toString(), "--ulysses", "" + u, "--ring", "" + ring,
                "--layout", layout, "--report", report.toString()));
        if (causal) {
            args.add("--causal");
        }
        Cli.run(args.toArray(String[]::new)).assertOk();

        JsonNode root = new ObjectMapper().readTree(report.toFile());
        assertEquals(List.of("ranks"), names(root));
        JsonNode ranks = root.get("ranks");
        int p = u * ring;
        assertEquals(p, ranks.size());
        long e = DType.F32.byteSize();
        long sLoc = s / p;
        // Per rank (docs/ARCHITECTURE.md): all-to-all (U-1)/U * b s_loc d e (2h + 2h_kv); ring 2 (R-1) b s_loc h_kv d e
        long allToAll = (u - 1) * b * sLoc * d * e * (2L * h + 2L * hkv) / u;
        long p2p = 2L * (ring - 1) * b * sLoc * hkv * d * e;
        long pairs = 0;
        for (int r = 0; r < p; r++) {
            JsonNode rank = ranks.get(r);
            assertEquals(List.of("rank", "bytes_sent", "attention_pairs"), names(rank));
            assertEquals(r, rank.get("rank").asInt());
            JsonNode bytes = rank.get("bytes_sent");
            assertEquals(List.of("all_to_all", "p2p", "all_gather"), names(bytes));
            assertTrue(bytes.get("all_to_all").isIntegralNumber());
            assertEquals(allToAll, bytes.get("all_to_all").asLong(), "rank " + r + " all_to_all");
            assertEquals(p2p, bytes.get("p2p").asLong(), "rank " + r + " p2p");
            assertEquals(0, bytes.get("all_gather").asLong(), "rank " + r + " all_gather");
            assertEquals(List.of("forward", "backward"), names(rank.get("attention_pairs")));
            assertEquals(0, rank.get("attention_pairs").get("backward").asLong(), "no backward ran");
            pairs += rank.get("attention_pairs").get("forward").asLong();
        }
        // The ranks' kernels together compute every unmasked pair of the sequence once, per batch and head.
        assertEquals((long) b * h * (causal ? (long) s * (s + 1) / 2 : (long) s * s), pairs);
    }

    private static List<String> names(JsonNode node) {
        List<String> names = new ArrayList<>();
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            names.add(it.next());
        }
        return names;
    }

    @Test
    void backwardReportCountsAtLeastTheForward() throws IOException {
        Path in = dir.resolve("in.safetensors");
        Cli.writeAttentionInput(in, DType.F32, 5, 1, 16, 2, 2, 4, true);
        Path fwd = dir.resolve("fwd.json");
        Path both = dir.resolve("both.json");
        String out = dir.resolve("out.safetensors").toString();
        Cli.run("attention", "--input", in.toString(), "--output", out, "--ulysses", "2", "--ring", "2",
                "--report", fwd.toString()).assertOk();
        Cli.run("attention", "--input", in.toString(), "--output", out, "--ulysses", "2", "--ring", "2",
                "--report", both.toString(), "--backward").assertOk();
        ObjectMapper json = new ObjectMapper();
        JsonNode f = json.readTree(fwd.toFile()).get("ranks");
        JsonNode fb = json.readTree(both.toFile()).get("ranks");
        for (int r = 0; r < 4; r++) {
            for (String kind : List.of("all_to_all", "p2p", "all_gather")) {
                assertTrue(fb.get(r).get("bytes_sent").get(kind).asLong() >= f.get(r).get("bytes_sent").get(kind).asLong());
            }
        }
    }

    @Test
    void allGatherReportsListTheKindsItUsesWithItsCostModelBytes() throws IOException {
        int b = 1, s = 32, h = 4, hkv = 2, d = 8, u = 2, ring = 2;
        Path in = dir.resolve("in.safetensors");
        Path report = dir.resolve("report.json");
        Cli.writeAttentionInput(in, DType.F32, 5, b, s, h, hkv, d, true);
        Cli.run("attention", "--input", in.toString(), "--output", dir.resolve("out.safetensors").toString(),
                "--ulysses", "" + u, "--ring", "" + ring, "--ring-algo", "allgather", "--layout", "zigzag", "--causal",
                "--backward", "--report", report.toString()).assertOk();
        JsonNode ranks = new ObjectMapper().readTree(report.toFile()).get("ranks");
        long sLoc = s / (u * ring);
        long allToAll = (u - 1) * b * sLoc * d * 4L * (2L * h + 2L * hkv) / u;
        for (int r = 0; r < u * ring; r++) {
            JsonNode bytes = ranks.get(r).get("bytes_sent");
            assertEquals(List.of("all_to_all", "p2p", "all_gather", "reduce_scatter"), names(bytes));
            assertEquals(2 * allToAll, bytes.get("all_to_all").asLong(), "forward and backward exchanges");
            assertEquals(0, bytes.get("p2p").asLong());
            // forward 2 (R-1) b (S/P) h_kv d e; backward the float32 dK, dV reduce-scattered
            assertEquals(2L * (ring - 1) * b * sLoc * hkv * d * 4, bytes.get("all_gather").asLong());
            assertEquals(2L * (ring - 1) * b * sLoc * hkv * d * 4, bytes.get("reduce_scatter").asLong());
        }
    }

    // ---- bad input: one error line, the right exit status, nothing written ----

    /** How to spoil the input file, the extra options, the exit status and a piece of the message. */
    record Bad(String name, InputWriter input, String options, int exitCode, String message) {
        @Override
        public String toString() {
            return name;
        }
    }

    @FunctionalInterface
    interface InputWriter {
        void write(Path file) throws IOException;
    }

    private static InputWriter good(DType dtype, long s, long h, long hkv, long d, boolean withDo) {
        return file -> Cli.writeAttentionInput(file, dtype, 1, 1, s, h, hkv, d, withDo);
    }

    private static InputWriter tensors(DType dtype, Object... nameAndShape) {
        return file -> {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            for (int i = 0; i < nameAndShape.length; i += 2) {
                shapes.put((String) nameAndShape[i], (long[]) nameAndShape[i + 1]);
            }
            Cli.writeNormal(file, dtype, 1, shapes);
        };
    }

    private static InputWriter bytes(byte[] content) {
        return file -> Files.write(file, content);
    }

    private static byte[] header(long length, String json, int dataBytes) {
        byte[] j = json.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return java.nio.ByteBuffer.allocate(8 + j.length + dataBytes).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putLong(length).put(j).array();
    }

    private static byte[] header(String json, int dataBytes) {
        return header(json.getBytes(java.nio.charset.StandardCharsets.UTF_8).length, json, dataBytes);
    }

    static Stream<Bad> badInputs() {
        InputWriter ok = good(DType.F32, 16, 4, 2, 8, true);
        long[] q = {1, 16, 4, 8};
        long[] kv = {1, 16, 2, 8};
        return Stream.of(
                new Bad("missing file", file -> { }, "", 1, "no such file or directory"),
                new Bad("input is a directory", Files::createDirectory, "", 1, "is a directory"),
                new Bad("empty file", bytes(new byte[0]), "", 1, "0 bytes long, too short"),
                new Bad("five bytes", bytes(new byte[5]), "", 1, "5 bytes long, too short"),
                new Bad("absurd header length", bytes(header(Long.MAX_VALUE, "{}", 0)), "", 1,
                        "header length 9223372036854775807 is absurd"),
                new Bad("header past the end", bytes(header(4096, "{}", 0)), "", 1, "runs past the end of the file"),
                new Bad("malformed JSON", bytes(header("{\"q\":", 0)), "", 1, "malformed header JSON"),
                new Bad("offsets past the end", bytes(header(
                        "{\"q\":{\"dtype\":\"F32\",\"shape\":[1,1,1,4],\"data_offsets\":[0,16]}}", 8)), "", 1,
                        "data_offsets end 16 is past the end of the 8-byte data buffer"),
                new Bad("truncated data", file -> {
                    ok.write(file);
                    byte[] all = Files.readAllBytes(file);
                    Files.write(file, java.util.Arrays.copyOf(all, all.length - 100));
                }, "", 1, "is past the end of the"),
                new Bad("unknown dtype", bytes(header(
                        "{\"q\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1)), "", 1, "unknown dtype 'Q4'"),
                new Bad("no tensors", bytes(header("{}", 0)), "", 1, "has no tensors 'q', 'k', 'v'; it has none"),
                new Bad("missing k", tensors(DType.F32, "q", q, "v", kv), "", 1, "has no tensor 'k'; it has q, v"),
                new Bad("missing do for backward", good(DType.F32, 16, 4, 2, 8, false), "--backward", 1,
                        "has no tensor 'do' (--backward needs do)"),
                new Bad("integer q", file -> {
                    ok.write(file);
                    // same bytes, but the header calls q I32: a dtype usp4j does not compute with
                    byte[] all = Files.readAllBytes(file);
                    String s = new String(all, java.nio.charset.StandardCharsets.ISO_8859_1)
                            .replaceFirst("\"q\":\\{\"dtype\":\"F32\"", "\"q\":{\"dtype\":\"I32\"");
                    Files.write(file, s.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
                }, "", 1, "tensor 'q' is I32; usp4j reads F32, BF16 and F16"),
                new Bad("q of rank 3", tensors(DType.F32, "q", new long[] {1, 16, 32}, "k", kv, "v", kv), "", 1,
                        "q must have rank 4 [b, s, h, d], got shape [1, 16, 32]"),
                new Bad("empty dimension", tensors(DType.F32, "q", new long[] {1, 0, 4, 8}, "k", kv, "v", kv), "", 1,
                        "q has an empty dimension: shape [1, 0, 4, 8]"),
                new Bad("mixed dtypes", file -> {
                    Path other = file.resolveSibling("other.safetensors");
                    Cli.writeNormal(other, DType.BF16, 1, Map.of("k", kv));
                    try (SafetensorsFile f = SafetensorsFile.open(other); Arena arena = Arena.ofConfined()) {
                        Tensor qq = Tensor.allocate(arena, DType.F32, q);
                        Tensor vv = Tensor.allocate(arena, DType.F32, kv);
                        Map<String, Tensor> m = new LinkedHashMap<>();
                        m.put("q", qq);
                        m.put("k", f.tensor("k"));
                        m.put("v", vv);
                        org.usp4j.io.SafetensorsWriter.write(file, m);
                    }
                }, "", 1, "q is F32 but k is BF16: q, k, v must share one dtype"),
                new Bad("k and v differ", tensors(DType.F32, "q", q, "k", kv, "v", new long[] {1, 16, 1, 8}), "", 1,
                        "k [1, 16, 2, 8] and v [1, 16, 1, 8] must have the same shape"),
                new Bad("head_dim differs", tensors(DType.F32, "q", new long[] {1, 16, 4, 6}, "k", kv, "v", kv), "", 1,
                        "head_dim of q (6) and k (8) differ"),
                new Bad("heads not a multiple", tensors(DType.F32, "q", new long[] {1, 16, 3, 8}, "k", kv, "v", kv), "", 1,
                        "query heads (3) must be a multiple of KV heads (2)"),
                new Bad("batch differs", tensors(DType.F32, "q", new long[] {2, 16, 4, 8}, "k", kv, "v", kv), "", 1,
                        "batch of q (2) and k (1) differ"),
                new Bad("sequence differs", tensors(DType.F32, "q", new long[] {1, 8, 4, 8}, "k", kv, "v", kv), "", 1,
                        "q has sequence length 8 but k and v have 16"),
                new Bad("do shape", tensors(DType.F32, "q", q, "k", kv, "v", kv, "do", kv), "--backward", 1,
                        "do has shape [1, 16, 2, 8], expected the shape of q [1, 16, 4, 8]"),
                new Bad("S not divisible by U*R", ok, "--ulysses 1 --ring 3", 1,
                        "sequence length 16 is not divisible by U*R = 3 (--ulysses 1 --ring 3)"),
                new Bad("zigzag needs 2P", ok, "--ring 16 --layout zigzag", 1,
                        "the zigzag layout needs the sequence length (16) divisible by 2*U*R = 32"),
                new Bad("heads not divisible by U", good(DType.F32, 16, 6, 6, 8, false), "--ulysses 4", 1,
                        "query heads (6) are not divisible by --ulysses 4"),
                new Bad("KV heads and U do not fit", good(DType.F32, 24, 6, 3, 8, false), "--ulysses 2", 1,
                        "KV heads (3) and --ulysses 2 do not fit"),
                new Bad("cuda unavailable", ok, "--backend cuda", 1, "backend cuda is not available"),
                new Bad("ulysses zero", ok, "--ulysses 0", 2, "--ulysses must be >= 1, got 0"),
                new Bad("ring negative", ok, "--ring -2", 2, "--ring must be >= 1, got -2"),
                new Bad("ulysses not a number", ok, "--ulysses two", 2, "'two' is not an int"),
                new Bad("mesh overflow", ok, "--ulysses 65536 --ring 65536", 2, "is too many ranks"),
                new Bad("scale zero", ok, "--scale 0", 2, "--scale must be a finite number > 0, got 0.0"),
                new Bad("scale negative", ok, "--scale -0.5", 2, "--scale must be a finite number > 0, got -0.5"),
                new Bad("scale infinite", ok, "--scale Infinity", 2, "--scale must be a finite number > 0, got Infinity"),
                new Bad("scale text", ok, "--scale big", 2, "'big' is not a double"),
                new Bad("layout unknown", ok, "--layout spiral", 2,
                        "expected one of contiguous, zigzag, striped but was 'spiral'"),
                new Bad("ring algorithm unknown", ok, "--ring-algo spiral", 2,
                        "unknown ring algorithm 'spiral' (known: ring, allgather, tokenring, lightseq)"),
                new Bad("lightseq on zigzag", ok, "--ring-algo lightseq --ring 2 --layout zigzag", 1,
                        "ring algorithm lightseq does not support the zigzag layout (it supports contiguous)"),
                new Bad("backend unknown", ok, "--backend tpu", 2, "expected one of auto, cpu, cuda but was 'tpu'"),
                new Bad("unknown option", ok, "--fast", 2, "Unknown option: '--fast'"),
                new Bad("option twice", ok, "--ring 2 --ring 2", 2, "should be specified only once"),
                new Bad("NaN in v", withValue(ok, "v", new long[] {0, 5, 1, 7}, Float.NaN), "", 1,
                        "v has 1 non-finite value (NaN or Inf), the first NaN at [0, 5, 1, 7]"),
                new Bad("Inf in do", withValue(ok, "do", new long[] {0, 15, 3, 0}, Float.NEGATIVE_INFINITY),
                        "--backward", 1, "do has 1 non-finite value (NaN or Inf), the first -Inf at [0, 15, 3, 0]"),
                new Bad("stride overflow", bytes(header("{\"q\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,"
                        + "4611686018427387904,8],\"data_offsets\":[0,0]}}", 0)), "", 1,
                        "tensor 'q': shape [0, 4611686018427387904, 4611686018427387904, 8] is too large"));
    }

    /** {@code base}'s file with one element of tensor {@code name} set to {@code value}. */
    private static InputWriter withValue(InputWriter base, String name, long[] index, float value) {
        return file -> {
            base.write(file);
            Path tmp = file.resolveSibling("edited.safetensors");
            try (SafetensorsFile f = SafetensorsFile.open(file); Arena arena = Arena.ofConfined()) {
                Map<String, Tensor> m = new LinkedHashMap<>();
                for (String n : f.names()) {
                    Tensor copy = Tensor.allocate(arena, f.tensor(n).dtype(), f.tensor(n).shape());
                    HostTensors.copy(f.tensor(n), copy);
                    if (n.equals(name)) {
                        copy.dtype().write(copy.segment(), copy.byteOffset(index), value);
                    }
                    m.put(n, copy);
                }
                org.usp4j.io.SafetensorsWriter.write(tmp, m);
            }
            Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        };
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badInputs")
    void refusesBadInputWithOneErrorLineAndWritesNothing(Bad bad) throws IOException {
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        Path report = dir.resolve("report.json");
        bad.input().write(in);
        List<String> args = new ArrayList<>(List.of("attention", "--input", in.toString(), "--output", out.toString(),
                "--report", report.toString()));
        if (!bad.options().isBlank()) {
            args.addAll(List.of(bad.options().trim().split("\\s+")));
        }
        Cli.Result r = Cli.run(args.toArray(String[]::new));
        String line = r.assertOneErrorLine(bad.exitCode());
        assertTrue(line.contains(bad.message()), "expected '" + bad.message() + "' in: " + line);
        assertEquals("", r.out());
        assertFalse(Files.exists(out), "output written");
        assertFalse(Files.exists(report), "report written");
    }

    @Test
    void refusesOutputsItCannotWriteBeforeReadingTheInput() throws IOException {
        Path in = dir.resolve("in.safetensors");
        Cli.writeAttentionInput(in, DType.F32, 1, 1, 8, 2, 2, 4, false);
        String line = Cli.run("attention", "--input", in.toString(), "--output", dir.resolve("no/out.safetensors").toString())
                .assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains("--output") && line.contains("does not exist"), line);
        line = Cli.run("attention", "--input", in.toString(), "--output", dir.toString()).assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains("--output " + dir + " is a directory"), line);
        line = Cli.run("attention", "--input", in.toString(), "--output", dir.resolve("o.safetensors").toString(),
                "--report", dir.resolve("none/r.json").toString()).assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains("--report") && line.contains("does not exist"), line);
        assertFalse(Files.exists(dir.resolve("o.safetensors")));
        line = Cli.run("attention", "--input", in.toString(), "--output", dir.resolve("o.safetensors").toString(),
                "--report", dir.resolve("o.safetensors").toString()).assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(line.contains("would overwrite --output"), line);
        // the unwritable output is found even when the input is missing too: outputs are checked first
        line = Cli.run("attention", "--input", dir.resolve("absent").toString(), "--output",
                dir.resolve("no/out.safetensors").toString()).assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains("does not exist"), line);
    }

    @Test
    void missingRequiredOptionsAreUsageErrors() {
        String line = Cli.run("attention").assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(line.contains("Missing required options") && line.contains("--input") && line.contains("--output"), line);
    }

    @Test
    void refusesAnOutputOrReportThatIsTheInputHoweverSpelled() throws IOException {
        Path file = dir.resolve("in.safetensors");
        Cli.writeAttentionInput(file, DType.F32, 2, 1, 8, 2, 2, 4, false);
        byte[] before = Files.readAllBytes(file);
        Files.createDirectory(dir.resolve("sub"));
        Path link = dir.resolve("link.safetensors");
        Files.createSymbolicLink(link, file);
        Path hard = dir.resolve("hard.safetensors");
        Files.createLink(hard, file);
        for (Path same : List.of(file, dir.resolve("sub/../in.safetensors"), link, hard)) {
            String line = Cli.run("attention", "--input", file.toString(), "--output", same.toString())
                    .assertOneErrorLine(ExitCodes.USAGE);
            assertTrue(line.contains("is the same file as --input") && line.contains("would replace the input"), line);
            line = Cli.run("attention", "--input", file.toString(), "--output", dir.resolve("o.safetensors").toString(),
                    "--report", same.toString()).assertOneErrorLine(ExitCodes.USAGE);
            assertTrue(line.contains("would overwrite --input"), line);
        }
        assertArrayEquals(before, Files.readAllBytes(file), "the input is untouched");
        assertFalse(Files.exists(dir.resolve("o.safetensors")));
    }

    @Test
    void aRefusedRunLeavesAnExistingOutputAsItWasAndNoTemporaryFiles() throws IOException {
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        withValue(good(DType.F32, 16, 4, 2, 8, false), "q", new long[] {0, 0, 0, 0}, Float.NaN).write(in);
        Files.write(out, new byte[] {1, 2, 3});
        Cli.run("attention", "--input", in.toString(), "--output", out.toString()).assertOneErrorLine(ExitCodes.FAILURE);
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(out));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of("in.safetensors", "out.safetensors"),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        // and it runs, NaN and all, when told to
        Cli.run("attention", "--input", in.toString(), "--output", out.toString(), "--allow-nonfinite").assertOk();
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            Tensor o = f.tensor("out");
            assertTrue(Float.isNaN(o.dtype().read(o.segment(), o.byteOffset(0, 0, 0, 0))), "NaN spread to the output");
        }
    }

    @Test
    void dryRunPrintsTheMemoryEstimateAndWritesNothing() throws IOException {
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        Cli.writeAttentionInput(in, DType.F32, 1, 1, 64, 4, 4, 16, true);
        Cli.Result r = Cli.run("attention", "--input", in.toString(), "--output", out.toString(), "--ulysses", "2",
                "--ring", "2", "--backward", "--dry-run");
        r.assertOk();
        MemoryEstimate expected = MemoryEstimate.of(new org.usp4j.kernel.AttentionShapes(1, 64, 64, 4, 4, 16),
                DType.F32, new org.usp4j.sp.UspPlan(new org.usp4j.api.Mesh(2, 2),
                        new org.usp4j.sp.AttentionOptions(false, org.usp4j.sp.SequenceLayout.CONTIGUOUS, null)), true);
        assertTrue(r.out().contains("memory: " + expected.describe() + " on the host"), r.out());
        assertTrue(r.out().contains("dry run, nothing computed"), r.out());
        assertFalse(Files.exists(out));
    }

    @Test
    void aRunThatCannotFitInMemoryIsRefusedBeforeAllocating() throws IOException {
        // a valid 48 GiB input (q, k, v of [1, 2^22, 16, 128] BF16) as a sparse file: no disk space used
        Path in = dir.resolve("huge.safetensors");
        long[] shape = {1, 1L << 22, 16, 128};
        long bytes = 2L * shape[1] * shape[2] * shape[3];
        String json = "{\"q\":" + entry(shape, 0, bytes) + ",\"k\":" + entry(shape, bytes, 2 * bytes) + ",\"v\":"
                + entry(shape, 2 * bytes, 3 * bytes) + "}";
        byte[] head = header(json, 0);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(in.toFile(), "rw")) {
            f.write(head);
            f.setLength(head.length + 3 * bytes);
        }
        String line = Cli.run("attention", "--input", in.toString(), "--output", dir.resolve("o.safetensors").toString(),
                "--ring", "2").assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.matches("error: the run needs about [0-9.]+ GiB of host memory \\(2 ranks x .*\\) but only "
                + "[0-9.]+ [GM]iB is available; .*"), line);
        assertFalse(Files.exists(dir.resolve("o.safetensors")));
    }

    private static String entry(long[] shape, long begin, long end) {
        return "{\"dtype\":\"BF16\",\"shape\":" + java.util.Arrays.toString(shape).replace(" ", "")
                + ",\"data_offsets\":[" + begin + "," + end + "]}";
    }
}
