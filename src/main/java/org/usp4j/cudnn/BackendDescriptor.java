package org.usp4j.cudnn;

import static org.usp4j.bindings.cudnn.CudnnApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.usp4j.nativelib.NativeResource;

/**
 * An owned cuDNN backend descriptor ({@code cudnnBackendDescriptor_t}) with a small typed builder:
 * create, set attributes, {@link #finish()} (cudnnBackendFinalize), read attributes back, close.
 *
 * <pre>{@code
 * try (var q = BackendDescriptor.create(DescriptorType.TENSOR)
 *         .set(BackendAttribute.TENSOR_DATA_TYPE, DataType.BFLOAT16)
 *         .setInt64s(BackendAttribute.TENSOR_DIMENSIONS, b, h, s, d)
 *         .setInt64s(BackendAttribute.TENSOR_STRIDES, s * h * d, d, h * d, 1)
 *         .setInt64(BackendAttribute.TENSOR_UNIQUE_ID, 1)
 *         .setInt64(BackendAttribute.TENSOR_BYTE_ALIGNMENT, 16)
 *         .finish()) { ... }
 * }</pre>
 *
 * <p>Element encodings follow the attribute type: INT64 and element counts are 64-bit, BOOLEAN is a
 * one-byte C bool, enum types (DATA_TYPE, POINTWISE_MODE, HEUR_MODE, ...) are 4-byte ints, VOID_PTR
 * and HANDLE are addresses, BACKEND_DESCRIPTOR is an array of descriptor handles. cuDNN keeps
 * references to descriptors set as attributes: keep those open as long as this one is used (e.g.
 * a plan needs its graph's tensors and operations). Attributes and descriptor types newer than the
 * loaded cuDNN are refused before the native call.
 */
public final class BackendDescriptor extends NativeResource {

    private final DescriptorType type;
    private final MemorySegment handle;
    private volatile boolean finalized;

    private BackendDescriptor(DescriptorType type, MemorySegment handle) {
        this.type = type;
        this.handle = handle;
    }

