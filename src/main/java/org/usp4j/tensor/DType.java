package org.usp4j.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Locale;

/**
 * Element types usp4j moves and computes with. Arithmetic always happens in float32; bf16 and f16
 * are storage formats. Values are little-endian, as in safetensors files and on every GPU we target.
 */
public enum DType {
    /** IEEE 754 binary32. */
    F32(4),
    /** bfloat16: the upper half of a float32 (8 exponent bits, 7 mantissa bits). */
    BF16(2),
    /** IEEE 754 binary16. */
    F16(2);

    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /**
     * The size of one element.
     *
     * @return bytes per element
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The name safetensors uses for this type.
     *
     * @return "F32", "BF16" or "F16"
     */
    public String safetensorsName() {
        return name();
    }

    /**
     * Parses a safetensors dtype name or a CLI spelling (f32, bf16, f16, float32, bfloat16, float16).
     *
     * @param name the name, in any case
     * @return the type
     * @throws IllegalArgumentException when the name is none of these
     */
    public static DType parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "f32", "float32", "float" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "f16", "float16", "half" -> F16;
            default -> throw new IllegalArgumentException(
                    "unsupported dtype '" + name + "' (expected F32, BF16 or F16)");
        };
    }

    /**
     * Reads the element at {@code byteOffset} as a float.
     *
     * @param segment    host memory
     * @param byteOffset the element's offset in bytes
     * @return the value
     */
    public float read(MemorySegment segment, long byteOffset) {
        return switch (this) {
            case F32 -> segment.get(FLOAT_LE, byteOffset);
            case BF16 -> bf16ToFloat(segment.get(SHORT_LE, byteOffset));
            case F16 -> Float.float16ToFloat(segment.get(SHORT_LE, byteOffset));
        };
    }

    /**
     * Writes {@code value}, rounded to nearest-even for the 16-bit types.
     *
     * @param segment    host memory
     * @param byteOffset the element's offset in bytes
     * @param value      the value
     */
    public void write(MemorySegment segment, long byteOffset, float value) {
        switch (this) {
            case F32 -> segment.set(FLOAT_LE, byteOffset, value);
            case BF16 -> segment.set(SHORT_LE, byteOffset, floatToBf16(value));
            case F16 -> segment.set(SHORT_LE, byteOffset, Float.floatToFloat16(value));
        }
    }

    /**
     * Rounds a float to this type's precision and back (identity for F32).
     *
     * @param value the value
     * @return the nearest value this type holds
     */
    public float round(float value) {
        return switch (this) {
            case F32 -> value;
            case BF16 -> bf16ToFloat(floatToBf16(value));
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(value));
        };
    }

    /**
     * bfloat16 to float32 (exact).
     *
     * @param bits the bfloat16 bits
     * @return the value
     */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * float32 to bfloat16 with round-to-nearest-even; NaN stays a (quiet) NaN.
     *
     * @param value the value
     * @return the bfloat16 bits
     */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
