package org.usp4j.gpu;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.usp4j.tensor.Tensor;

/**
 * The iteration space shared by several equally shaped tensors, with every dimension of size 1
 * dropped and adjacent dimensions merged wherever they are contiguous in all operands. A copy between
 * two contiguous tensors becomes one dimension (one memcpy); a head slice of a bshd tensor becomes two
 * (one 2-D memcpy); anything else goes to the element-wise kernels, which take up to {@link #MAX_RANK}.
 */
public record StridedGeometry(long[] shape, long[][] strides) {

    /** The rank the element-wise kernels handle (their {@code struct Dims}). */
    public static final int MAX_RANK = 6;

    /** The merged geometry of {@code tensors}, which must all have the same shape. */
    public static StridedGeometry of(Tensor... tensors) {
        long[] shape = tensors[0].shape();
        for (Tensor t : tensors) {
            if (!Arrays.equals(shape, t.shape())) {
                throw new IllegalArgumentException("shapes differ: " + tensors[0].describe() + " and " + t.describe());
            }
        }
        List<long[]> dims = new ArrayList<>(); // each entry: {size, stride of tensor 0, stride of tensor 1, ...}
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 1) {
                continue;
            }
            long[] entry = new long[tensors.length + 1];
            entry[0] = shape[d];
            for (int t = 0; t < tensors.length; t++) {
                entry[t + 1] = tensors[t].stride(d);
            }
            dims.add(entry);
        }
        // Merge dimension i into i + 1 when, in every tensor, stepping i equals a full sweep of i + 1.
        for (int i = dims.size() - 2; i >= 0; i--) {
            long[] outer = dims.get(i);
            long[] inner = dims.get(i + 1);
            boolean contiguous = true;
            for (int t = 1; t < outer.length; t++) {
                contiguous &= outer[t] == inner[t] * inner[0];
            }
            if (contiguous) {
                inner[0] *= outer[0];
                dims.remove(i);
            }
        }
        if (dims.isEmpty()) {
            long[] scalar = new long[tensors.length + 1];
            scalar[0] = shape.length == 0 || Tensor.numel(shape) == 1 ? 1 : 0;
            Arrays.fill(scalar, 1, scalar.length, 1);
            dims.add(scalar);
        }
        long[] mergedShape = new long[dims.size()];
        long[][] mergedStrides = new long[tensors.length][dims.size()];
        for (int d = 0; d < dims.size(); d++) {
            mergedShape[d] = dims.get(d)[0];
            for (int t = 0; t < tensors.length; t++) {
                mergedStrides[t][d] = dims.get(d)[t + 1];
            }
        }
        return new StridedGeometry(mergedShape, mergedStrides);
    }

    public int rank() {
        return shape.length;
    }

    public long numel() {
        return Tensor.numel(shape);
    }

    /** True when operand {@code t} walks memory with unit stride over the whole space. */
    public boolean isContiguous(int t) {
        return rank() == 1 && (strides[t][0] == 1 || shape[0] == 1);
    }

    /**
     * True when the space is rows of unit-stride elements whose row starts never overlap in any
     * operand: what {@code cudaMemcpy2DAsync} copies (it needs every pitch >= the row width, so a
     * broadcast row, stride 0, goes to the kernel instead).
     */
    public boolean isPitchedRows() {
        if (rank() != 2) {
            return false;
        }
        for (long[] s : strides) {
            if (s[1] != 1 || s[0] < shape[1]) {
                return false;
            }
        }
        return true;
    }

    /** Shape padded with leading ones to {@link #MAX_RANK} (the kernels' {@code Dims}). */
    public long[] paddedShape() {
        return pad(shape, 1);
    }

    /** Strides of operand {@code t} padded with leading zeros to {@link #MAX_RANK}. */
    public long[] paddedStrides(int t) {
        return pad(strides[t], 0);
    }

    private long[] pad(long[] values, long fill) {
        if (values.length > MAX_RANK) {
            throw new IllegalArgumentException("strided operation over " + values.length
                    + " non-mergeable dimensions; the kernels take at most " + MAX_RANK + " (shape "
                    + Arrays.toString(shape) + ")");
        }
        long[] padded = new long[MAX_RANK];
        Arrays.fill(padded, 0, MAX_RANK - values.length, fill);
        System.arraycopy(values, 0, padded, MAX_RANK - values.length, values.length);
        return padded;
    }
}
