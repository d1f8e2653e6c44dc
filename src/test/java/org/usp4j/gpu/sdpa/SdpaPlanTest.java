package org.usp4j.gpu.sdpa;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.usp4j.cudnn.BackendDescriptor;
import org.usp4j.cudnn.Cudnn;
import org.usp4j.cudnn.DataType;
import org.usp4j.gpu.CudnnGraph;
import org.usp4j.gpu.GpuTests;
import org.usp4j.gpu.SdpaPlan;

/**
 * Plan building where no engine can be had (no GPU: heuristics give nothing): every heuristics mode
 * is asked, a mode that fails does not hide the next one, the error lists them all, and the graph's
 * descriptors are freed.
 */
class SdpaPlanTest {

    @Test
    void withoutEnginesEveryModeIsTriedAndTheGraphIsFreed() {
        assumeFalse(GpuTests.deviceAvailable(), "a GPU is present: heuristics would find engines");
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(1, 4, 4, 128, 128, 64);
        CudnnGraph graph = CudnnGraph.build(SdpaGraphs.forward(s, DataType.BFLOAT16, true,
                SdpaGraphs.contiguousStrides(s, 4), Cudnn.versionCode()), null);
        BackendDescriptor opGraph = graph.operationGraph();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> SdpaPlan.build(graph, null, Map.of(SdpaGraphs.SCALE, 0.125f), Map.of()));
        assertTrue(e.getMessage().contains("sdpa_fwd_causal"), e.getMessage());
        assertTrue(e.getMessage().contains("heuristics A") && e.getMessage().contains("heuristics FALLBACK"),
                e.getMessage());
        assertTrue(opGraph.isClosed(), "the operation graph must be destroyed with the failed plan");
    }
}
