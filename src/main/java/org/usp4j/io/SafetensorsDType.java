package org.usp4j.io;

import java.util.Optional;
import org.usp4j.tensor.DType;

/**
 * The element types a safetensors header may name, with their sizes. All are recognised so that the
 * offsets of any valid file can be checked; usp4j computes with F32, BF16 and F16 only
 * ({@link #tensorDType()}).
 */
public enum SafetensorsDType {
    BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1),
    I16(2), U16(2), F16(2), BF16(2),
    I32(4), U32(4), F32(4),
    I64(8), U64(8), F64(8);

    private final int byteSize;

    SafetensorsDType(int byteSize) {
        this.byteSize = byteSize;
    }

    public int byteSize() {
        return byteSize;
    }

    /** The usp4j dtype with the same bytes, if usp4j computes with it. */
    public Optional<DType> tensorDType() {
        return switch (this) {
            case F32 -> Optional.of(DType.F32);
            case BF16 -> Optional.of(DType.BF16);
            case F16 -> Optional.of(DType.F16);
            default -> Optional.empty();
        };
    }

    /** The header name of a usp4j dtype. */
    public static SafetensorsDType of(DType dtype) {
        return valueOf(dtype.safetensorsName());
    }

    /** The dtype named exactly {@code name} in a header (names are case-sensitive), or empty. */
    public static Optional<SafetensorsDType> byName(String name) {
        for (SafetensorsDType t : values()) {
            if (t.name().equals(name)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }
}
