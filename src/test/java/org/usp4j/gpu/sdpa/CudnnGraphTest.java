package org.usp4j.gpu.sdpa;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.cudnn.Cudnn;
import org.usp4j.cudnn.DataType;

/**
 * Every SDPA graph usp4j builds, lowered through the real cuDNN (9.5 in CI) and finalized as an
 * operation graph, which needs no GPU; a graph cuDNN rejects (wrong attribute, type or topology)
 * fails here, long before a GPU run.
 */
class CudnnGraphTest {


    @ParameterizedTest(name = "fwd causal={0} h={1} hkv={2} sq={3} skv={4} d={5} {6}")
    @CsvSource({
            "false, 8, 8, 256, 256, 64, BFLOAT16",
            "true, 8, 8, 256, 256, 128, BFLOAT16",
            "false, 8, 2, 128, 384, 64, HALF",
            "true, 4, 1, 512, 512, 64, HALF"})
    void forwardGraphFinalizes(boolean causal, long h, long hkv, long sq, long skv, long d, DataType io) {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(2, h, hkv, sq, skv, d);
        try (CudnnGraph g = CudnnGraph.build(SdpaGraphs.forward(s, io, causal, SdpaGraphs.contiguousStrides(s, 4), Cudnn.versionCode()), null)) {
            assertTrue(g.engineCount() >= 1, "no engine for " + g.spec());
        }
    }

    @ParameterizedTest(name = "bwd causal={0} h={1} hkv={2} sq={3} skv={4} d={5} {6}")
    @CsvSource({
            "false, 8, 8, 256, 256, 64, BFLOAT16",
            "true, 8, 8, 256, 256, 128, BFLOAT16",
            "false, 8, 2, 128, 384, 64, HALF",
            "true, 4, 1, 512, 512, 64, BFLOAT16",
            "true, 4, 4, 200, 200, 64, BFLOAT16"})
    void backwardGraphFinalizes(boolean causal, long h, long hkv, long sq, long skv, long d, DataType io) {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(2, h, hkv, sq, skv, d);
        try (CudnnGraph g = CudnnGraph.build(SdpaGraphs.backward(s, io, causal, SdpaGraphs.contiguousStrides(s, 8), Cudnn.versionCode()), null)) {
            assertTrue(g.engineCount() >= 1, "no engine for " + g.spec());
        }
    }
}
