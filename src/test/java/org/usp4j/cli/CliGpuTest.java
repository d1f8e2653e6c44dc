package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.usp4j.api.Mesh;
import org.usp4j.bench.GpuSuite;
import org.usp4j.gpu.GpuAvailability;

/**
 * demo, bench and the GPU suite on a real GPU, on small sizes: the demo's own check (USP on device ranks
 * against one cuDNN SDPA call) passes, bench's bytes equal the cost model, and the suite's rows carry
 * positive times. Runs on the GPU machine (.ci/gpu-suite); skips elsewhere.
 */
@Tag("gpu")
class CliGpuTest {

    @BeforeEach
    void requireGpu() {
        assumeTrue(GpuAvailability.problem().isEmpty(), () -> "no usable GPU: " + GpuAvailability.problem().orElse(""));
    }

    @Test
    void demoOnCudaMatchesSingleCallSdpa() {
        Cli.Result r = Cli.run("demo", "--backend", "cuda", "--seq", "2048", "--heads", "8", "--head-dim", "64");
        r.assertOk();
        assertTrue(r.out().contains("cuda backend"), r.out());
        assertTrue(r.out().contains("): ok\n"), r.out());
    }

    @Test
    void benchOnCudaMeasuresEveryMesh() throws Exception {
        Cli.Result r = Cli.run("bench", "--backend", "cuda", "--seq", "1024,2048", "--mesh", "1x1,2x2", "--heads", "8",
                "--repeat", "2", "--json");
        r.assertOk();
        List<JsonNode> rows = new ArrayList<>();
        for (String line : r.out().split("\n")) {
            rows.add(new ObjectMapper().readTree(line));
        }
        assertEquals(8, rows.size(), r.out());
        for (JsonNode row : rows) {
            assertEquals("cuda", row.get("backend").asText());
            assertTrue(row.get("ms").asDouble() > 0, row.toString());
            assertEquals(row.get("model_bytes_per_rank").asLong(), row.get("bytes_per_rank").asLong(), row.toString());
        }
    }

    @Test
    void theGpuSuiteEmitsTimedRows() {
        List<Map<String, Object>> rows = new ArrayList<>();
        GpuSuite.run(new GpuSuite.Config(List.of(1024L, 2048L), List.of(64L), 8, 1, 3, 2, 4096, List.of(new Mesh(1, 4)), List.of(64L), 2),
                rows::add);
        assertEquals("usp4j", rows.get(0).get("impl"));
        long kernelRows = rows.stream().filter(m -> "usp4j-cudnn".equals(m.get("impl"))).count();
        long uspRows = rows.stream().filter(m -> "usp4j-usp".equals(m.get("impl")) && m.containsKey("ms")).count();
        assertEquals(2 * 2 * 2, kernelRows, rows::toString);
        assertEquals(2 * 2, uspRows, rows::toString);
        for (Map<String, Object> row : rows) {
            if (row.containsKey("ms")) {
                assertTrue((double) row.get("ms") > 0 && (double) row.get("tflops") > 0, row::toString);
            }
        }
    }
}
