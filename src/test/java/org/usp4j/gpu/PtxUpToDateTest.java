package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The committed PTX is what src/main/cuda/build-ptx makes from elementwise.cu (checked where nvcc is
 * installed, as on CI), it exports every kernel the backend launches, and CUDA 12 drivers can load it.
 */
class PtxUpToDateTest {

    @Test
    void theShippedPtxExportsEveryKernel() {
        String ptx = ElementwiseKernels.ptx();
        for (String kernel : List.of("usp4j_copy", "usp4j_fill", "usp4j_add", "usp4j_merge_attention")) {
            assertTrue(ptx.contains(".visible .entry " + kernel + "("), kernel + " missing from the PTX");
        }
    }

    /**
     * The driver refuses PTX of an ISA newer than it knows. usp4j ships the CUDA 12 runtime, so the PTX
     * must load on any CUDA 12 driver: ISA at most 8.0, for the sm_80 baseline.
     */
    @Test
    void theShippedPtxLoadsOnEveryCuda12Driver() {
        String ptx = ElementwiseKernels.ptx();
        Matcher version = Pattern.compile("(?m)^\\.version (\\d+)\\.(\\d+)\\s*$").matcher(ptx);
        assertTrue(version.find(), "no .version directive in the PTX");
        int isa = Integer.parseInt(version.group(1)) * 10 + Integer.parseInt(version.group(2));
        assertTrue(isa <= 80, "PTX ISA " + version.group(1) + "." + version.group(2)
                + " needs a newer driver than CUDA 12.0's (8.0): run src/main/cuda/build-ptx, which pins it");
        assertTrue(Pattern.compile("(?m)^\\.target sm_80\\s*$").matcher(ptx).find(), "PTX must target sm_80");
    }

    @Test
    void theShippedPtxIsCurrent() throws Exception {
        Path nvcc = Path.of(System.getenv().getOrDefault("NVCC", "/usr/local/cuda/bin/nvcc"));
        assumeTrue(Files.isExecutable(nvcc), "nvcc not installed: cannot rebuild the PTX here");
        Path script = Path.of("src/main/cuda/build-ptx");
        assumeTrue(Files.exists(script), "not run from the repository root");
        Path out = Files.createTempFile("usp4j-elementwise", ".ptx");
        try {
            ProcessBuilder build = new ProcessBuilder("bash", script.toString(), out.toString()).redirectErrorStream(true);
            build.environment().put("NVCC", nvcc.toString());
            Process p = build.start();
            String log = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "build-ptx timed out");
            assertEquals(0, p.exitValue(), log);
            assertEquals(Files.readString(out), ElementwiseKernels.ptx(),
                    "src/main/resources/org/usp4j/cuda/elementwise.ptx is stale: run src/main/cuda/build-ptx");
        } finally {
            Files.deleteIfExists(out);
        }
    }
}
