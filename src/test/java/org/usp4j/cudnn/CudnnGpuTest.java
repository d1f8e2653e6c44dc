package org.usp4j.cudnn;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.usp4j.cudnn.BackendAttribute.*;

import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.usp4j.gpu.CudnnGraph;
import org.usp4j.gpu.sdpa.SdpaGraphs;
import org.usp4j.gpu.SdpaPlan;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaStream;

/** Handle, heuristics and plans need a GPU: skipped where the runtime sees no device. */
@Tag("gpu")
class CudnnGpuTest {

    @BeforeEach
    void requireDevice() {
        assumeTrue(Cuda.isDeviceAvailable(), "no CUDA device");
        Cuda.setDevice(0);
    }

    @Test
    void handleTakesAStreamAndUseAfterCloseThrows() {
        var handle = CudnnHandle.create();
        try (var stream = CudaStream.create()) {
            handle.setStream(stream);
            assertEquals(stream.handle().address(), handle.stream().address());
        }
        handle.close();
        handle.close();
        assertThrows(IllegalStateException.class, handle::handle);
    }

    @Test
    void heuristicsOfferAConfigurationWhoseExecutionPlanFinalizes() {
        SdpaGraphs.Shape shape = new SdpaGraphs.Shape(1, 4, 4, 256, 256, 64);
        try (var handle = CudnnHandle.create();
             var plan = SdpaPlan.build(CudnnGraph.build(SdpaGraphs.forward(shape, DataType.BFLOAT16, true,
                     SdpaGraphs.contiguousStrides(shape, 4), Cudnn.versionCode()), handle), handle,
                     Map.of(SdpaGraphs.SCALE, 0.125f, SdpaGraphs.NEG_INF, Float.NEGATIVE_INFINITY), Map.of())) {
            assertTrue(plan.workspaceBytes() >= 0);
            assertFalse(plan.engine().isBlank());
        }
    }
}
