package org.usp4j.gpu.sdpa;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.cudnn.Cudnn;
import org.usp4j.cudnn.DataType;
import org.usp4j.gpu.CudnnGraph;

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

    /**
     * The zigzag ring's half-block steps bind sequence slices of full-length buffers (batch strides of
     * the whole block), with GQA and, for s_kv = 100 on cuDNN <= 9.15, the padding workaround.
     */
    @ParameterizedTest(name = "sliced causal={0} hkv={1} sq={2} skv={3}")
    @CsvSource({"false, 2, 200, 100", "true, 8, 100, 100", "false, 1, 100, 200"})
    void sequenceSlicesOfLongerBuffersFinalize(boolean causal, long hkv, long sq, long skv) {
        long b = 2, h = 8, d = 64, full = 2 * Math.max(sq, skv);
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(b, h, hkv, sq, skv, d);
        long[] qSlice = {full * h * d, h * d, d, 1};
        long[] kvSlice = {full * hkv * d, hkv * d, d, 1};
        long[][] fwd = {qSlice, kvSlice, kvSlice, qSlice};
        long[][] bwd = {qSlice, kvSlice, kvSlice, qSlice, qSlice, qSlice, kvSlice, kvSlice};
        try (CudnnGraph f = CudnnGraph.build(SdpaGraphs.forward(s, DataType.BFLOAT16, causal, fwd, Cudnn.versionCode()), null);
             CudnnGraph g = CudnnGraph.build(SdpaGraphs.backward(s, DataType.BFLOAT16, causal, bwd, Cudnn.versionCode()), null)) {
            assertTrue(f.engineCount() >= 1, "no engine for " + f.spec());
            assertTrue(g.engineCount() >= 1, "no engine for " + g.spec());
        }
    }

    /**
     * Packed sequences run one plain call per sequence segment on views of the packed block (b = 1, row
     * strides of the whole block): 1-token sequences (forward only: the backward refuses s_q = s_kv = 1),
     * short causal ones, and a straddling sequence's rows against the keys of an earlier block.
     */
    @ParameterizedTest(name = "segment causal={0} sq={1} skv={2} backward={3}")
    @CsvSource({"true, 1, 1, false", "true, 7, 7, true", "false, 3, 50, true", "true, 64, 64, true",
            "false, 1, 200, true"})
    void packedSequenceSegmentsFinalize(boolean causal, long sq, long skv, boolean backward) {
        long h = 8, hkv = 2, d = 64, block = 512;
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(1, h, hkv, sq, skv, d);
        long[] q = {block * h * d, h * d, d, 1};
        long[] kv = {block * hkv * d, hkv * d, d, 1};
        try (CudnnGraph f = CudnnGraph.build(SdpaGraphs.forward(s, DataType.BFLOAT16, causal, new long[][] {q, kv, kv, q},
                Cudnn.versionCode()), null)) {
            assertTrue(f.engineCount() >= 1, "no engine for " + f.spec());
        }
        if (backward) {
            try (CudnnGraph g = CudnnGraph.build(SdpaGraphs.backward(s, DataType.BFLOAT16, causal,
                    new long[][] {q, kv, kv, q, q, q, kv, kv}, Cudnn.versionCode()), null)) {
                assertTrue(g.engineCount() >= 1, "no engine for " + g.spec());
            }
        }
    }
}
