package org.usp4j.cudnn;

/**
 * Element types of backend tensors and compute precisions ({@code cudnnDataType_t}).
 * Values are those of {@code cudnnDataType_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum DataType {
    FLOAT(0),
    DOUBLE(1),
    HALF(2),
    INT8(3),
    INT32(4),
    INT8x4(5),
    UINT8(6),
    UINT8x4(7),
    INT8x32(8),
    BFLOAT16(9),
    INT64(10),
    BOOLEAN(11),
    FP8_E4M3(12),
    FP8_E5M2(13),
    FAST_FLOAT_FOR_FP8(14);

    private final int code;

    DataType(int code) {
        this.code = code;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_DATA_FLOAT}. */
    public String cName() {
        return "CUDNN_DATA_" + name();
    }
}
