package org.usp4j.cudnn;

import static org.usp4j.cudnn.BackendAttribute.*;

import java.util.ArrayList;
import java.util.List;

/**
 * Test helper: the composite SDPA forward graph (matmul, scale, optional causal mask, softmax with
 * Stats, matmul) as research/cudnn-nccl.md section A.1 describes it, built with
 * {@link BackendDescriptor}. Owns every descriptor it creates.
 */
final class SdpaForwardGraph implements AutoCloseable {

    static final long Q = 1, K = 2, V = 3, O = 4, STATS = 5, SCALE = 6, NEG_INF = 7;

    private final List<BackendDescriptor> owned = new ArrayList<>();
    private final List<BackendDescriptor> ops = new ArrayList<>();
    private long nextVirtualUid = 100;
    final BackendDescriptor graph;

    /** Q, K, V, O in bshd memory layout with io type {@code io}; [b, h, s, d] logical dims. */
    SdpaForwardGraph(int b, int h, int s, int d, DataType io, boolean causal, CudnnHandle handle) {
        long[] bhsd = {b, h, s, d};
        long[] bshdStrides = {(long) s * h * d, d, (long) h * d, 1};
        BackendDescriptor q = tensor(Q, io, bhsd, bshdStrides, false, false);
        // K transposed: the same memory seen as [b, h, d, s]
        BackendDescriptor kT = tensor(K, io, new long[] {b, h, d, s}, new long[] {(long) s * h * d, d, 1, (long) h * d},
                false, false);
        BackendDescriptor v = tensor(V, io, bhsd, bshdStrides, false, false);
        BackendDescriptor o = tensor(O, io, bhsd, bshdStrides, false, false);
        long[] scores = {b, h, s, s};
        long[] scoreStrides = {(long) h * s * s, (long) s * s, s, 1};
        long[] rows = {b, h, s, 1};
        long[] rowStrides = {(long) h * s, s, 1, 1};
        BackendDescriptor stats = tensor(STATS, DataType.FLOAT, rows, rowStrides, false, false);
        BackendDescriptor scale = tensor(SCALE, DataType.FLOAT, new long[] {1, 1, 1, 1}, new long[] {1, 1, 1, 1}, false, true);

        BackendDescriptor s0 = virtual(DataType.FLOAT, scores, scoreStrides);
        matmul(q, kT, s0);
        BackendDescriptor s1 = virtual(DataType.FLOAT, scores, scoreStrides);
        pointwise(PointwiseMode.MUL, DataType.FLOAT, s0, scale, null, s1, -1);
        BackendDescriptor masked = s1;
        if (causal) {
            BackendDescriptor row = virtual(DataType.INT32, scores, scoreStrides);
            pointwise(PointwiseMode.GEN_INDEX, DataType.FLOAT, s1, null, null, row, 2);
            BackendDescriptor col = virtual(DataType.INT32, scores, scoreStrides);
            pointwise(PointwiseMode.GEN_INDEX, DataType.FLOAT, s1, null, null, col, 3);
            BackendDescriptor keep = virtual(DataType.BOOLEAN, scores, scoreStrides);
            pointwise(PointwiseMode.CMP_GE, DataType.BOOLEAN, row, col, null, keep, -1);
            BackendDescriptor negInf = tensor(NEG_INF, DataType.FLOAT, new long[] {1, 1, 1, 1}, new long[] {1, 1, 1, 1},
                    false, true);
            masked = virtual(DataType.FLOAT, scores, scoreStrides);
            pointwise(PointwiseMode.BINARY_SELECT, DataType.FLOAT, s1, negInf, keep, masked, -1);
        }
        BackendDescriptor max = virtual(DataType.FLOAT, rows, rowStrides);
        reduction(ReductionOperator.MAX, masked, max);
        BackendDescriptor z = virtual(DataType.FLOAT, scores, scoreStrides);
        pointwise(PointwiseMode.SUB, DataType.FLOAT, masked, max, null, z, -1);
        BackendDescriptor e = virtual(DataType.FLOAT, scores, scoreStrides);
        pointwise(PointwiseMode.EXP, DataType.FLOAT, z, null, null, e, -1);
        BackendDescriptor sum = virtual(DataType.FLOAT, rows, rowStrides);
        reduction(ReductionOperator.ADD, e, sum);
        BackendDescriptor logSum = virtual(DataType.FLOAT, rows, rowStrides);
        pointwise(PointwiseMode.LOG, DataType.FLOAT, sum, null, null, logSum, -1);
        pointwise(PointwiseMode.ADD, DataType.FLOAT, max, logSum, null, stats, -1);
        BackendDescriptor p = virtual(io, scores, scoreStrides); // the second matmul takes P in the io type
        pointwise(PointwiseMode.DIV, DataType.FLOAT, e, sum, null, p, -1);
        matmul(p, v, o);

        BackendDescriptor g = own(BackendDescriptor.create(DescriptorType.OPERATIONGRAPH)).set(OPERATIONGRAPH_OPS, ops);
        if (handle != null) {
            g.set(OPERATIONGRAPH_HANDLE, handle);
        }
        graph = g.finish();
    }

