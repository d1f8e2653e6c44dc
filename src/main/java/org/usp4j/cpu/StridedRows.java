package org.usp4j.cpu;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.tensor.Tensor;

/**
 * Walks several equally shaped strided tensors row by row, where a row is the innermost run of
 * elements after merging every pair of adjacent dimensions that is contiguous in all tensors and
 * dropping size-1 dimensions. A copy of [U, b, s, h/U, d] slices thus becomes few long rows, so the
 * element loops stay in simple counted loops the JIT compiles well.
 */
final class StridedRows {

    /** Receives the element offsets (one per tensor, from the start of its memory) of one row. */
    interface RowVisitor {
        void row(long[] elementOffsets);
    }

    private final long rowLength;
    private final long[] rowStrides;
    private final long[] outerShape;
    private final long[][] outerStrides;
    private final long[] base;
    private final boolean empty;

    private StridedRows(long rowLength, long[] rowStrides, long[] outerShape, long[][] outerStrides, long[] base,
                        boolean empty) {
        this.rowLength = rowLength;
        this.rowStrides = rowStrides;
        this.outerShape = outerShape;
        this.outerStrides = outerStrides;
        this.base = base;
        this.empty = empty;
    }

    static StridedRows of(Tensor... tensors) {
        int n = tensors.length;
        long[] shape = tensors[0].shape();
        long[] base = new long[n];
        for (int t = 0; t < n; t++) {
            base[t] = tensors[t].offset();
        }
        boolean empty = Tensor.numel(shape) == 0;
        // Dimensions kept, outermost first: their sizes and each tensor's strides.
        List<long[]> dims = new ArrayList<>();
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 1) {
                continue;
            }
            long[] dim = new long[n + 1];
            dim[0] = shape[i];
            for (int t = 0; t < n; t++) {
                dim[t + 1] = tensors[t].stride(i);
            }
            dims.add(dim);
        }
        // Merge outer into inner when stride_outer == size_inner * stride_inner for every tensor.
        for (int i = dims.size() - 2; i >= 0; i--) {
            long[] outer = dims.get(i);
            long[] inner = dims.get(i + 1);
            boolean mergeable = true;
            for (int t = 1; t <= n && mergeable; t++) {
                mergeable = outer[t] == inner[0] * inner[t];
            }
            if (mergeable) {
                inner[0] *= outer[0];
                dims.remove(i);
            }
        }
        if (dims.isEmpty()) {
            long[] one = new long[n + 1];
            one[0] = 1;
            dims.add(one);
        }
        long[] row = dims.get(dims.size() - 1);
        long[] rowStrides = new long[n];
        System.arraycopy(row, 1, rowStrides, 0, n);
        int outerRank = dims.size() - 1;
        long[] outerShape = new long[outerRank];
        long[][] outerStrides = new long[n][outerRank];
        for (int i = 0; i < outerRank; i++) {
            outerShape[i] = dims.get(i)[0];
            for (int t = 0; t < n; t++) {
                outerStrides[t][i] = dims.get(i)[t + 1];
            }
        }
        return new StridedRows(row[0], rowStrides, outerShape, outerStrides, base, empty);
    }

    long rowLength() {
        return rowLength;
    }

    /** Element stride along a row of tensor {@code t}. */
    long rowStride(int t) {
        return rowStrides[t];
    }

    void forEach(RowVisitor visitor) {
        if (empty) {
            return;
        }
        int n = base.length;
        int rank = outerShape.length;
        long[] offsets = base.clone();
        long[] view = new long[n];
        long[] idx = new long[rank];
        while (true) {
            System.arraycopy(offsets, 0, view, 0, n);
            visitor.row(view);
            int d = rank - 1;
            while (d >= 0) {
                if (++idx[d] < outerShape[d]) {
                    for (int t = 0; t < n; t++) {
                        offsets[t] += outerStrides[t][d];
                    }
                    break;
                }
                for (int t = 0; t < n; t++) {
                    offsets[t] -= (outerShape[d] - 1) * outerStrides[t][d];
                }
                idx[d] = 0;
                d--;
            }
            if (d < 0) {
                return;
            }
        }
    }
}
