package org.usp4j.cudnn;

import static org.junit.jupiter.api.Assertions.*;

import static org.usp4j.cudnn.BackendAttribute.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.usp4j.gpu.CudnnGraph;
import org.usp4j.gpu.sdpa.SdpaGraphs;

/** Graph building through the backend API needs no GPU: descriptors up to op-graph finalize. */
class CudnnBackendGraphTest {

    @Test
    void compositeSdpaForwardGraphFinalizesAndHasEngines() {
        for (boolean causal : new boolean[] {false, true}) {
            SdpaGraphs.Shape shape = new SdpaGraphs.Shape(1, 2, 2, 128, 128, 64);
            try (var g = CudnnGraph.build(SdpaGraphs.forward(shape, DataType.BFLOAT16, causal,
                    SdpaGraphs.contiguousStrides(shape, 4), Cudnn.versionCode()), null)) {
                assertEquals(causal ? 14 : 10, g.spec().ops().size());
                assertTrue(g.operationGraph().isFinalized());
                long engines = g.operationGraph().getInt64(BackendAttribute.OPERATIONGRAPH_ENGINE_GLOBAL_COUNT);
                assertTrue(engines >= 1, "engines: " + engines);
            }
        }
    }

    @Test
    void backwardPiecesReshapeTransposeAndIdentityFinalizeIntoAGraph() {
        int b = 1, h = 2, s = 64, d = 64;
        List<BackendDescriptor> owned = new ArrayList<>();
        try {
            // dV = P^T dO, with P^T a virtual transpose (RESHAPE) of the probabilities, then dQ-style IDENTITY
            BackendDescriptor p = tensor(owned, 1, DataType.BFLOAT16, new long[] {b, h, s, s},
                    new long[] {(long) h * s * s, (long) s * s, s, 1}, false);
            BackendDescriptor pT = tensor(owned, 100, DataType.BFLOAT16, new long[] {b, h, s, s},
                    new long[] {(long) h * s * s, (long) s * s, 1, s}, true);
            BackendDescriptor dO = tensor(owned, 2, DataType.BFLOAT16, new long[] {b, h, s, d},
                    new long[] {(long) s * h * d, d, (long) h * d, 1}, false);
            BackendDescriptor dVf = tensor(owned, 101, DataType.FLOAT, new long[] {b, h, s, d},
                    new long[] {(long) h * s * d, (long) s * d, d, 1}, true);
            BackendDescriptor dV = tensor(owned, 3, DataType.BFLOAT16, new long[] {b, h, s, d},
                    new long[] {(long) s * h * d, d, (long) h * d, 1}, false);
            BackendDescriptor reshape = own(owned, BackendDescriptor.create(DescriptorType.OPERATION_RESHAPE)
                    .set(OPERATION_RESHAPE_XDESC, p).set(OPERATION_RESHAPE_YDESC, pT).finish());
            BackendDescriptor mm = own(owned, BackendDescriptor.create(DescriptorType.MATMUL)
                    .set(MATMUL_COMP_TYPE, DataType.FLOAT).finish());
            BackendDescriptor matmul = own(owned, BackendDescriptor.create(DescriptorType.OPERATION_MATMUL)
                    .set(OPERATION_MATMUL_ADESC, pT).set(OPERATION_MATMUL_BDESC, dO).set(OPERATION_MATMUL_CDESC, dVf)
                    .set(OPERATION_MATMUL_DESC, mm).finish());
            BackendDescriptor identity = own(owned, BackendDescriptor.create(DescriptorType.POINTWISE)
                    .set(POINTWISE_MODE, PointwiseMode.IDENTITY).set(POINTWISE_MATH_PREC, DataType.FLOAT).finish());
            BackendDescriptor copy = own(owned, BackendDescriptor.create(DescriptorType.OPERATION_POINTWISE)
                    .set(OPERATION_POINTWISE_PW_DESCRIPTOR, identity).set(OPERATION_POINTWISE_XDESC, dVf)
                    .set(OPERATION_POINTWISE_YDESC, dV).finish());
            BackendDescriptor graph = own(owned, BackendDescriptor.create(DescriptorType.OPERATIONGRAPH)
                    .set(OPERATIONGRAPH_OPS, reshape, matmul, copy).finish());
            assertTrue(graph.getInt64(OPERATIONGRAPH_ENGINE_GLOBAL_COUNT) >= 0);
        } finally {
            for (int i = owned.size() - 1; i >= 0; i--) {
                owned.get(i).close();
            }
        }
    }

    private static BackendDescriptor own(List<BackendDescriptor> owned, BackendDescriptor d) {
        owned.add(d);
        return d;
    }

    private static BackendDescriptor tensor(List<BackendDescriptor> owned, long uid, DataType type, long[] dims,
                                            long[] strides, boolean isVirtual) {
        BackendDescriptor t = own(owned, BackendDescriptor.create(DescriptorType.TENSOR)).set(TENSOR_DATA_TYPE, type)
                .setInt64s(TENSOR_DIMENSIONS, dims).setInt64s(TENSOR_STRIDES, strides).setInt64(TENSOR_UNIQUE_ID, uid)
                .setInt64(TENSOR_BYTE_ALIGNMENT, 16);
        if (isVirtual) {
            t.setBoolean(TENSOR_IS_VIRTUAL, true);
        }
        return t.finish();
    }
}
