package org.usp4j.cuda;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.tensor.DevicePointer;

/**
 * One kernel argument, typed as the kernel's C parameter: {@code int}, {@code long long},
 * {@code float}, {@code double} or a pointer. The launch copies each value into native memory and
 * passes CUDA an array of pointers to them.
 */
public sealed interface KernelArg {

    /** The native layout of the value (its size and alignment). */
    MemoryLayout layout();

    /** Writes the value at the start of {@code slot}. */
    void writeTo(MemorySegment slot);

    record Int32(int value) implements KernelArg {
        public ValueLayout layout() {
            return ValueLayout.JAVA_INT;
        }

        public void writeTo(MemorySegment slot) {
            slot.set(ValueLayout.JAVA_INT, 0, value);
        }
    }

    record Int64(long value) implements KernelArg {
        public ValueLayout layout() {
            return ValueLayout.JAVA_LONG;
        }

        public void writeTo(MemorySegment slot) {
            slot.set(ValueLayout.JAVA_LONG, 0, value);
        }
    }

    record Float32(float value) implements KernelArg {
        public ValueLayout layout() {
            return ValueLayout.JAVA_FLOAT;
        }

        public void writeTo(MemorySegment slot) {
            slot.set(ValueLayout.JAVA_FLOAT, 0, value);
        }
    }

    record Float64(double value) implements KernelArg {
        public ValueLayout layout() {
            return ValueLayout.JAVA_DOUBLE;
        }

        public void writeTo(MemorySegment slot) {
            slot.set(ValueLayout.JAVA_DOUBLE, 0, value);
        }
    }

    /** A device (or null) address. */
    record Pointer(long address) implements KernelArg {
        public ValueLayout layout() {
            return ValueLayout.ADDRESS;
        }

        public void writeTo(MemorySegment slot) {
            slot.set(ValueLayout.ADDRESS, 0, MemorySegment.ofAddress(address));
        }
    }

    /**
     * A C struct of int64 fields passed by value (e.g. {@code struct { long long d[6]; }}): the kernel
     * gets a copy of the whole array, 8-byte aligned.
     */
    record Int64Array(long[] values) implements KernelArg {
        public Int64Array {
            if (values.length == 0) {
                throw new IllegalArgumentException("empty int64 struct argument");
            }
            values = values.clone();
        }

        public MemoryLayout layout() {
            return MemoryLayout.sequenceLayout(values.length, ValueLayout.JAVA_LONG);
        }

        public void writeTo(MemorySegment slot) {
            MemorySegment.copy(values, 0, slot, ValueLayout.JAVA_LONG, 0, values.length);
        }
    }

    static KernelArg i32(int value) {
        return new Int32(value);
    }

    static KernelArg i64(long value) {
        return new Int64(value);
    }

    static KernelArg i64s(long... values) {
        return new Int64Array(values);
    }

    static KernelArg f32(float value) {
        return new Float32(value);
    }

    static KernelArg f64(double value) {
        return new Float64(value);
    }

    static KernelArg pointer(DevicePointer pointer) {
        return new Pointer(pointer.address());
    }

    static KernelArg pointer(DeviceBuffer buffer) {
        return new Pointer(buffer.pointer().address());
    }

    static KernelArg nullPointer() {
        return new Pointer(0L);
    }
}
