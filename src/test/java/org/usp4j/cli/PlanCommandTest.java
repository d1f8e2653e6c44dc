package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.gpu.GpuAvailability;
import org.usp4j.plan.CostProfile;

/**
 * {@code usp4j plan}: the JSON contract (exactly its keys; every sequence in one group, disjoint ranks, sizes
 * within P, the plan no slower than the static mesh), the text table, a profile file, and bad inputs as one
 * {@code error:} line.
 */
class PlanCommandTest {

    static final String[] EXAMPLE = {"plan", "--lengths", "65536,1024,2048,512,30000,4096,128,8192", "--ranks", "8"};

    @TempDir
    Path dir;

    @Test
    void theIssuesExampleGivesAPlanThatKeepsTheContract() throws Exception {
        Cli.Result r = Cli.run(concat(EXAMPLE, "--json"));
        r.assertOk();
        JsonNode root = new ObjectMapper().readTree(r.out());
        assertEquals(List.of("groups", "predicted_ms", "static_predicted_ms", "static_mesh"), fieldNames(root));
        Set<Integer> ranks = new HashSet<>();
        int[] seen = new int[8];
        int size = 0;
        for (JsonNode g : root.get("groups")) {
            assertEquals(List.of("ranks", "ulysses", "ring", "sequences"), fieldNames(g));
            assertEquals(g.get("ulysses").asInt() * g.get("ring").asInt(), g.get("ranks").size(), g.toString());
            size += g.get("ranks").size();
            g.get("ranks").forEach(x -> assertTrue(ranks.add(x.asInt()), "rank twice: " + x));
            g.get("sequences").forEach(x -> seen[x.asInt()]++);
        }
        assertTrue(size <= 8);
        for (int s : seen) {
            assertEquals(1, s, r.out());
        }
        assertTrue(root.get("predicted_ms").asDouble() > 0);
        assertTrue(root.get("predicted_ms").asDouble() <= root.get("static_predicted_ms").asDouble() * (1 + 1e-12), r.out());
        assertTrue(root.get("static_mesh").asText().matches("\\d+x\\d+"), r.out());
    }

    @Test
    void textNamesTheProfileAndEveryGroup() {
        Cli.Result r = Cli.run(EXAMPLE);
        r.assertOk();
        assertTrue(r.out().contains("cost profile: cpu, built-in default, not measured here"), r.out());
        assertTrue(r.out().contains("predicted step: "), r.out());
        assertTrue(r.out().contains("best static mesh "), r.out());
    }

    @Test
    void aProfileFileIsUsed() throws Exception {
        Path file = dir.resolve("p.json");
        new CostProfile("cuda", "hand-written for a test", 400e12, 300e12, 2e-5, 50e9, 3e-5, 25e9, 1.5e-5, 80L << 30, false)
                .write(file);
        Cli.Result r = Cli.run(concat(EXAMPLE, "--profile", file.toString()));
        r.assertOk();
        assertTrue(r.out().contains("cost profile: cuda, hand-written for a test"), r.out());
    }

    @Test
    void badInputsAreOneErrorLine() throws Exception {
        assertTrue(Cli.run("plan", "--lengths", "", "--ranks", "8").assertOneErrorLine(2).contains("--lengths is empty"));
        assertTrue(Cli.run("plan", "--lengths", "10,0,5", "--ranks", "8").assertOneErrorLine(2).contains("sequence 1"));
        assertTrue(Cli.run("plan", "--lengths", "10,-3", "--ranks", "8").assertOneErrorLine(2).contains("sequence 1"));
        assertTrue(Cli.run("plan", "--lengths", "10,x", "--ranks", "8").assertOneErrorLine(2).contains("\"x\""));
        Cli.run("plan", "--lengths", "10").assertOneErrorLine(2);
        Cli.run("plan", "--lengths", "10", "--ranks", "0").assertOneErrorLine(2);
        Cli.run("plan", "--lengths", "10", "--ranks", "4", "--heads", "32", "--kv-heads", "5").assertOneErrorLine(2);
        String memory = Cli.run("plan", "--lengths", "1024,500000", "--ranks", "8", "--memory-per-rank", "100000000")
                .assertOneErrorLine(1);
        assertTrue(memory.contains("#1 (500000 tokens") && !memory.contains("#0"), memory);
        assertTrue(Cli.run(concat(EXAMPLE, "--profile", dir.resolve("none.json").toString())).assertOneErrorLine(1)
                .contains("no such file"));
        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, "{\"backend\":\"cpu\"}");
        assertTrue(Cli.run(concat(EXAMPLE, "--profile", broken.toString())).assertOneErrorLine(1).contains("source"));
    }

    @Test
    void calibratingOnCudaWithoutAGpuIsOneErrorLine() {
        assumeTrue(GpuAvailability.problem().isPresent(), "a GPU is usable here");
        Cli.run("plan", "--calibrate", "--backend", "cuda").assertOneErrorLine(1);
    }

    private static List<String> fieldNames(JsonNode node) {
        List<String> names = new ArrayList<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = new String[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