    /** A new, empty descriptor ({@code cudnnBackendCreateDescriptor}); needs no GPU. */
    public static BackendDescriptor create(DescriptorType type) {
        Cudnn.requireVersion(type.since(), "descriptor type " + type);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Cudnn.check(cudnnBackendCreateDescriptor(type.code(), out), "cudnnBackendCreateDescriptor(" + type + ")");
            return new BackendDescriptor(type, out.get(ValueLayout.ADDRESS, 0));
        }
    }

    public DescriptorType type() {
        return type;
    }

    /** The raw descriptor; valid until closed. */
    public MemorySegment handle() {
        checkOpen();
        return handle;
    }

    /** True after a successful {@link #finish()}. */
    public boolean isFinalized() {
        return finalized;
    }

    /** Finalizes the descriptor ({@code cudnnBackendFinalize}); its attributes are fixed afterwards. */
    public BackendDescriptor finish() {
        Cudnn.check(cudnnBackendFinalize(handle()), "cudnnBackendFinalize(" + type + ")");
        finalized = true;
        return this;
    }

    // ---- setters -------------------------------------------------------------------------------

    /** Sets {@code count} elements of {@code elementType} read from {@code elements} (the raw call). */
    public BackendDescriptor set(BackendAttribute attribute, AttributeType elementType, long count, MemorySegment elements) {
        if (count < 0) {
            throw new IllegalArgumentException("negative element count " + count + " for " + attribute);
        }
        MemorySegment h = handle();
        if (finalized) {
            throw new IllegalStateException(type + " descriptor is finalized; " + attribute + " cannot change");
        }
        Cudnn.requireVersion(attribute.since(), "attribute " + attribute);
        Cudnn.check(cudnnBackendSetAttribute(h, attribute.code(), elementType.code(), count, elements),
                "cudnnBackendSetAttribute(" + attribute + ")");
        return this;
    }

    public BackendDescriptor setInt64(BackendAttribute attribute, long value) {
        return setInt64s(attribute, value);
    }

    public BackendDescriptor setInt64s(BackendAttribute attribute, long... values) {
        try (Arena arena = Arena.ofConfined()) {
            return set(attribute, AttributeType.INT64, values.length, arena.allocateFrom(ValueLayout.JAVA_LONG, values));
        }
    }

    public BackendDescriptor setInt32(BackendAttribute attribute, int value) {
        return setEnum(attribute, AttributeType.INT32, value);
    }

    public BackendDescriptor setFloat(BackendAttribute attribute, float value) {
        try (Arena arena = Arena.ofConfined()) {
            return set(attribute, AttributeType.FLOAT, 1, arena.allocateFrom(ValueLayout.JAVA_FLOAT, value));
        }
    }

    public BackendDescriptor setDouble(BackendAttribute attribute, double value) {
        try (Arena arena = Arena.ofConfined()) {
            return set(attribute, AttributeType.DOUBLE, 1, arena.allocateFrom(ValueLayout.JAVA_DOUBLE, value));
        }
    }

    /** A C {@code bool} (one byte). */
    public BackendDescriptor setBoolean(BackendAttribute attribute, boolean value) {
        try (Arena arena = Arena.ofConfined()) {
            return set(attribute, AttributeType.BOOLEAN, 1, arena.allocateFrom(ValueLayout.JAVA_BYTE, (byte) (value ? 1 : 0)));
        }
    }

    /** A 4-byte enum value of {@code type} (DATA_TYPE, POINTWISE_MODE, INT32, ...). */
    public BackendDescriptor setEnum(BackendAttribute attribute, AttributeType type, int value) {
        try (Arena arena = Arena.ofConfined()) {
            return set(attribute, type, 1, arena.allocateFrom(ValueLayout.JAVA_INT, value));
        }
    }

    public BackendDescriptor set(BackendAttribute attribute, DataType value) {
        return setEnum(attribute, AttributeType.DATA_TYPE, value.code());
    }

    public BackendDescriptor set(BackendAttribute attribute, PointwiseMode value) {
        return setEnum(attribute, AttributeType.POINTWISE_MODE, value.code());
    }

    public BackendDescriptor set(BackendAttribute attribute, ReductionOperator value) {
        return setEnum(attribute, AttributeType.REDUCTION_OPERATOR_TYPE, value.code());
    }

    public BackendDescriptor set(BackendAttribute attribute, HeuristicMode value) {
        return setEnum(attribute, AttributeType.HEUR_MODE, value.code());
    }

    /** One address (VOID_PTR), e.g. the workspace of a variant pack; 0 for NULL. */
    public BackendDescriptor setPointer(BackendAttribute attribute, long address) {
        return setPointers(attribute, address);
    }

    /** Addresses (VOID_PTR), e.g. a variant pack's data pointers in the order of its unique ids. */
    public BackendDescriptor setPointers(BackendAttribute attribute, long... addresses) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment array = arena.allocate(ValueLayout.ADDRESS, Math.max(1, addresses.length));
            for (int i = 0; i < addresses.length; i++) {
                array.setAtIndex(ValueLayout.ADDRESS, i, MemorySegment.ofAddress(addresses[i]));
            }
            return set(attribute, AttributeType.VOID_PTR, addresses.length, array);
        }
    }

    /** A cuDNN handle (HANDLE), e.g. OPERATIONGRAPH_HANDLE. */
    public BackendDescriptor set(BackendAttribute attribute, CudnnHandle cudnn) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment array = arena.allocate(ValueLayout.ADDRESS);
            array.set(ValueLayout.ADDRESS, 0, cudnn.handle());
            return set(attribute, AttributeType.HANDLE, 1, array);
        }
    }

    /** Other descriptors (BACKEND_DESCRIPTOR), e.g. a tensor for OPERATION_POINTWISE_XDESC or a graph's ops. */
    public BackendDescriptor set(BackendAttribute attribute, BackendDescriptor... descriptors) {
        return set(attribute, List.of(descriptors));
    }

    /** Other descriptors (BACKEND_DESCRIPTOR), in order. */
    public BackendDescriptor set(BackendAttribute attribute, List<BackendDescriptor> descriptors) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment array = arena.allocate(ValueLayout.ADDRESS, Math.max(1, descriptors.size()));
            for (int i = 0; i < descriptors.size(); i++) {
                array.setAtIndex(ValueLayout.ADDRESS, i, descriptors.get(i).handle());
            }
            return set(attribute, AttributeType.BACKEND_DESCRIPTOR, descriptors.size(), array);
        }
    }

    // ---- getters -------------------------------------------------------------------------------

    /**
     * Reads up to {@code requested} elements of {@code elementType} into {@code elements} and returns
     * how many the attribute has (the raw call). With {@code requested == 0} it only counts.
     */
    public long get(BackendAttribute attribute, AttributeType elementType, long requested, MemorySegment elements) {
        if (requested < 0) {
            throw new IllegalArgumentException("negative requested count " + requested + " for " + attribute);
        }
        MemorySegment h = handle();
        Cudnn.requireVersion(attribute.since(), "attribute " + attribute);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_LONG);
            Cudnn.check(cudnnBackendGetAttribute(h, attribute.code(), elementType.code(), requested, count, elements),
                    "cudnnBackendGetAttribute(" + attribute + ")");
            return count.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** How many elements of {@code elementType} the attribute holds. */
    public long elementCount(BackendAttribute attribute, AttributeType elementType) {
        return get(attribute, elementType, 0, MemorySegment.NULL);
    }

    public long getInt64(BackendAttribute attribute) {
        return only(attribute, getInt64s(attribute, 1));
    }

    /** Up to {@code maxCount} INT64 values (fewer if the attribute has fewer). */
    public long[] getInt64s(BackendAttribute attribute, int maxCount) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment values = arena.allocate(ValueLayout.JAVA_LONG, Math.max(1, maxCount));
            long n = get(attribute, AttributeType.INT64, maxCount, values);
            return values.asSlice(0, Math.min(n, maxCount) * Long.BYTES).toArray(ValueLayout.JAVA_LONG);
        }
    }

    public float getFloat(BackendAttribute attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(ValueLayout.JAVA_FLOAT);
            requireOne(attribute, get(attribute, AttributeType.FLOAT, 1, value));
            return value.get(ValueLayout.JAVA_FLOAT, 0);
        }
    }

    public double getDouble(BackendAttribute attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(ValueLayout.JAVA_DOUBLE);
            requireOne(attribute, get(attribute, AttributeType.DOUBLE, 1, value));
            return value.get(ValueLayout.JAVA_DOUBLE, 0);
        }
    }

    public boolean getBoolean(BackendAttribute attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(ValueLayout.JAVA_LONG); // a C bool, read from the first byte
            requireOne(attribute, get(attribute, AttributeType.BOOLEAN, 1, value));
            return value.get(ValueLayout.JAVA_BYTE, 0) != 0;
        }
    }

    /** A 4-byte enum or INT32 value. */
    public int getEnum(BackendAttribute attribute, AttributeType type) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(ValueLayout.JAVA_INT);
            requireOne(attribute, get(attribute, type, 1, value));
            return value.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Up to {@code maxCount} 4-byte enum values, e.g. an engine's NUMERICAL_NOTE or BEHAVIOR_NOTE list. */
    public int[] getEnums(BackendAttribute attribute, AttributeType type, int maxCount) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment values = arena.allocate(ValueLayout.JAVA_INT, Math.max(1, maxCount));
            long n = get(attribute, type, maxCount, values);
            return values.asSlice(0, Math.min(n, maxCount) * Integer.BYTES).toArray(ValueLayout.JAVA_INT);
        }
    }

    public int getInt32(BackendAttribute attribute) {
        return getEnum(attribute, AttributeType.INT32);
    }

    public DataType getDataType(BackendAttribute attribute) {
        return byCode(DataType.values(), getEnum(attribute, AttributeType.DATA_TYPE), DataType::code, attribute);
    }

    public PointwiseMode getPointwiseMode(BackendAttribute attribute) {
        return byCode(PointwiseMode.values(), getEnum(attribute, AttributeType.POINTWISE_MODE), PointwiseMode::code,
                attribute);
    }

    public ReductionOperator getReductionOperator(BackendAttribute attribute) {
        return byCode(ReductionOperator.values(), getEnum(attribute, AttributeType.REDUCTION_OPERATOR_TYPE),
                ReductionOperator::code, attribute);
    }

    /**
     * Descriptor-valued attributes. cuDNN fills descriptors the caller created, so up to
     * {@code maxCount} new descriptors of {@code elementType} are created, the filled ones returned
     * (owned by the caller) and the rest closed. E.g. {@code ENGINEHEUR_RESULTS} gives ENGINECFGs.
     */
    public List<BackendDescriptor> getDescriptors(BackendAttribute attribute, DescriptorType elementType, int maxCount) {
        if (maxCount < 1) {
            throw new IllegalArgumentException("maxCount must be >= 1, got " + maxCount);
        }
        List<BackendDescriptor> created = new ArrayList<>(maxCount);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment array = arena.allocate(ValueLayout.ADDRESS, maxCount);
            for (int i = 0; i < maxCount; i++) {
                BackendDescriptor d = create(elementType);
                created.add(d);
                array.setAtIndex(ValueLayout.ADDRESS, i, d.handle());
            }
            int n = (int) Math.min(maxCount, get(attribute, AttributeType.BACKEND_DESCRIPTOR, maxCount, array));
            List<BackendDescriptor> filled = new ArrayList<>(created.subList(0, n));
            created.subList(n, created.size()).forEach(BackendDescriptor::close);
            for (BackendDescriptor d : filled) {
                d.finalized = true; // cuDNN hands back finalized descriptors
            }
            return filled;
        } catch (RuntimeException e) {
            created.forEach(BackendDescriptor::close);
            throw e;
        }
    }

    /** A single descriptor-valued attribute, e.g. ENGINECFG_ENGINE. */
    public BackendDescriptor getDescriptor(BackendAttribute attribute, DescriptorType elementType) {
        List<BackendDescriptor> one = getDescriptors(attribute, elementType, 1);
        if (one.isEmpty()) {
            throw new IllegalStateException(attribute + " of this " + type + " descriptor is empty");
        }
        return one.get(0);
    }

    void requireFinalized(DescriptorType expected, String what) {
        if (type != expected) {
            throw new IllegalArgumentException(what + " must be a " + expected + " descriptor, got " + type);
        }
        checkOpen();
        if (!finalized) {
            throw new IllegalArgumentException(what + " (" + type + ") is not finalized");
        }
    }

    @Override
    protected String describe() {
        return "cuDNN " + type + " descriptor";
    }

    @Override
    protected void release() {
        Cudnn.check(cudnnBackendDestroyDescriptor(handle), "cudnnBackendDestroyDescriptor(" + type + ")");
    }

    private static long only(BackendAttribute attribute, long[] values) {
        requireOne(attribute, values.length);
        return values[0];
    }

    private static void requireOne(BackendAttribute attribute, long count) {
        if (count < 1) {
            throw new IllegalStateException(attribute + " has no value");
        }
    }

    private static <E> E byCode(E[] values, int code, java.util.function.ToIntFunction<E> codeOf,
                                BackendAttribute attribute) {
        for (E e : values) {
            if (codeOf.applyAsInt(e) == code) {
                return e;
            }
        }
        throw new IllegalStateException(attribute + " holds value " + code + ", unknown to usp4j");
    }
}
