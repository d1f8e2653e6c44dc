package org.usp4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * A strided view of host or device memory. Attention tensors are {@code bshd}
 * ([batch, seq, heads, head_dim], head_dim contiguous); log-sum-exp tensors are [batch, heads, seq]
 * in float32.
 *
 * <p>A tensor never owns its memory: host tensors view a {@link MemorySegment} whose arena the
 * caller controls, device tensors view a {@link DevicePointer}. Views ({@link #slice}, {@link #view})
 * are cheap and copy nothing. Shapes, strides and offsets are checked against the memory's size when
 * a tensor is made, so no tensor can reach outside its memory.
 */
public final class Tensor {

    private final DType dtype;
    private final long[] shape;
    private final long[] strides; // in elements
    private final long offset;    // in elements, from the start of the memory
    private final MemorySegment host;
    private final DevicePointer device;

    private Tensor(DType dtype, long[] shape, long[] strides, long offset, MemorySegment host, DevicePointer device) {
        this.dtype = Objects.requireNonNull(dtype, "dtype");
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
        this.host = host;
        this.device = device;
        checkGeometry();
    }

    /** A contiguous host tensor over {@code segment} (which may be larger than needed). */
    public static Tensor host(MemorySegment segment, DType dtype, long... shape) {
        Objects.requireNonNull(segment, "segment");
        long[] s = shape.clone();
        return new Tensor(dtype, s, contiguousStrides(s), 0, segment, null);
    }

    /** A contiguous device tensor over {@code memory}. */
    public static Tensor device(DevicePointer memory, DType dtype, long... shape) {
        Objects.requireNonNull(memory, "memory");
        long[] s = shape.clone();
        return new Tensor(dtype, s, contiguousStrides(s), 0, null, memory);
    }

    /** Allocates a zeroed, contiguous host tensor in {@code arena} (64-byte aligned). */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        long[] s = shape.clone();
        long bytes = Math.multiplyExact(numel(s), dtype.byteSize());
        return new Tensor(dtype, s, contiguousStrides(s), 0, arena.allocate(Math.max(bytes, 1), 64), null);
    }

    /** The same memory seen with explicit strides and offset (both in elements), bounds-checked. */
    public Tensor withGeometry(long[] newShape, long[] newStrides, long newOffset) {
        if (newShape.length != newStrides.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(newShape)
                    + " and strides " + Arrays.toString(newStrides) + " differ in rank");
        }
        return new Tensor(dtype, newShape.clone(), newStrides.clone(), newOffset, host, device);
    }

    public static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = stride;
            stride = Math.multiplyExact(stride, Math.max(shape[i], 1));
        }
        return strides;
    }

    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private void checkGeometry() {
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset " + offset);
        }
        long last = offset;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            if (strides[i] < 0) {
                throw new IllegalArgumentException("negative stride in " + Arrays.toString(strides));
            }
        }
        long n = numel(shape);
        if (n == 0) {
            return;
        }
        for (int i = 0; i < shape.length; i++) {
            last = Math.addExact(last, Math.multiplyExact(shape[i] - 1, strides[i]));
        }
        long endByte = Math.multiplyExact(last + 1, (long) dtype.byteSize());
        long capacity = host != null ? host.byteSize() : device.byteSize();
        if (endByte > capacity) {
            throw new IndexOutOfBoundsException("tensor " + describe() + " needs " + endByte
                    + " bytes but its memory has " + capacity);
        }
    }

    public DType dtype() {
        return dtype;
    }

    public int rank() {
        return shape.length;
    }

    public long size(int dim) {
        return shape[dim];
    }

    public long[] shape() {
        return shape.clone();
    }

    public long stride(int dim) {
        return strides[dim];
    }

    public long[] strides() {
        return strides.clone();
    }

    /** Offset of the first element from the start of the memory, in elements. */
    public long offset() {
        return offset;
    }

    public long numel() {
        return numel(shape);
    }

    /** Bytes covered by the elements themselves (numel x element size). */
    public long byteSize() {
        return numel() * dtype.byteSize();
    }

    public boolean isHost() {
        return host != null;
    }

    public boolean isDevice() {
        return device != null;
    }

    /** The whole host memory this tensor views (index it with {@link #byteOffset}). */
    public MemorySegment segment() {
        if (host == null) {
            throw new IllegalStateException("tensor " + describe() + " lives on a device, not in host memory");
        }
        return host;
    }

    /** The whole device memory this tensor views. */
    public DevicePointer devicePointer() {
        if (device == null) {
            throw new IllegalStateException("tensor " + describe() + " lives in host memory, not on a device");
        }
        return device;
    }

    /** The device address of the first element. */
    public long deviceAddress() {
        return devicePointer().address() + offset * dtype.byteSize();
    }

    /** Byte offset of the element at {@code index} within the memory. */
    public long byteOffset(long... index) {
        if (index.length != shape.length) {
            throw new IllegalArgumentException("index of rank " + index.length + " for tensor of rank " + shape.length);
        }
        long e = offset;
        for (int i = 0; i < index.length; i++) {
            if (index[i] < 0 || index[i] >= shape[i]) {
                throw new IndexOutOfBoundsException("index " + Arrays.toString(index) + " outside shape " + Arrays.toString(shape));
            }
            e += index[i] * strides[i];
        }
        return e * dtype.byteSize();
    }

    public boolean isContiguous() {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    /** The exact bytes of a contiguous host tensor. */
    public MemorySegment contiguousSegment() {
        requireContiguous();
        return segment().asSlice(offset * dtype.byteSize(), byteSize());
    }

    /** The exact device span of a contiguous device tensor. */
    public DevicePointer contiguousDevicePointer() {
        requireContiguous();
        return devicePointer().slice(offset * dtype.byteSize(), byteSize());
    }

    private void requireContiguous() {
        if (!isContiguous()) {
            throw new IllegalStateException("tensor " + describe() + " is not contiguous");
        }
    }

    /** The view of indices {@code [start, start + length)} along {@code dim}. */
    public Tensor slice(int dim, long start, long length) {
        if (dim < 0 || dim >= shape.length) {
            throw new IllegalArgumentException("dimension " + dim + " out of range for rank " + shape.length);
        }
        if (start < 0 || length < 0 || start + length > shape[dim]) {
            throw new IndexOutOfBoundsException("slice [" + start + ", " + (start + length) + ") of dimension "
                    + dim + " with size " + shape[dim]);
        }
        long[] s = shape.clone();
        s[dim] = length;
        return new Tensor(dtype, s, strides.clone(), length == 0 ? offset : offset + start * strides[dim], host, device);
    }

    /** The same contiguous elements seen with another shape of equal element count. */
    public Tensor view(long... newShape) {
        requireContiguous();
        if (numel(newShape) != numel()) {
            throw new IllegalArgumentException("cannot view " + Arrays.toString(shape) + " as " + Arrays.toString(newShape));
        }
        long[] s = newShape.clone();
        return new Tensor(dtype, s, contiguousStrides(s), offset, host, device);
    }

    /** Swaps two dimensions (a strided view, nothing moves). */
    public Tensor transpose(int a, int b) {
        long[] s = shape.clone();
        long[] st = strides.clone();
        long t = s[a]; s[a] = s[b]; s[b] = t;
        t = st[a]; st[a] = st[b]; st[b] = t;
        return new Tensor(dtype, s, st, offset, host, device);
    }

    /** Reads one element as float (host only; for tests and tools, not hot loops). */
    public float get(long... index) {
        return dtype.read(segment(), byteOffset(index));
    }

    /** Writes one element (host only; for tests and tools, not hot loops). */
    public void set(float value, long... index) {
        dtype.write(segment(), byteOffset(index), value);
    }

    public boolean sameShape(Tensor other) {
        return Arrays.equals(shape, other.shape);
    }

    public String describe() {
        return dtype + Arrays.toString(shape) + (isHost() ? "@host" : "@cuda:" + device.device());
    }

    @Override
    public String toString() {
        return "Tensor[" + describe() + ", strides=" + Arrays.toString(strides) + ", offset=" + offset + "]";
    }
}
