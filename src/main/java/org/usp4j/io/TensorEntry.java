package org.usp4j.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor as a safetensors header describes it: dtype, shape and its bytes
 * {@code [dataBegin, dataEnd)} relative to the start of the data buffer. Instances made by the
 * header parser are already checked: the byte range has exactly numel x element size bytes and lies
 * inside the data buffer.
 */
public record TensorEntry(String name, SafetensorsDType dtype, long[] shape, long dataBegin, long dataEnd) {

    public TensorEntry {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Number of elements (1 for a scalar of shape []). */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long byteLength() {
        return dataEnd - dataBegin;
    }

    /** "q: BF16[1, 4096, 16, 64]". */
    public String describe() {
        return name + ": " + dtype + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorEntry e && name.equals(e.name) && dtype == e.dtype && Arrays.equals(shape, e.shape)
                && dataBegin == e.dataBegin && dataEnd == e.dataEnd;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), dataBegin, dataEnd);
    }

    @Override
    public String toString() {
        return "TensorEntry[" + describe() + ", bytes [" + dataBegin + ", " + dataEnd + ")]";
    }
}
