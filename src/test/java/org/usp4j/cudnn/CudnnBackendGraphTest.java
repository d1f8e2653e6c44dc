package org.usp4j.cudnn;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** Graph building through the backend API needs no GPU: descriptors up to op-graph finalize. */
class CudnnBackendGraphTest {

    @Test
    void compositeSdpaForwardGraphFinalizesAndHasEngines() {
        for (boolean causal : new boolean[] {false, true}) {
            try (var g = new SdpaForwardGraph(1, 2, 128, 64, DataType.BFLOAT16, causal, null)) {
                assertEquals(causal ? 14 : 10, g.operationCount());
                assertTrue(g.graph.isFinalized());
                long engines = g.graph.getInt64(BackendAttribute.OPERATIONGRAPH_ENGINE_GLOBAL_COUNT);
                assertTrue(engines >= 1, "engines: " + engines);
            }
        }
    }
}
