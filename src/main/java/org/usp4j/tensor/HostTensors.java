package org.usp4j.tensor;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/** Plain host-side helpers: random inputs, strided copies and error measures. Not for hot loops. */
public final class HostTensors {

    private HostTensors() {
    }

    /** Visits every element's byte offset in row-major index order. */
    public interface OffsetVisitor {
        /**
         * Called once per element.
         *
         * @param elementIndex the element's row-major index
         * @param byteOffset   its byte offset within the tensor's memory
         */
        void visit(long elementIndex, long byteOffset);
    }

    /**
     * Calls {@code visitor} for each element of {@code t} in row-major order.
     *
     * @param t       the tensor
     * @param visitor told each element's index and byte offset
     */
    public static void forEachOffset(Tensor t, OffsetVisitor visitor) {
        int rank = t.rank();
        long n = t.numel();
        if (n == 0) {
            return;
        }
        long[] shape = t.shape();
        long[] strides = t.strides();
        long[] idx = new long[rank];
        long elem = t.offset();
        int size = t.dtype().byteSize();
        for (long i = 0; i < n; i++) {
            visitor.visit(i, elem * size);
            for (int d = rank - 1; d >= 0; d--) {
                if (++idx[d] < shape[d]) {
                    elem += strides[d];
                    break;
                }
                elem -= (shape[d] - 1) * strides[d];
                idx[d] = 0;
            }
        }
    }

    /**
     * Fills a host tensor with standard normal values (rounded to its dtype).
     *
     * @param t    the host tensor
     * @param seed the random seed; equal seeds give equal values
     */
    public static void fillNormal(Tensor t, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        MemorySegment seg = t.segment();
        DType dtype = t.dtype();
        forEachOffset(t, (i, off) -> dtype.write(seg, off, (float) random.nextGaussian()));
    }

    /**
     * Copies {@code src} into {@code dst} element by element, converting the dtype (host only).
     *
     * @param src the source
     * @param dst the destination, of the same shape
     * @throws IllegalArgumentException when the shapes differ
     */
    public static void copy(Tensor src, Tensor dst) {
        if (!src.sameShape(dst)) {
            throw new IllegalArgumentException("copy from " + src.describe() + " to " + dst.describe());
        }
        if (src.dtype() == dst.dtype() && src.isContiguous() && dst.isContiguous()) {
            MemorySegment.copy(src.contiguousSegment(), 0, dst.contiguousSegment(), 0, src.byteSize());
            return;
        }
        float[] values = toFloatArray(src);
        MemorySegment out = dst.segment();
        DType dtype = dst.dtype();
        forEachOffset(dst, (i, off) -> dtype.write(out, off, values[Math.toIntExact(i)]));
    }

    /**
     * The elements of a host tensor in row-major order, as floats.
     *
     * @param t the host tensor
     * @return a new array
     */
    public static float[] toFloatArray(Tensor t) {
        float[] values = new float[Math.toIntExact(t.numel())];
        MemorySegment seg = t.segment();
        DType dtype = t.dtype();
        forEachOffset(t, (i, off) -> values[(int) i] = dtype.read(seg, off));
        return values;
    }

    /**
     * The elements of a host tensor in row-major order, as doubles.
     *
     * @param t the host tensor
     * @return a new array
     */
    public static double[] toDoubleArray(Tensor t) {
        double[] values = new double[Math.toIntExact(t.numel())];
        MemorySegment seg = t.segment();
        DType dtype = t.dtype();
        forEachOffset(t, (i, off) -> values[(int) i] = dtype.read(seg, off));
        return values;
    }

    /**
     * Relative Frobenius error ||actual - expected|| / ||expected||. Infinite where {@code actual} has a
     * NaN, so a NaN never passes a tolerance check.
     *
     * @param actual   the values to check
     * @param expected the reference, of the same shape
     * @return the relative error
     * @throws IllegalArgumentException when the shapes differ
     */
    public static double relativeError(Tensor actual, Tensor expected) {
        if (!actual.sameShape(expected)) {
            throw new IllegalArgumentException("compare " + actual.describe() + " with " + expected.describe());
        }
        return relativeError(toDoubleArray(actual), toDoubleArray(expected));
    }

    /**
     * Relative Frobenius error of two equally long arrays; -inf entries that agree count as equal.
     *
     * @param actual   the values to check
     * @param expected the reference
     * @return the relative error, infinite on a NaN
     * @throws IllegalArgumentException when the lengths differ
     */
    public static double relativeError(double[] actual, double[] expected) {
        if (actual.length != expected.length) {
            throw new IllegalArgumentException("lengths differ: " + actual.length + " vs " + expected.length);
        }
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < actual.length; i++) {
            double a = actual[i];
            double e = expected[i];
            if (Double.isNaN(a) || Double.isNaN(e)) {
                return Double.POSITIVE_INFINITY;
            }
            if (a == e) {
                if (Double.isFinite(e)) {
                    norm += e * e;
                }
                continue;
            }
            double d = a - e;
            diff += d * d;
            norm += e * e;
        }
        if (norm == 0) {
            return diff == 0 ? 0 : Double.POSITIVE_INFINITY;
        }
        return Math.sqrt(diff / norm);
    }
}
