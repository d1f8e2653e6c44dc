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

    /**
     * A contiguous host tensor over {@code segment} (which may be larger than needed). Nothing is copied.
     *
     * @param segment the caller's memory; the tensor is valid while its arena is open
     * @param dtype   the element type
     * @param shape   the dimensions
     * @return the view
     * @throws IndexOutOfBoundsException when the shape needs more bytes than the segment has
     */
    public static Tensor host(MemorySegment segment, DType dtype, long... shape) {
        Objects.requireNonNull(segment, "segment");
        long[] s = shape.clone();
        return new Tensor(dtype, s, contiguousStrides(s), 0, segment, null);
    }

    /**
     * A contiguous device tensor over {@code memory}. Nothing is copied or checked on the device.
     *
     * @param memory the caller's device memory: address, byte size, device
     * @param dtype  the element type
     * @param shape  the dimensions
     * @return the view
     * @throws IndexOutOfBoundsException when the shape needs more bytes than the memory has
     */
    public static Tensor device(DevicePointer memory, DType dtype, long... shape) {
        Objects.requireNonNull(memory, "memory");
        long[] s = shape.clone();
        return new Tensor(dtype, s, contiguousStrides(s), 0, null, memory);
    }

    /**
     * Allocates a zeroed, contiguous host tensor in {@code arena} (64-byte aligned).
     *
     * @param arena the arena that owns (and frees) the memory
     * @param dtype the element type
     * @param shape the dimensions
     * @return the tensor
     */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        long[] s = shape.clone();
        long bytes = Math.multiplyExact(numel(s), dtype.byteSize());
        return new Tensor(dtype, s, contiguousStrides(s), 0, arena.allocate(Math.max(bytes, 1), 64), null);
    }

    /**
     * The same memory seen with explicit strides and offset (both in elements), bounds-checked.
     *
     * @param newShape   the dimensions
     * @param newStrides the stride of each dimension, in elements
     * @param newOffset  the first element's offset from the start of the memory, in elements
     * @return the view
     * @throws IllegalArgumentException  when shape and strides differ in rank or hold negative values
     * @throws IndexOutOfBoundsException when the view reaches outside the memory
     */
    public Tensor withGeometry(long[] newShape, long[] newStrides, long newOffset) {
        if (newShape.length != newStrides.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(newShape)
                    + " and strides " + Arrays.toString(newStrides) + " differ in rank");
        }
        return new Tensor(dtype, newShape.clone(), newStrides.clone(), newOffset, host, device);
    }

    /**
     * The row-major strides of {@code shape}, in elements.
     *
     * @param shape the dimensions
     * @return the strides, the last one 1
     * @throws IllegalArgumentException when a stride does not fit in 64 bits
     */
    public static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = stride;
            try {
                stride = Math.multiplyExact(stride, Math.max(shape[i], 1));
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape)
                        + " is too large: its strides overflow 64 bits", e);
            }
        }
        return strides;
    }

    /**
     * The number of elements of {@code shape}.
     *
     * @param shape the dimensions
     * @return their product
     * @throws IllegalArgumentException when a dimension is negative
     */
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

    /**
     * The element type.
     *
     * @return the dtype
     */
    public DType dtype() {
        return dtype;
    }

    /**
     * The number of dimensions.
     *
     * @return the rank
     */
    public int rank() {
        return shape.length;
    }

    /**
     * The size of one dimension.
     *
     * @param dim the dimension, in [0, {@link #rank()})
     * @return its size
     */
    public long size(int dim) {
        return shape[dim];
    }

    /**
     * The dimensions.
     *
     * @return a copy of the shape
     */
    public long[] shape() {
        return shape.clone();
    }

    /**
     * The stride of one dimension, in elements.
     *
     * @param dim the dimension, in [0, {@link #rank()})
     * @return its stride
     */
    public long stride(int dim) {
        return strides[dim];
    }

    /**
     * The strides, in elements.
     *
     * @return a copy of the strides
     */
    public long[] strides() {
        return strides.clone();
    }

    /**
     * The offset of the first element from the start of the memory, in elements.
     *
     * @return the offset
     */
    public long offset() {
        return offset;
    }

    /**
     * The number of elements.
     *
     * @return the product of the shape
     */
    public long numel() {
        return numel(shape);
    }

    /**
     * The bytes covered by the elements themselves (numel x element size).
     *
     * @return the size in bytes
     */
    public long byteSize() {
        return numel() * dtype.byteSize();
    }

    /**
     * Whether this tensor views host memory.
     *
     * @return true for a {@link MemorySegment} view
     */
    public boolean isHost() {
        return host != null;
    }

    /**
     * Whether this tensor views device memory.
     *
     * @return true for a {@link DevicePointer} view
     */
    public boolean isDevice() {
        return device != null;
    }

    /**
     * The whole host memory this tensor views (index it with {@link #byteOffset}).
     *
     * @return the caller's segment, not a copy
     * @throws IllegalStateException when the tensor lives on a device
     */
    public MemorySegment segment() {
        if (host == null) {
            throw new IllegalStateException("tensor " + describe() + " lives on a device, not in host memory");
        }
        return host;
    }

    /**
     * The whole device memory this tensor views.
     *
     * @return the caller's device memory
     * @throws IllegalStateException when the tensor lives in host memory
     */
    public DevicePointer devicePointer() {
        if (device == null) {
            throw new IllegalStateException("tensor " + describe() + " lives in host memory, not on a device");
        }
        return device;
    }

    /**
     * The device address of the first element.
     *
     * @return the address
     * @throws IllegalStateException when the tensor lives in host memory
     */
    public long deviceAddress() {
        return devicePointer().address() + offset * dtype.byteSize();
    }

    /**
     * The byte offset of one element within the memory.
     *
     * @param index one index per dimension
     * @return the offset in bytes
     * @throws IllegalArgumentException  when the index has the wrong rank
     * @throws IndexOutOfBoundsException when the index is outside the shape
     */
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

    /**
     * Whether the elements are dense in row-major order (dimensions of size 1 ignored).
     *
     * @return true when the strides are the contiguous ones
     */
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

    /**
     * The exact bytes of a contiguous host tensor.
     *
     * @return a slice of the caller's segment
     * @throws IllegalStateException when the tensor is not contiguous or not in host memory
     */
    public MemorySegment contiguousSegment() {
        requireContiguous();
        return segment().asSlice(offset * dtype.byteSize(), byteSize());
    }

    /**
     * The exact device span of a contiguous device tensor.
     *
     * @return a slice of the caller's device memory
     * @throws IllegalStateException when the tensor is not contiguous or not on a device
     */
    public DevicePointer contiguousDevicePointer() {
        requireContiguous();
        return devicePointer().slice(offset * dtype.byteSize(), byteSize());
    }

    private void requireContiguous() {
        if (!isContiguous()) {
            throw new IllegalStateException("tensor " + describe() + " is not contiguous");
        }
    }

    /**
     * The view of indices {@code [start, start + length)} along {@code dim}.
     *
     * @param dim    the dimension
     * @param start  the first index
     * @param length the number of indices
     * @return the view
     * @throws IllegalArgumentException  when the dimension does not exist
     * @throws IndexOutOfBoundsException when the range is outside the dimension
     */
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

    /**
     * The same contiguous elements seen with another shape of equal element count.
     *
     * @param newShape the dimensions
     * @return the view
     * @throws IllegalArgumentException when the element counts differ
     * @throws IllegalStateException    when this tensor is not contiguous
     */
    public Tensor view(long... newShape) {
        requireContiguous();
        if (numel(newShape) != numel()) {
            throw new IllegalArgumentException("cannot view " + Arrays.toString(shape) + " as " + Arrays.toString(newShape));
        }
        long[] s = newShape.clone();
        return new Tensor(dtype, s, contiguousStrides(s), offset, host, device);
    }

    /**
     * Swaps two dimensions (a strided view, nothing moves).
     *
     * @param a one dimension
     * @param b the other
     * @return the view
     */
    public Tensor transpose(int a, int b) {
        long[] s = shape.clone();
        long[] st = strides.clone();
        long t = s[a]; s[a] = s[b]; s[b] = t;
        t = st[a]; st[a] = st[b]; st[b] = t;
        return new Tensor(dtype, s, st, offset, host, device);
    }

    /**
     * Reads one element as float (host only; for tests and tools, not hot loops).
     *
     * @param index one index per dimension
     * @return the value
     */
    public float get(long... index) {
        return dtype.read(segment(), byteOffset(index));
    }

    /**
     * Writes one element (host only; for tests and tools, not hot loops).
     *
     * @param value the value, rounded to the dtype
     * @param index one index per dimension
     */
    public void set(float value, long... index) {
        dtype.write(segment(), byteOffset(index), value);
    }

    /**
     * Whether two tensors have equal shapes (strides and dtypes may differ).
     *
     * @param other the other tensor
     * @return true when the shapes are equal
     */
    public boolean sameShape(Tensor other) {
        return Arrays.equals(shape, other.shape);
    }

    /**
     * A short description for messages, such as {@code F32[1, 8, 4, 8]@host} or {@code BF16[2, 64, 8, 128]@cuda:0}.
     *
     * @return dtype, shape and where the memory is
     */
    public String describe() {
        return dtype + Arrays.toString(shape) + (isHost() ? "@host" : "@cuda:" + device.device());
    }

    @Override
    public String toString() {
        return "Tensor[" + describe() + ", strides=" + Arrays.toString(strides) + ", offset=" + offset + "]";
    }
}