    int operationCount() {
        return ops.size();
    }

    private BackendDescriptor own(BackendDescriptor d) {
        owned.add(d);
        return d;
    }

    BackendDescriptor tensor(long uid, DataType type, long[] dims, long[] strides, boolean isVirtual, boolean byValue) {
        BackendDescriptor t = own(BackendDescriptor.create(DescriptorType.TENSOR))
                .set(TENSOR_DATA_TYPE, type)
                .setInt64s(TENSOR_DIMENSIONS, dims)
                .setInt64s(TENSOR_STRIDES, strides)
                .setInt64(TENSOR_UNIQUE_ID, uid)
                .setInt64(TENSOR_BYTE_ALIGNMENT, 16);
        if (isVirtual) {
            t.setBoolean(TENSOR_IS_VIRTUAL, true);
        }
        if (byValue) {
            t.setBoolean(TENSOR_IS_BY_VALUE, true);
        }
        return t.finish();
    }

    private BackendDescriptor virtual(DataType type, long[] dims, long[] strides) {
        return tensor(nextVirtualUid++, type, dims, strides, true, false);
    }

    private void matmul(BackendDescriptor a, BackendDescriptor b, BackendDescriptor c) {
        BackendDescriptor desc = own(BackendDescriptor.create(DescriptorType.MATMUL))
                .set(MATMUL_COMP_TYPE, DataType.FLOAT).finish();
        ops.add(own(BackendDescriptor.create(DescriptorType.OPERATION_MATMUL)).set(OPERATION_MATMUL_ADESC, a)
                .set(OPERATION_MATMUL_BDESC, b).set(OPERATION_MATMUL_CDESC, c).set(OPERATION_MATMUL_DESC, desc)
                .finish());
    }

    private void pointwise(PointwiseMode mode, DataType precision, BackendDescriptor x, BackendDescriptor b,
                           BackendDescriptor t, BackendDescriptor y, long axis) {
        BackendDescriptor desc = own(BackendDescriptor.create(DescriptorType.POINTWISE))
                .set(POINTWISE_MODE, mode).set(POINTWISE_MATH_PREC, precision);
        if (axis >= 0) {
            desc.setInt64(POINTWISE_AXIS, axis);
        }
        desc.finish();
        BackendDescriptor op = own(BackendDescriptor.create(DescriptorType.OPERATION_POINTWISE))
                .set(OPERATION_POINTWISE_PW_DESCRIPTOR, desc).set(OPERATION_POINTWISE_XDESC, x);
        if (b != null) {
            op.set(OPERATION_POINTWISE_BDESC, b);
        }
        if (t != null) {
            op.set(OPERATION_POINTWISE_TDESC, t);
        }
        ops.add(op.set(OPERATION_POINTWISE_YDESC, y).finish());
    }

    private void reduction(ReductionOperator operator, BackendDescriptor x, BackendDescriptor y) {
        BackendDescriptor desc = own(BackendDescriptor.create(DescriptorType.REDUCTION))
                .set(REDUCTION_OPERATOR, operator).set(REDUCTION_COMP_TYPE, DataType.FLOAT).finish();
        ops.add(own(BackendDescriptor.create(DescriptorType.OPERATION_REDUCTION)).set(OPERATION_REDUCTION_XDESC, x)
                .set(OPERATION_REDUCTION_YDESC, y).set(OPERATION_REDUCTION_DESC, desc).finish());
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            owned.get(i).close();
        }
    }
}
