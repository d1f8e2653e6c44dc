package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The committed PTX is what src/main/cuda/build-ptx makes from elementwise.cu (checked where nvcc is
 * installed, as on CI; the script also has ptxas assemble it for sm_80 and sm_90), and it exports
 * every kernel the backend launches.
 */
class PtxUpToDateTest {

    @Test
    void theShippedPtxExportsEveryKernel() {
        String ptx = ElementwiseKernels.ptx();
        for (String kernel : List.of("usp4j_copy", "usp4j_fill", "usp4j_add", "usp4j_merge_attention")) {
            assertTrue(ptx.contains(".visible .entry " + kernel + "("), kernel + " missing from the PTX");
        }
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
