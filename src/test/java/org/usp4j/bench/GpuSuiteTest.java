package org.usp4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The GPU suite's rows as jmh/gpu/summarize.py reads them (the suite itself runs on the GPU machine). */
class GpuSuiteTest {

    @Test
    void rowsCarryTheKeysSummarizeJoinsOnAndTflopsOverUnmaskedPairs() {
        Map<String, Object> r = GpuSuite.row("usp4j-cudnn", null, Pass.BACKWARD, 4096, 16, 64, true, 2.0);
        assertEquals(List.of("impl", "pass", "seq", "heads", "head_dim", "causal", "ms", "tflops"), List.copyOf(r.keySet()));
        assertEquals("bwd", r.get("pass"));
        double flops = 2.5 * 4 * 16 * (4096 * 4097 / 2.0) * 64;
        assertEquals(flops / 2e-3 * 1e-12, (double) r.get("tflops"), 1e-9);
        Map<String, Object> usp = GpuSuite.row("usp4j-usp", "1x4", Pass.FORWARD, 65536, 16, 128, false, 10);
        assertEquals("1x4", usp.get("mesh"));
    }

    @Test
    void theStandardSuiteHasTheShapesOfTheTorchScript() {
        GpuSuite.Config c = GpuSuite.Config.standard();
        assertEquals(List.of(4096L, 8192L, 16384L, 32768L, 65536L), c.seqs());
        assertEquals(List.of(64L, 128L), c.headDims());
        assertEquals(16, c.heads());
        assertEquals(65536, c.uspSeq());
        assertEquals(List.of("1x4", "2x2", "4x1", "1x8", "2x4", "8x1"),
                c.uspMeshes().stream().map(GpuSuite::meshName).toList());
        assertEquals(List.of(64L), c.uspHeadDims());
    }

    @Test
    void medianOfOddAndEvenCounts() {
        assertEquals(2.0, Timings.median(List.of(3.0, 1.0, 2.0)));
        assertEquals(2.5, Timings.median(List.of(4.0, 1.0, 2.0, 3.0)));
    }
}
