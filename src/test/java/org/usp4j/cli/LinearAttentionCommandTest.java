package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.api.Mesh;
import org.usp4j.io.SafetensorsFile;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.LinearMask;
import org.usp4j.kernel.ReferenceLinearAttention;
import org.usp4j.sp.UspPlan;
import org.usp4j.sp.linear.Lasp2Attention;
import org.usp4j.sp.linear.LinearAttentionOptions;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * {@code usp4j attention --attention linear} and {@code bench --attention linear} end to end: results
 * against the float64 linear attention reference on the same inputs (f32: 1e-4, as for softmax), bytes
 * against the LASP-2 plan's cost model, and the options that do not go with linear attention refused with one
 * line.
 */
class LinearAttentionCommandTest {

    @TempDir
    Path dir;

    @ParameterizedTest(name = "U={0} R={1} {2}")
    @CsvSource({
        "1, 4, --causal --decay 0.99",
        "2, 2, --causal",
        "1, 2, --scale 0.5",
    })
    void matchesTheReferenceAndTheCostModel(int u, int r, String options) throws Exception {
        int b = 1, s = 32, h = 4, hkv = 2, d = 8;
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        Path report = dir.resolve("report.json");
        Cli.writeAttentionInput(in, DType.F32, 5, b, s, h, hkv, d, true);
        List<String> args = new ArrayList<>(List.of("attention", "--input", in.toString(), "--output", out.toString(),
                "--attention", "linear", "--ulysses", "" + u, "--ring", "" + r, "--backward", "--report",
                report.toString()));
        args.addAll(List.of(options.split(" ")));
        Cli.Result result = Cli.run(args.toArray(String[]::new));
        result.assertOk();
        assertTrue(result.out().contains("LASP-2"), result.out());

        boolean causal = options.contains("--causal");
        LinearMask mask = causal ? LinearMask.causal(options.contains("--decay") ? 0.99 : 1) : LinearMask.NONE;
        float scale = options.contains("--scale") ? 0.5f : 1f;
        ReferenceLinearAttention reference = new ReferenceLinearAttention();
        try (SafetensorsFile input = SafetensorsFile.open(in); SafetensorsFile written = SafetensorsFile.open(out);
             Arena arena = Arena.ofConfined()) {
            assertEquals(List.of("out", "dq", "dk", "dv"), written.names()); // no lse
            Tensor q = input.tensor("q"), k = input.tensor("k"), v = input.tensor("v"), dout = input.tensor("do");
            Tensor o = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor dq = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor dk = Tensor.allocate(arena, DType.F32, k.shape());
            Tensor dv = Tensor.allocate(arena, DType.F32, v.shape());
            reference.forward(q, k, v, mask, scale, null, o);
            reference.backward(q, k, v, dout, mask, scale, null, null, dq, dk, dv);
            String[] names = {"out", "dq", "dk", "dv"};
            Tensor[] expected = {o, dq, dk, dv};
            for (int t = 0; t < 4; t++) {
                double error = HostTensors.relativeError(written.tensor(names[t]), expected[t]);
                assertTrue(error <= 1e-4, names[t] + ": relative error " + error);
            }
        }
        Mesh mesh = new Mesh(u, r);
        UspPlan plan = Lasp2Attention.plan(mesh, LinearAttentionOptions.of(causal, null, null));
        AttentionShapes global = new AttentionShapes(b, s, s, h, hkv, d);
        long expectedBytes = plan.forwardBytes(global, DType.F32).total() + plan.backwardBytes(global, DType.F32).total();
        JsonNode ranks = new ObjectMapper().readTree(report.toFile()).get("ranks");
        assertEquals(u * r, ranks.size());
        for (JsonNode rank : ranks) {
            JsonNode sent = rank.get("bytes_sent");
            assertEquals(expectedBytes, sent.get("all_to_all").asLong() + sent.get("all_gather").asLong(), rank.toString());
            assertEquals(0, sent.get("p2p").asLong());
            // Forward and backward: states of h_kv'/U heads (h_kv' = max(h_kv, U)), d x d float32.
            assertEquals(2L * (r - 1) * b * (Math.max(hkv, u) / u) * d * d * 4, sent.get("all_gather").asLong());
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "--attention linear --decay 0.9|2|--decay needs --causal",
        "--attention linear --causal --decay 1.5|2|--decay must be in (0, 1]",
        "--causal --decay 0.9|2|--decay is for --attention linear",
        "--attention linear --layout zigzag|2|contiguously",
        "--attention linear --backend cuda|1|no linear attention kernel",
        "--attention cubic|2|softmax, linear",
        "--attention linear --layout striped|2|contiguously",
        "--attention linear --ring-algo allgather|2|always runs LASP-2",
    })
    void badCombinationsAreOneLineErrorsBeforeAnyWork(String options, int code, String message) throws Exception {
        Path in = dir.resolve("in.safetensors");
        Path out = dir.resolve("out.safetensors");
        Cli.writeAttentionInput(in, DType.F32, 5, 1, 16, 2, 2, 8, false);
        List<String> args = new ArrayList<>(List.of("attention", "--input", in.toString(), "--output", out.toString()));
        args.addAll(List.of(options.split(" ")));
        String line = Cli.run(args.toArray(String[]::new)).assertOneErrorLine(code);
        assertTrue(line.contains(message), line);
        assertFalse(Files.exists(out));
    }

    @Test
    void benchComparesLasp2WithRingAttentionAtTheSameShapes() throws Exception {
        Cli.Result r = Cli.run("bench", "--attention", "linear", "--decay", "0.99", "--backend", "cpu", "--seq", "64",
                "--mesh", "1x4", "--heads", "4", "--head-dim", "8", "--repeat", "1", "--warmup", "0", "--json");
        r.assertOk();
        List<JsonNode> rows = new ArrayList<>();
        for (String line : r.out().split("\n")) {
            rows.add(new ObjectMapper().readTree(line));
        }
        assertEquals(4, rows.size(), r.out()); // linear and softmax, forward and backward
        assertEquals(List.of("linear", "linear", "softmax", "softmax"),
                rows.stream().map(row -> row.get("attention").asText()).toList());
        for (JsonNode row : rows) {
            assertEquals(row.get("model_bytes_per_rank").asLong(), row.get("bytes_per_rank").asLong(), row.toString());
        }
        // LASP-2 on 1x4: 3 states of 4 heads x 8 x 8 floats; the ring passes K and V blocks instead.
        assertEquals(3L * 4 * 8 * 8 * 4, rows.get(0).get("bytes_per_rank").asLong());
        assertEquals("contiguous", rows.get(0).get("layout").asText());

        Cli.Result text = Cli.run("bench", "--attention", "linear", "--backend", "cpu", "--seq", "32", "--mesh", "1x2",
                "--heads", "2", "--head-dim", "8", "--repeat", "1", "--warmup", "0", "--no-backward");
        text.assertOk();
        String[] lines = text.out().split("\n");
        assertEquals(4, lines.length, text.out()); // title, header, linear, softmax
        assertTrue(lines[2].startsWith("linear "), lines[2]);
        assertTrue(lines[3].startsWith("softmax "), lines[3]);
    }
}
