package org.usp4j.cudnn;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.usp4j.cudnn.BackendAttribute.*;

import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
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
        try (var handle = CudnnHandle.create();
             var g = new SdpaForwardGraph(1, 4, 256, 64, DataType.BFLOAT16, true, handle);
             var heur = BackendDescriptor.create(DescriptorType.ENGINEHEUR).set(ENGINEHEUR_OPERATION_GRAPH, g.graph)
                     .set(ENGINEHEUR_MODE, HeuristicMode.A).finish()) {
            long count = heur.elementCount(ENGINEHEUR_RESULTS, AttributeType.BACKEND_DESCRIPTOR);
            assertTrue(count >= 1, "heuristics found no engine configuration for the SDPA graph");
            List<BackendDescriptor> configs = heur.getDescriptors(ENGINEHEUR_RESULTS, DescriptorType.ENGINECFG, (int) count);
            CudnnException last = null;
            boolean built = false;
            try {
                for (BackendDescriptor cfg : configs) {
                    try (var plan = BackendDescriptor.create(DescriptorType.EXECUTION_PLAN)
                            .set(EXECUTION_PLAN_HANDLE, handle).set(EXECUTION_PLAN_ENGINE_CONFIG, cfg).finish()) {
                        assertTrue(plan.getInt64(EXECUTION_PLAN_WORKSPACE_SIZE) >= 0);
                        built = true;
                        break;
                    } catch (CudnnException e) {
                        last = e;
                    }
                }
            } finally {
                configs.forEach(BackendDescriptor::close);
            }
            assertTrue(built, "no configuration gave a plan; last error: " + last);
        }
    }
}
