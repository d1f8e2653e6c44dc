package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.gpu.GpuAvailability;

/**
 * {@code usp4j demo} on tiny problems: the output's shape, the errors it reports within their limits,
 * every rank's bytes equal to the cost model, and bad options refused with one error line. The demo's
 * own check is what decides the exit status, so exit 0 here means USP matched single-rank attention.
 */
class DemoCommandTest {

    private static final Pattern ERROR = Pattern.compile(" (out|lse|dq|dk|dv) (\\d\\.\\de[-+]\\d\\d)");

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "--seq 64 --heads 4 --head-dim 16|4",
            "--seq 48 --heads 4 --kv-heads 2 --head-dim 8 --ulysses 2 --ring 3 --dtype f32|6",
            "--seq 32 --heads 2 --head-dim 8 --ulysses 1 --ring 4 --no-causal --layout contiguous --dtype f16|4"})
    void smallRunsMatchSingleRankAttentionAndTheCostModel(String options, int ranks) {
        Cli.Result r = Cli.run(("demo --backend cpu " + options).split(" "));
        r.assertOk();
        String out = r.out();
        assertTrue(out.startsWith("usp4j demo: USP attention on " + ranks + " simulated ranks"), out);
        assertTrue(out.contains("cpu backend"), out);
        assertEquals(2, count(out, "\nforward "), out);
        assertEquals(2, count(out, "\nbackward "), out);
        assertTrue(out.contains("(1 rank, reference)"), out);
        Map<String, Double> errors = errors(out);
        assertEquals(java.util.List.of("out", "lse", "dq", "dk", "dv"), java.util.List.copyOf(errors.keySet()), out);
        errors.forEach((name, e) -> assertTrue(e < 2e-2, name + " error " + e));
        assertTrue(out.contains("limits: ") && out.contains("): ok\n"), out);
        assertTrue(out.contains("bytes sent per rank, forward : all_to_all"), out);
        assertEquals(2, count(out, "= cost model: ok"), out);
        assertTrue(out.matches("(?s).*\\ntotal \\d+\\.\\d s\\n"), out);
    }

    @Test
    void forwardOnlyLeavesOutTheBackward() {
        Cli.Result r = Cli.run("demo", "--backend", "cpu", "--seq", "32", "--heads", "2", "--head-dim", "8",
                "--no-backward");
        r.assertOk();
        assertFalse(r.out().contains("backward"), r.out());
        assertEquals(java.util.List.of("out", "lse"), java.util.List.copyOf(errors(r.out()).keySet()), r.out());
        assertEquals(1, count(r.out(), "= cost model: ok"), r.out());
    }

    @ParameterizedTest
    @CsvSource({"allgather, zigzag", "allgather, striped", "ring, striped", "tokenring, zigzag", "tokenring, striped",
        "lightseq, contiguous"})
    void everyRingAlgorithmAndLayoutMatchesTheReferenceAndItsOwnCostModel(String algorithm, String layout) {
        Cli.Result r = Cli.run("demo", "--backend", "cpu", "--seq", "32", "--heads", "2", "--head-dim", "8",
                "--ring-algo", algorithm, "--layout", layout);
        r.assertOk();
        assertTrue(r.out().contains("relative error vs single rank:") && r.out().contains(": ok"), r.out());
        assertEquals(2, count(r.out(), "= cost model: ok"), r.out());
        if (algorithm.equals("allgather")) {
            assertTrue(r.out().contains("all_gather") && r.out().contains("reduce_scatter"), r.out());
        }
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "--ring-algo spiral|unknown ring algorithm 'spiral' (known: ring, allgather, tokenring, lightseq)",
            "--ring-algo lightseq --layout zigzag|ring algorithm lightseq does not support the zigzag layout (it supports contiguous)",
            "--seq 64 --heads 3 --head-dim 8|does not fit",
            "--seq 60 --heads 4 --head-dim 8|zigzag layout needs S % (2P) == 0",
            "--seq 64 --heads 4 --kv-heads 3|not a multiple of --kv-heads",
            "--seq 0|--seq must be >= 1",
            "--ulysses 0|--ulysses must be >= 1",
            "--dtype f64|--dtype",
            "--backend tpu|--backend"})
    void badOptionsAreUsageErrors(String options, String message) {
        String line = Cli.run(("demo --backend cpu " + options).split(" ")).assertOneErrorLine(2);
        assertTrue(line.contains(message), line);
    }

    @Test
    void cudaWithoutAGpuFailsWithOneLine() {
        assumeTrue(GpuAvailability.problem().isPresent(), "a GPU is usable here");
        String line = Cli.run("demo", "--backend", "cuda", "--seq", "32").assertOneErrorLine(1);
        assertTrue(line.contains("backend cuda is not available"), line);
    }

    @Test
    void autoRunsOnTheCpuWithoutAGpu() {
        assumeTrue(GpuAvailability.problem().isPresent(), "a GPU is usable here");
        Cli.Result r = Cli.run("demo", "--seq", "32", "--heads", "2", "--head-dim", "8");
        r.assertOk();
        assertTrue(r.out().contains("cpu backend"), r.out());
    }

    private static Map<String, Double> errors(String out) {
        String line = out.lines().filter(l -> l.startsWith("relative error vs single rank:")).findFirst().orElseThrow();
        Map<String, Double> errors = new LinkedHashMap<>();
        Matcher m = ERROR.matcher(line.substring(0, line.indexOf(" (limits")));
        while (m.find()) {
            errors.put(m.group(1), Double.parseDouble(m.group(2)));
        }
        return errors;
    }

    private static int count(String haystack, String needle) {
        int n = 0;
        for (int i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }
}
