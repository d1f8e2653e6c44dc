package org.usp4j.nccl;

import org.usp4j.tensor.DType;

/** NCCL's {@code ncclDataType_t}, with element sizes. */
public enum NcclDataType {
    INT8(0, 1), UINT8(1, 1), INT32(2, 4), UINT32(3, 4), INT64(4, 8), UINT64(5, 8),
    FLOAT16(6, 2), FLOAT32(7, 4), FLOAT64(8, 8), BFLOAT16(9, 2),
    /** Since NCCL 2.24. */
    FLOAT8_E4M3(10, 1),
    /** Since NCCL 2.24. */
    FLOAT8_E5M2(11, 1);

    private final int code;
    private final int byteSize;

    NcclDataType(int code, int byteSize) {
        this.code = code;
        this.byteSize = byteSize;
    }

    public int code() {
        return code;
    }

    public int byteSize() {
        return byteSize;
    }

    /** The NCCL type that moves elements of {@code dtype}. */
    public static NcclDataType of(DType dtype) {
        return switch (dtype) {
            case F32 -> FLOAT32;
            case BF16 -> BFLOAT16;
            case F16 -> FLOAT16;
        };
    }
}
