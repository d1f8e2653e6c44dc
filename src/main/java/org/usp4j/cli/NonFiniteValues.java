package org.usp4j.cli;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Optional;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The NaN and infinite values of a contiguous host tensor: how many, and the first one's index. Attention
 * turns one NaN into NaN rows of the output, the log-sum-exp and every gradient, so inputs are checked
 * before any work. The check reads the raw little-endian bits (exponent all ones), one test for F32, BF16
 * and F16.
 *
 * @param count      how many elements are NaN or infinite (at least 1)
 * @param firstIndex the first one's index, one entry per dimension
 * @param firstValue the first one's value (NaN, +Infinity or -Infinity)
 */
record NonFiniteValues(long count, long[] firstIndex, double firstValue) {

    private static final ValueLayout.OfInt F32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The non-finite values of {@code t}, or empty when every element is finite. */
    static Optional<NonFiniteValues> of(Tensor t) {
        MemorySegment data = t.contiguousSegment();
        long n = t.numel();
        long count = 0;
        long first = -1;
        int firstBits = 0;
        switch (t.dtype()) {
            case F32 -> {
                for (long i = 0; i < n; i++) {
                    int bits = data.getAtIndex(F32, i);
                    if ((bits & 0x7f80_0000) == 0x7f80_0000) {
                        if (count++ == 0) {
                            first = i;
                            firstBits = bits;
                        }
                    }
                }
            }
            case BF16, F16 -> {
                int exponent = t.dtype() == DType.BF16 ? 0x7f80 : 0x7c00;
                for (long i = 0; i < n; i++) {
                    int bits = data.getAtIndex(HALF, i);
                    if ((bits & exponent) == exponent) {
                        if (count++ == 0) {
                            first = i;
                            firstBits = bits;
                        }
                    }
                }
            }
            default -> throw new IllegalArgumentException("no non-finite check for " + t.dtype());
        }
        if (count == 0) {
            return Optional.empty();
        }
        int mantissa = switch (t.dtype()) {
            case F32 -> firstBits & 0x007f_ffff;
            case BF16 -> firstBits & 0x007f;
            default -> firstBits & 0x03ff;
        };
        boolean negative = t.dtype() == DType.F32 ? firstBits < 0 : (firstBits & 0x8000) != 0;
        double value = mantissa != 0 ? Double.NaN : negative ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
        return Optional.of(new NonFiniteValues(count, unravel(first, t.shape()), value));
    }

    /** "NaN at [0, 5, 1, 7]". */
    String describeFirst() {
        return (Double.isNaN(firstValue) ? "NaN" : firstValue > 0 ? "+Inf" : "-Inf") + " at "
                + Arrays.toString(firstIndex);
    }

    private static long[] unravel(long flat, long[] shape) {
        long[] index = new long[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            index[i] = flat % shape[i];
            flat /= shape[i];
        }
        return index;
    }
}
