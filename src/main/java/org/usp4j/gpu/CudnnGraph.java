package org.usp4j.gpu;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.usp4j.cudnn.BackendAttribute;
import org.usp4j.cudnn.BackendDescriptor;
import org.usp4j.cudnn.CudnnHandle;
import org.usp4j.cudnn.DataType;
import org.usp4j.cudnn.DescriptorType;
import org.usp4j.gpu.GraphSpec.Matmul;
import org.usp4j.gpu.GraphSpec.Op;
import org.usp4j.gpu.GraphSpec.Pointwise;
import org.usp4j.gpu.GraphSpec.Reduction;
import org.usp4j.gpu.GraphSpec.Reshape;

/**
 * A {@link GraphSpec} lowered to cuDNN backend descriptors and finalized as an operation graph. This
 * much needs no GPU (cuDNN finalizes operation graphs without a device), so it is tested in CI; plans
 * ({@link SdpaPlan#build}) need one. Owns every descriptor it creates; a plan built from it keeps it
 * alive, as cuDNN plans reference the graph's descriptors.
 */
public final class CudnnGraph implements AutoCloseable {

    private final GraphSpec spec;
    private final List<BackendDescriptor> owned = new ArrayList<>();
    private final BackendDescriptor operationGraph;

    private CudnnGraph(GraphSpec spec, CudnnHandle handle) {
        this.spec = spec;
        try {
            Map<Long, BackendDescriptor> tensors = new HashMap<>();
            for (GraphSpec.Tensor t : spec.tensors()) {
                tensors.put(t.uid(), tensor(t));
            }
            List<BackendDescriptor> ops = new ArrayList<>();
            for (Op op : spec.ops()) {
                ops.add(lower(op, tensors));
            }
            BackendDescriptor graph = own(BackendDescriptor.create(DescriptorType.OPERATIONGRAPH))
                    .set(BackendAttribute.OPERATIONGRAPH_OPS, ops);
            if (handle != null) {
                // Required before cuDNN 9.8 for heuristics to know the device; harmless after.
                graph.set(BackendAttribute.OPERATIONGRAPH_HANDLE, handle);
            }
            this.operationGraph = graph.finish();
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    /** Lowers and finalizes {@code spec}; {@code handle} may be null where no GPU is present. */
    public static CudnnGraph build(GraphSpec spec, CudnnHandle handle) {
        return new CudnnGraph(spec, handle);
    }

    public GraphSpec spec() {
        return spec;
    }

    public BackendDescriptor operationGraph() {
        return operationGraph;
    }

    /** How many engines of the loaded cuDNN can run this graph at all. */
    public long engineCount() {
        return operationGraph.getInt64(BackendAttribute.OPERATIONGRAPH_ENGINE_GLOBAL_COUNT);
    }

    private BackendDescriptor tensor(GraphSpec.Tensor t) {
        BackendDescriptor d = own(BackendDescriptor.create(DescriptorType.TENSOR))
                .set(BackendAttribute.TENSOR_DATA_TYPE, t.type())
                .setInt64s(BackendAttribute.TENSOR_DIMENSIONS, t.dims())
                .setInt64s(BackendAttribute.TENSOR_STRIDES, t.strides())
                .setInt64(BackendAttribute.TENSOR_UNIQUE_ID, t.uid())
                .setInt64(BackendAttribute.TENSOR_BYTE_ALIGNMENT, 16);
        if (t.isVirtual()) {
            d.setBoolean(BackendAttribute.TENSOR_IS_VIRTUAL, true);
        }
        if (t.byValue()) {
            d.setBoolean(BackendAttribute.TENSOR_IS_BY_VALUE, true);
        }
        return d.finish();
    }

    private BackendDescriptor lower(Op op, Map<Long, BackendDescriptor> t) {
        return switch (op) {
            case Pointwise p -> {
                BackendDescriptor mode = own(BackendDescriptor.create(DescriptorType.POINTWISE))
                        .set(BackendAttribute.POINTWISE_MODE, p.mode())
                        .set(BackendAttribute.POINTWISE_MATH_PREC, p.computeType());
                if (p.axis() != null) {
                    mode.setInt64(BackendAttribute.POINTWISE_AXIS, p.axis());
                }
                mode.finish();
                BackendDescriptor d = own(BackendDescriptor.create(DescriptorType.OPERATION_POINTWISE))
                        .set(BackendAttribute.OPERATION_POINTWISE_PW_DESCRIPTOR, mode)
                        .set(BackendAttribute.OPERATION_POINTWISE_XDESC, t.get(p.x().uid()));
                if (p.b() != null) {
                    d.set(BackendAttribute.OPERATION_POINTWISE_BDESC, t.get(p.b().uid()));
                }
                if (p.t() != null) {
                    d.set(BackendAttribute.OPERATION_POINTWISE_TDESC, t.get(p.t().uid()));
                }
                yield d.set(BackendAttribute.OPERATION_POINTWISE_YDESC, t.get(p.y().uid()))
                        .setFloat(BackendAttribute.OPERATION_POINTWISE_ALPHA1, 1f)
                        .setFloat(BackendAttribute.OPERATION_POINTWISE_ALPHA2, 1f)
                        .finish();
            }
            case Matmul m -> {
                BackendDescriptor desc = own(BackendDescriptor.create(DescriptorType.MATMUL))
                        .set(BackendAttribute.MATMUL_COMP_TYPE, DataType.FLOAT).finish();
                BackendDescriptor d = own(BackendDescriptor.create(DescriptorType.OPERATION_MATMUL))
                        .set(BackendAttribute.OPERATION_MATMUL_ADESC, t.get(m.a().uid()))
                        .set(BackendAttribute.OPERATION_MATMUL_BDESC, t.get(m.b().uid()))
                        .set(BackendAttribute.OPERATION_MATMUL_CDESC, t.get(m.c().uid()))
                        .set(BackendAttribute.OPERATION_MATMUL_DESC, desc);
                if (m.mOverride() != null) {
                    d.set(BackendAttribute.OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, t.get(m.mOverride().uid()));
                }
                if (m.nOverride() != null) {
                    d.set(BackendAttribute.OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, t.get(m.nOverride().uid()));
                }
                if (m.kOverride() != null) {
                    d.set(BackendAttribute.OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, t.get(m.kOverride().uid()));
                }
                yield d.finish();
            }
            case Reduction r -> {
                BackendDescriptor desc = own(BackendDescriptor.create(DescriptorType.REDUCTION))
                        .set(BackendAttribute.REDUCTION_OPERATOR, r.op())
                        .set(BackendAttribute.REDUCTION_COMP_TYPE, DataType.FLOAT).finish();
                yield own(BackendDescriptor.create(DescriptorType.OPERATION_REDUCTION))
                        .set(BackendAttribute.OPERATION_REDUCTION_XDESC, t.get(r.x().uid()))
                        .set(BackendAttribute.OPERATION_REDUCTION_YDESC, t.get(r.y().uid()))
                        .set(BackendAttribute.OPERATION_REDUCTION_DESC, desc)
                        .finish();
            }
            case Reshape r -> own(BackendDescriptor.create(DescriptorType.OPERATION_RESHAPE))
                    .set(BackendAttribute.OPERATION_RESHAPE_XDESC, t.get(r.x().uid()))
                    .set(BackendAttribute.OPERATION_RESHAPE_YDESC, t.get(r.y().uid()))
                    .finish();
        };
    }

    private BackendDescriptor own(BackendDescriptor d) {
        owned.add(d);
        return d;
    }

    /** Destroys the descriptors in reverse order of creation. Idempotent. */
    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            owned.get(i).close();
        }
        owned.clear();
    }
}
