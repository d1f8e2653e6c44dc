package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.bench.AttentionFlops;
import org.usp4j.gpu.GpuAvailability;

/**
 * {@code usp4j bench} on tiny sequence lengths: the table's and the JSON lines' shape, figures that agree
 * with each other (FLOP/s from the time and the unmasked pairs, bytes equal to the cost model), plots
 * written, and bad options refused. Nothing here is timed.
 */
class BenchCommandTest {

    private static final String[] TINY = {"bench", "--backend", "cpu", "--seq", "32,64", "--mesh", "1x1,2x2",
        "--heads", "4", "--head-dim", "8", "--repeat", "1", "--warmup", "0"};

    @TempDir
    Path dir;

    @Test
    void jsonLinesParseAndAgreeWithTheirOwnFigures() throws Exception {
        Cli.Result r = Cli.run(concat(TINY, "--json"));
        r.assertOk();
        List<JsonNode> rows = new ArrayList<>();
        for (String line : r.out().split("\n")) {
            rows.add(new ObjectMapper().readTree(line));
        }
        assertEquals(8, rows.size(), r.out()); // 2 meshes x 2 lengths x 2 passes
        for (JsonNode row : rows) {
            for (String f : new String[] {"backend", "mesh", "ulysses", "ring", "ranks", "seq", "batch", "heads", "kv_heads",
                "head_dim", "dtype", "causal", "layout", "pass", "calls", "ms", "ms_min", "gflops", "tflops",
                "bytes_per_rank", "model_bytes_per_rank", "attention_pairs", "pairs_spread"}) {
                assertTrue(row.has(f), f + " missing in " + row);
            }
            // One count per rank; together every unmasked (causal) pair once per head.
            long seq = row.get("seq").asLong();
            long sum = 0;
            long max = 0;
            long min = Long.MAX_VALUE;
            for (JsonNode n : row.get("attention_pairs")) {
                sum += n.asLong();
                max = Math.max(max, n.asLong());
                min = Math.min(min, n.asLong());
            }
            assertEquals(row.get("ranks").asInt(), row.get("attention_pairs").size(), row.toString());
            assertEquals(4 * seq * (seq + 1) / 2, sum, row.toString());
            assertEquals((double) max / min, row.get("pairs_spread").asDouble(), 1e-12, row.toString());
            assertEquals("cpu", row.get("backend").asText());
            assertEquals(row.get("model_bytes_per_rank").asLong(), row.get("bytes_per_rank").asLong(), row.toString());
            boolean fwd = row.get("pass").asText().equals("fwd");
            double flops = fwd ? AttentionFlops.forward(1, 4, row.get("seq").asLong(), 8, true)
                    : AttentionFlops.backward(1, 4, row.get("seq").asLong(), 8, true);
            assertEquals(flops / (row.get("ms").asDouble() * 1e-3) * 1e-9, row.get("gflops").asDouble(),
                    1e-9 * row.get("gflops").asDouble(), row.toString());
            assertEquals(row.get("gflops").asDouble() / 1000, row.get("tflops").asDouble(), 1e-12);
            assertTrue(row.get("ms").asDouble() > 0);
            if (row.get("mesh").asText().equals("1x1")) {
                assertEquals(0, row.get("bytes_per_rank").asLong());
            } else {
                assertTrue(row.get("bytes_per_rank").asLong() > 0);
            }
        }
        assertEquals("2x2", rows.get(7).get("mesh").asText());
        assertEquals("bwd", rows.get(7).get("pass").asText());
    }

    @Test
    void textIsAHeaderAndOneRowPerConfigurationAndPass() {
        Cli.Result r = Cli.run(concat(TINY, "--no-backward", "--no-causal", "--layout", "contiguous"));
        r.assertOk();
        String[] lines = r.out().split("\n");
        assertEquals(2 + 4, lines.length, r.out());
        assertTrue(lines[0].startsWith("usp4j bench: cpu backend"), lines[0]);
        assertTrue(lines[0].contains("non-causal, contiguous layout"), lines[0]);
        assertArrayEquals(new String[] {"mesh", "ranks", "seq", "pass", "ms/call", "spread", "GFLOP/s", "bytes/rank",
            "cost", "model"}, lines[1].trim().split("\\s+"));
        for (int i = 2; i < lines.length; i++) {
            String[] cells = lines[i].trim().split("\\s+");
            assertEquals("fwd", cells[3], lines[i]);
            // the pairs' spread: non-causal work is the same on every rank
            assertEquals("1.00", cells[5], lines[i]);
            // bytes/rank equals the cost model's figure
            assertEquals(cells[7] + " " + cells[8], cells[9] + " " + cells[10], lines[i]);
        }
    }

    @ParameterizedTest
    @CsvSource({"plot.png", "plot.svg"})
    void plotsAreWritten(String name) throws Exception {
        Path file = dir.resolve(name);
        Cli.Result r = Cli.run(concat(TINY, "--plot", file.toString()));
        r.assertOk();
        assertTrue(r.out().endsWith("plot: " + file + "\n"), r.out());
        byte[] bytes = Files.readAllBytes(file);
        assertTrue(bytes.length > 1000, bytes.length + " bytes");
        if (name.endsWith(".png")) {
            assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(bytes, 4));
        } else {
            String svg = new String(bytes, StandardCharsets.UTF_8);
            assertTrue(svg.contains("<svg") && svg.contains("</svg>"), svg.substring(0, 200));
        }
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "--mesh 2by2|expected UxR",
            "--mesh 0x2|degrees must be >= 1",
            "--mesh 3x1|does not fit",
            "--seq 30|zigzag layout needs S % (2P) == 0",
            "--repeat 0|--repeat must be >= 1",
            "--warmup -1|--warmup must be >= 0",
            "--plot out.pdf|must end in .png or .svg",
            "--suite cpu|--suite",
            "--suite gpu|--suite gpu runs on cuda"})
    void badOptionsAreUsageErrors(String options, String message) {
        String[] base = Arrays.copyOf(TINY, TINY.length - 4); // without --repeat and --warmup
        String line = Cli.run(concat(base, options.split(" "))).assertOneErrorLine(2);
        assertTrue(line.contains(message), line);
    }

    @Test
    void anUnwritablePlotFailsBeforeAnyWork() {
        String line = Cli.run(concat(TINY, "--plot", dir.resolve("no/such/dir/p.png").toString())).assertOneErrorLine(1);
        assertTrue(line.contains("does not exist"), line);
    }

    @Test
    void theGpuSuiteWithoutAGpuFailsWithOneLine() {
        assumeTrue(GpuAvailability.problem().isPresent(), "a GPU is usable here");
        String line = Cli.run("bench", "--suite", "gpu").assertOneErrorLine(1);
        assertTrue(line.contains("backend cuda is not available"), line);
        assertFalse(line.contains("Exception"), line);
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
